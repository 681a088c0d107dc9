// The IpsetRunner over libipset's session API (include/kproxy/kernel/libipset_runner.h).
//
// Each method fills the session's data blob (set name, type, family, one element parsed by
// ipset_parse_elem) and issues one ipset_cmd per command. A bitmap:port set (spec.port_range)
// is created as the ipset binary creates it: the range in IPSET_OPT_PORT / IPSET_OPT_PORT_TO,
// no family in the data (libipset then sends NFPROTO_UNSPEC, the type's family) and no
// maxelem; its bare-port entries parse with that family. Adds and deletes carry a line
// number, so libipset batches those of one set into one netlink message, as "ipset restore"
// does, and a kernel error names the line (the entry) it failed at. Every entry is parsed
// once before anything is sent: a bad entry fails the call with the kernel untouched.
#include "kproxy/kernel/libipset_runner.h"

#include <libipset/data.h>
#include <libipset/ipset.h>
#include <libipset/nfproto.h>
#include <libipset/parse.h>
#include <libipset/session.h>
#include <libipset/types.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <utility>

namespace kproxy::kernel {
namespace {

// libipset's registered types, its set-name cache and its print state are process-wide.
std::once_flag types_loaded;
std::mutex libipset_mutex;

__attribute__((format(printf, 3, 4))) int collect_output(struct ipset_session* /*session*/, void* p, const char* fmt,
                                                         ...) {
  auto* out = static_cast<std::string*>(p);
  va_list args;
  va_start(args, fmt);
  va_list measure;
  va_copy(measure, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, measure);
  va_end(measure);
  if (n > 0) {
    const std::size_t old = out->size();
    out->resize(old + static_cast<std::size_t>(n) + 1);
    std::vsnprintf(out->data() + old, static_cast<std::size_t>(n) + 1, fmt, args);
    out->resize(old + static_cast<std::size_t>(n));
  }
  va_end(args);
  return n;
}

// The session's report, on one line, without libipset's "Error in line N: " prefix; the
// line number (0 when there is none) goes to *line.
std::string report(struct ipset_session* s, std::uint32_t* line = nullptr) {
  const char* msg = ipset_session_report_msg(s);
  std::string text = msg != nullptr ? msg : "";
  if (line != nullptr) *line = 0;
  constexpr std::string_view kPrefix = "Error in line ";
  if (text.starts_with(kPrefix)) {
    std::size_t i = kPrefix.size();
    std::uint32_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9')
      n = n * 10 + static_cast<std::uint32_t>(text[i++] - '0');
    if (text.compare(i, 2, ": ") == 0) {
      text.erase(0, i + 2);
      if (line != nullptr) *line = n;
    }
  }
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out += (out.empty() ? "" : "; ") + text.substr(start, end - start);
    start = end + 1;
  }
  return out.empty() ? "libipset reported no reason" : out;
}

bool missing_set(struct ipset_session* s) { return report(s).find("does not exist") != std::string::npos; }

uint8_t nfproto(IpFamily family) { return family == IpFamily::kIPv6 ? NFPROTO_IPV6 : NFPROTO_IPV4; }

// One call: its own session (libipset_runner.h says why), under the process-wide lock. The
// set-name cache is emptied first: it knows neither other processes nor namespaces.
class Call {
 public:
  explicit Call(std::string* output) : lock_(libipset_mutex) {
    std::call_once(types_loaded, [] { ipset_load_types(); });
    ipset_cache_fini();
    s_ = ipset_session_init(collect_output, output);
  }
  ~Call() {
    if (s_ != nullptr) ipset_session_fini(s_);  // closes the socket, empties the cache again
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  bool ok() const { return s_ != nullptr; }
  struct ipset_session* session() const {
    return s_;
  }
  struct ipset_data* data() const {
    return ipset_session_data(s_);
  }

  // "ipset verb args: reason" from the session's report.
  Error fail(const std::string& command) const { return Error("ipset " + command + ": " + report(s_)); }

  // data := set name (checked as ipset checks it).
  bool set_name(std::string_view name) {
    ipset_data_reset(data());
    return ipset_parse_setname(s_, IPSET_SETNAME, std::string(name).c_str()) == 0;
  }

  // A command on a set: DESTROY, HEADER, SAVE; SWAP with a second name.
  bool run(enum ipset_cmd cmd, std::string_view name, std::string_view name2 = {}) {
    if (!set_name(name)) return false;
    if (!name2.empty() && ipset_parse_setname(s_, IPSET_OPT_SETNAME2, std::string(name2).c_str()) != 0) return false;
    ipset_session_lineno(s_, 0);
    return ipset_cmd(s_, cmd, 0) == 0;
  }

  // Whether a set exists; errors other than "does not exist" are errors.
  Expected<bool> exists(std::string_view name) {
    if (run(IPSET_CMD_HEADER, name)) return true;
    if (!missing_set(s_)) return fail("list " + std::string(name));
    ipset_session_report_reset(s_);
    return false;
  }

 private:
  std::lock_guard<std::mutex> lock_;
  struct ipset_session* s_ = nullptr;
};

// The type and family of a set, for parsing its elements.
struct SetType {
  const struct ipset_type* type = nullptr;
  uint8_t family = NFPROTO_UNSPEC;
};

// data := one element of the set; false with the session's report on a parse error.
bool parse_entry(Call& call, std::string_view set, const SetType& t, const std::string& entry) {
  if (!call.set_name(set)) return false;
  ipset_data_set(call.data(), IPSET_OPT_FAMILY, &t.family);
  ipset_data_set(call.data(), IPSET_OPT_TYPE, t.type);
  return ipset_parse_elem(call.session(), t.type->last_elem_optional, entry.c_str()) == 0;
}

struct AdtLine {
  enum ipset_cmd cmd;  // IPSET_CMD_ADD or IPSET_CMD_DEL
  const std::string* entry;
};

std::string adt_command(const AdtLine& l, std::string_view set) {
  return std::string(l.cmd == IPSET_CMD_ADD ? "add " : "del ") + std::string(set) + " " + *l.entry;
}

// Parses every line without sending anything: the first bad entry fails.
Status check_adt(Call& call, std::string_view set, const SetType& t, const std::vector<AdtLine>& lines) {
  for (const AdtLine& l : lines) {
    if (!parse_entry(call, set, t, *l.entry)) return call.fail(adt_command(l, set));
  }
  return {};
}

// Sends the (checked) lines, batched, with line numbers 1..n; on a kernel error the reported
// line names the entry.
Status send_adt(Call& call, std::string_view set, const SetType& t, const std::vector<AdtLine>& lines) {
  auto kernel_error = [&](std::size_t current) -> Error {
    std::uint32_t line = 0;
    const std::string reason = report(call.session(), &line);
    const std::size_t at = line >= 1 && line <= lines.size() ? line - 1 : current;
    return Error("ipset " + adt_command(lines[at], set) + ": " + reason);
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!parse_entry(call, set, t, *lines[i].entry)) return call.fail(adt_command(lines[i], set));
    if (ipset_cmd(call.session(), lines[i].cmd, static_cast<std::uint32_t>(i + 1)) != 0) return kernel_error(i);
  }
  if (ipset_commit(call.session()) != 0) return kernel_error(lines.empty() ? 0 : lines.size() - 1);
  ipset_session_lineno(call.session(), 0);
  return {};
}

}  // namespace

