#include "kproxy/iptables/libiptc_applier.h"

#include <fcntl.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "kproxy/iptables/iptc_entry.h"

namespace kproxy::iptables {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

// The xtables lock, held for the whole write as iptables-legacy-restore holds it: other
// iptables processes on the node (kubelet, CNI plugins, firewalld) wait for it.
class XtablesLock {
 public:
  static Expected<XtablesLock> acquire(const std::string& path, int wait_seconds) {
    const int fd = ::open(path.c_str(), O_CREAT | O_CLOEXEC | O_RDONLY, 0600);
    if (fd < 0) return Error("opening the xtables lock " + path + ": " + errno_text(errno));
    XtablesLock lock(fd);
    // flock has no timeout: poll it as iptables' -w/-W does.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) return Error("locking " + path + ": " + errno_text(errno));
      if (std::chrono::steady_clock::now() >= deadline) {
        return Error("another app is holding the xtables lock " + path + "; gave up after " +
                     std::to_string(wait_seconds) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return lock;
  }
  XtablesLock(XtablesLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  XtablesLock& operator=(XtablesLock&&) = delete;
  ~XtablesLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit XtablesLock(int fd) : fd_(fd) {}
  int fd_;
};

// ipset names to kernel indices, over ip_set's getsockopt interface (what libxt_set does).
class IpsetIndices {
 public:
  Expected<std::uint16_t> operator()(std::string_view name) {
    if (auto it = cache_.find(std::string(name)); it != cache_.end()) return it->second;
    if (name.size() >= IPSET_MAXNAMELEN) return Error("name too long");
    if (!socket_) {
      const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
      if (fd < 0) return Error("socket(AF_INET, SOCK_RAW): " + errno_text(errno));
      socket_.emplace(fd);
      ip_set_req_version version{};
      version.op = IP_SET_OP_VERSION;
      socklen_t size = sizeof version;
      if (::getsockopt(fd, SOL_IP, SO_IP_SET, &version, &size) != 0) {
        return Error("reading the ip_set protocol version: " + errno_text(errno));
      }
      version_ = version.version;
    }
    ip_set_req_get_set req{};
    req.op = IP_SET_OP_GET_BYNAME;
    req.version = version_;
    std::memcpy(req.set.name, name.data(), name.size());
    socklen_t size = sizeof req;
    if (::getsockopt(socket_->fd, SOL_IP, SO_IP_SET, &req, &size) != 0) {
      return Error("looking the set up: " + errno_text(errno));
    }
    if (req.set.index == IPSET_INVALID_ID) return Error("no such set");
    cache_.emplace(std::string(name), req.set.index);
    return req.set.index;
  }

 private:
  struct Fd {
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { ::close(fd); }
    int fd;
  };
  std::optional<Fd> socket_;
  unsigned version_ = 0;
  std::map<std::string, std::uint16_t, std::less<>> cache_;
};

using Handle = std::unique_ptr<xtc_handle, decltype(&iptc_free)>;

std::string iptc_error(const char* what, std::string_view table, std::string_view chain) {
  return "libiptc: " + std::string(table) + " " + std::string(chain) + ": " + what + ": " + iptc_strerror(errno);
}

Status write_block(const TableBlock& block, IpsetIndices& ipsets, std::size_t& bytes) {
  const std::string table(kernel::table_name(block.table));
  Handle handle(iptc_init(table.c_str()), &iptc_free);
  if (!handle) return Error("libiptc: reading the " + table + " table: " + iptc_strerror(errno));
  xtc_handle* h = handle.get();

  // Declared chains are flushed or created, as ":CHAIN - [0:0]" does under --noflush.
  auto declare = [&](const std::string& name) -> Status {
    if (iptc_is_chain(name.c_str(), h) != 0) {
      if (iptc_flush_entries(name.c_str(), h) == 0) return Error(iptc_error("flushing", table, name));
    } else if (iptc_create_chain(name.c_str(), h) == 0) {
      return Error(iptc_error("creating", table, name));
    }
    return {};
  };
  for (const Chain* chain : block.chains) {
    if (Status s = declare(chain->name); !s.ok()) return s;
  }
  for (const std::string& name : block.deleted_chains) {
    if (Status s = declare(name); !s.ok()) return s;
  }
  const IpsetIndexResolver resolve = [&](std::string_view name) { return ipsets(name); };
  for (const Chain* chain : block.chains) {
    for (const Rule& rule : chain->rules) {
      // libiptc takes an unknown jump target for an extension and fails only at commit,
      // without saying which; iptables-restore names the rule, and so does kproxy.
      if (const auto* jump = std::get_if<Jump>(&rule.target);
          jump != nullptr && iptc_is_chain(jump->chain.c_str(), h) == 0) {
        return Error("libiptc: " + table + " " + chain->name + " rule \"" + rule_spec(rule) + "\": no chain " +
                     jump->chain + " to jump to");
      }
      auto entry = encode_ipv4_entry(rule, resolve);
      if (!entry.ok()) return Error("libiptc: " + table + " " + chain->name + " rule \"" + rule_spec(rule) + "\": " +
                                    entry.error());
      bytes += entry->size();
      if (iptc_append_entry(chain->name.c_str(), reinterpret_cast<const ipt_entry*>(entry->data()), h) == 0) {
        return Error(iptc_error(("appending \"" + rule_spec(rule) + "\"").c_str(), table, chain->name));
      }
    }
  }
  for (const std::string& name : block.deleted_chains) {
    if (iptc_delete_chain(name.c_str(), h) == 0) return Error(iptc_error("deleting", table, name));
  }
  if (iptc_commit(h) == 0) return Error("libiptc: committing the " + table + " table: " + iptc_strerror(errno));
  return {};
}

Status ensure_table_jumps(kernel::Table table_id, const std::vector<const BuiltinJump*>& jumps, IpsetIndices& ipsets,
                          std::size_t& inserted) {
  const std::string table(kernel::table_name(table_id));
  Handle handle(iptc_init(table.c_str()), &iptc_free);
  if (!handle) return Error("libiptc: reading the " + table + " table: " + iptc_strerror(errno));
  const IpsetIndexResolver resolve = [&](std::string_view name) { return ipsets(name); };
  std::size_t added = 0;
  for (const BuiltinJump* jump : jumps) {
    auto entry = encode_ipv4_entry(jump->rule, resolve);
    if (!entry.ok()) return Error(jump_error(*jump, entry.error()));
    auto* e = reinterpret_cast<ipt_entry*>(entry->data());
    // Compare every byte, as "iptables -C" does for these matches (none has kernel-only state).
    std::vector<unsigned char> mask(entry->size(), 0xFF);
    if (iptc_check_entry(jump->chain.c_str(), e, mask.data(), handle.get()) != 0) continue;
    if (iptc_insert_entry(jump->chain.c_str(), e, 0, handle.get()) == 0) {
      return Error(jump_error(*jump, std::string("libiptc: ") + iptc_strerror(errno)));
    }
    ++added;
  }
  if (added > 0 && iptc_commit(handle.get()) == 0) {
    return Error("libiptc: committing the " + table + " table: " + iptc_strerror(errno));
  }
  inserted += added;
  return {};
}

}  // namespace

Expected<std::size_t> LibiptcApplier::ensure_jumps(const std::vector<BuiltinJump>& jumps) {
  auto lock = XtablesLock::acquire(options_.lock_path, options_.wait_seconds);
  if (!lock.ok()) return Error(lock.error());
  IpsetIndices ipsets;
  std::size_t inserted = 0;
  for (kernel::Table table : {kernel::Table::kFilter, kernel::Table::kNat}) {
    std::vector<const BuiltinJump*> of_table;
    for (const BuiltinJump& j : jumps) {
      if (j.table == table) of_table.push_back(&j);
    }
    if (of_table.empty()) continue;
    if (Status s = ensure_table_jumps(table, of_table, ipsets, inserted); !s.ok()) return Error(s.message());
  }
  return inserted;
}

Expected<std::size_t> LibiptcApplier::apply(const std::vector<TableBlock>& blocks) {
  auto lock = XtablesLock::acquire(options_.lock_path, options_.wait_seconds);
  if (!lock.ok()) return Error(lock.error());
  IpsetIndices ipsets;
  std::size_t bytes = 0;
  for (const TableBlock& block : blocks) {
    if (Status s = write_block(block, ipsets, bytes); !s.ok()) return Error(s.message());
  }
  return bytes;
}

}  // namespace kproxy::iptables