Status LibIpsetRunner::apply(const IpsetSpec& spec) {
  if (spec.name.empty()) return Error("ipset apply: empty set name");
  std::string output;
  Call call(&output);
  if (!call.ok()) return Error("libipset: cannot allocate a session");
  const std::string tmp = ipset_temporary_name(spec.name);
  // The create parameters, as ExecIpsetRunner writes them (for the error messages).
  const std::string params =
      spec.port_range ? spec.type + " range " + std::to_string(spec.port_range->first) + "-" +
                            std::to_string(spec.port_range->second)
                      : spec.type + " family " + std::string(ipset_family_name(spec.family));
  const std::string create_tmp =
      "create " + tmp + " " + params +
      (spec.port_range ? "" : " maxelem " + std::to_string(ipset_max_elements(spec.entries.size())));

  // The type (and the revision the kernel supports), as "create" resolves it. A bitmap:port
  // set gets no family: the type's own (NFPROTO_UNSPEC) is the only one that matches it.
  SetType t;
  if (!call.set_name(tmp)) return call.fail(create_tmp);
  if (!spec.port_range) {
    t.family = nfproto(spec.family);
    ipset_data_set(call.data(), IPSET_OPT_FAMILY, &t.family);
  }
  if (ipset_parse_typename(call.session(), IPSET_OPT_TYPENAME, spec.type.c_str()) != 0) return call.fail(create_tmp);
  t.type = static_cast<const struct ipset_type*>(ipset_data_get(call.data(), IPSET_OPT_TYPE));
  t.family = ipset_data_family(call.data());  // NFPROTO_UNSPEC for bitmap:port
  std::vector<AdtLine> lines;
  lines.reserve(spec.entries.size());
  for (const std::string& e : spec.entries) lines.push_back({IPSET_CMD_ADD, &e});
  if (Status s = check_adt(call, tmp, t, lines); !s.ok()) return s;  // nothing is sent when an entry is bad

  const bool known = std::find(known_.begin(), known_.end(), spec.name) != known_.end();
  auto failed = [&](Error e) -> Status {
    known_.erase(std::remove(known_.begin(), known_.end(), spec.name), known_.end());
    return e;
  };
  bool create_set = false;
  bool destroy_tmp = false;
  if (!known) {
    auto has_set = call.exists(spec.name);
    if (!has_set.ok()) return failed(Error(has_set.error()));
    auto has_tmp = call.exists(tmp);
    if (!has_tmp.ok()) return failed(Error(has_tmp.error()));
    create_set = !*has_set;
    destroy_tmp = *has_tmp;
  }
  if (destroy_tmp && !call.run(IPSET_CMD_DESTROY, tmp)) return failed(call.fail("destroy " + tmp));
  auto create = [&](const std::string& name, std::optional<uint32_t> maxelem) {
    if (!call.set_name(name)) return false;
    ipset_data_set(call.data(), IPSET_OPT_TYPENAME, t.type->name);
    if (!spec.port_range) ipset_data_set(call.data(), IPSET_OPT_FAMILY, &t.family);
    ipset_data_set(call.data(), IPSET_OPT_TYPE, t.type);
    if (spec.port_range) {
      const std::uint16_t from = spec.port_range->first, to = spec.port_range->second;
      ipset_data_set(call.data(), IPSET_OPT_PORT_FROM, &from);
      ipset_data_set(call.data(), IPSET_OPT_PORT_TO, &to);
    } else if (maxelem) {
      ipset_data_set(call.data(), IPSET_OPT_MAXELEM, &*maxelem);
    }
    return ipset_cmd(call.session(), IPSET_CMD_CREATE, 0) == 0;
  };
  if (create_set && !create(spec.name, std::nullopt)) return failed(call.fail("create " + spec.name + " " + params));
  if (!create(tmp, static_cast<uint32_t>(ipset_max_elements(spec.entries.size()))))
    return failed(call.fail(create_tmp));
  if (Status s = send_adt(call, tmp, t, lines); !s.ok()) return failed(Error(s.message()));
  if (!call.run(IPSET_CMD_SWAP, spec.name, tmp)) return failed(call.fail("swap " + spec.name + " " + tmp));
  if (!call.run(IPSET_CMD_DESTROY, tmp)) return failed(call.fail("destroy " + tmp));
  if (!known) known_.push_back(spec.name);
  return {};
}

Status LibIpsetRunner::change(std::string_view name, const std::vector<std::string>& add,
                              const std::vector<std::string>& remove) {
  if (add.empty() && remove.empty()) return {};
  if (name.empty()) return Error("ipset change: empty set name");
  std::string output;
  Call call(&output);
  if (!call.ok()) return Error("libipset: cannot allocate a session");
  std::vector<AdtLine> lines;
  lines.reserve(add.size() + remove.size());
  for (const std::string& e : add) lines.push_back({IPSET_CMD_ADD, &e});
  for (const std::string& e : remove) lines.push_back({IPSET_CMD_DEL, &e});
  // The set's type and family, from the kernel (one query per call, not one per line).
  if (!call.set_name(name)) return call.fail(adt_command(lines.front(), name));
  SetType t;
  t.type = ipset_type_get(call.session(), IPSET_CMD_ADD);
  if (t.type == nullptr) return call.fail(adt_command(lines.front(), name));
  t.family = ipset_data_family(call.data());
  if (Status s = check_adt(call, name, t, lines); !s.ok()) return s;
  ipset_envopt_set(call.session(), IPSET_ENV_EXIST);
  return send_adt(call, name, t, lines);
}

Expected<std::optional<std::vector<std::string>>> LibIpsetRunner::list(std::string_view name) {
  if (name.empty()) return Error("ipset save: empty set name");
  std::string output;
  Call call(&output);
  if (!call.ok()) return Error("libipset: cannot allocate a session");
  ipset_session_output(call.session(), IPSET_LIST_SAVE);
  if (!call.run(IPSET_CMD_SAVE, name)) {
    if (missing_set(call.session())) return std::optional<std::vector<std::string>>();
    return call.fail("save " + std::string(name));
  }
  return std::optional<std::vector<std::string>>(ipset_entries_in_save(output));
}

Expected<bool> LibIpsetRunner::destroy(std::string_view name) {
  if (name.empty()) return Error("ipset destroy: empty set name");  // libipset would destroy every set
  std::string output;
  Call call(&output);
  if (!call.ok()) return Error("libipset: cannot allocate a session");
  known_.erase(std::remove(known_.begin(), known_.end(), std::string(name)), known_.end());
  if (!call.run(IPSET_CMD_DESTROY, name)) {
    if (missing_set(call.session())) return false;
    return call.fail("destroy " + std::string(name));
  }
  return true;
}

}  // namespace kproxy::kernel
