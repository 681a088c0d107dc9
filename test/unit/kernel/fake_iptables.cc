#include "fake_iptables.h"

#include <algorithm>
#include <set>

namespace kproxy::kernel {
namespace {

// Targets that are extensions, not chains; the value lists the tables that allow it (empty: all).
const std::map<std::string, std::set<Table>>& extension_targets() {
  static const std::map<std::string, std::set<Table>> targets = {
      {"ACCEPT", {}}, {"DROP", {}}, {"RETURN", {}}, {"QUEUE", {}}, {"NFQUEUE", {}},
      {"REJECT", {Table::kFilter, Table::kMangle, Table::kRaw}},
      {"LOG", {}}, {"NFLOG", {}}, {"MARK", {}}, {"CONNMARK", {}}, {"TRACE", {Table::kRaw}},
      {"CT", {Table::kRaw}}, {"NOTRACK", {Table::kRaw}}, {"CLASSIFY", {Table::kMangle}},
      {"TPROXY", {Table::kMangle}}, {"DNAT", {Table::kNat}}, {"SNAT", {Table::kNat}},
      {"MASQUERADE", {Table::kNat}}, {"REDIRECT", {Table::kNat}}, {"NETMAP", {Table::kNat}}};
  return targets;
}

constexpr std::size_t kMaxChainName = 28;  // XT_EXTENSION_MAXNAMELEN - 1

// Splits on blanks; a double-quoted string is one token, kept with its quotes.
std::vector<std::string> tokenize(std::string_view line, std::string* error) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::string tok;
    bool quoted = false;
    while (i < line.size() && (quoted || (line[i] != ' ' && line[i] != '\t'))) {
      if (line[i] == '\\' && quoted && i + 1 < line.size()) {
        tok += line[i];
        tok += line[i + 1];
        i += 2;
        continue;
      }
      if (line[i] == '"') quoted = !quoted;
      tok += line[i++];
    }
    if (quoted) {
      *error = "unterminated quoted string";
      return {};
    }
    out.push_back(std::move(tok));
  }
  return out;
}

std::string join(const std::vector<std::string>& v, std::size_t from) {
  std::string s;
  for (std::size_t i = from; i < v.size(); ++i) {
    if (!s.empty()) s += ' ';
    s += v[i];
  }
  return s;
}

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_counters(const std::string& s) {
  return s.size() >= 5 && s.front() == '[' && s.back() == ']' && s.find(':') != std::string::npos;
}

// The chains a rule spec jumps or goes to (-j/--jump/-g/--goto).
std::vector<std::pair<std::string, bool>> targets_of(const std::vector<std::string>& spec) {
  std::vector<std::pair<std::string, bool>> out;  // (target, is_goto)
  for (std::size_t i = 0; i + 1 < spec.size(); ++i) {
    if (spec[i] == "-j" || spec[i] == "--jump") out.emplace_back(spec[i + 1], false);
    if (spec[i] == "-g" || spec[i] == "--goto") out.emplace_back(spec[i + 1], true);
  }
  return out;
}

std::vector<std::string> spec_targets(const std::string& rule) {
  std::string ignored;
  std::vector<std::string> out;
  for (auto& [t, g] : targets_of(tokenize(rule, &ignored))) out.push_back(t);
  return out;
}

class Block {
 public:
  Block(Table table, FakeIptables::TableState state) : table_(table), state_(std::move(state)) {}
  FakeIptables::TableState& state() { return state_; }

  // Returns an error reason, or empty when the line applied.
  std::string apply(const std::vector<std::string>& tokens, bool noflush) {
    std::size_t i = 0;
    if (i < tokens.size() && is_counters(tokens[i])) ++i;
    if (i >= tokens.size()) return "empty command";
    const std::string& cmd = tokens[i++];
    auto arg = [&]() -> std::optional<std::string> {
      if (i < tokens.size() && tokens[i].front() != '-') return tokens[i++];
      return std::nullopt;
    };
    if (cmd == "-A" || cmd == "--append" || cmd == "-I" || cmd == "--insert" || cmd == "-D" || cmd == "--delete" ||
        cmd == "-R" || cmd == "--replace" || cmd == "-C" || cmd == "--check") {
      auto name = arg();
      if (!name) return "option \"" + cmd + "\" requires a chain name";
      auto* c = find(*name);
      if (!c) return "chain '" + *name + "' does not exist";
      std::optional<std::size_t> num;
      if ((cmd == "-I" || cmd == "--insert" || cmd == "-D" || cmd == "--delete" || cmd == "-R" ||
           cmd == "--replace") && i < tokens.size() && is_number(tokens[i])) {
        num = static_cast<std::size_t>(std::stoul(tokens[i++]));
      }
      std::vector<std::string> spec(tokens.begin() + static_cast<long>(i), tokens.end());
      std::string rule = join(spec, 0);
      if (cmd == "-D" || cmd == "--delete") {
        if (num) {
          if (!spec.empty()) return "-D with a rule number takes no rule";
          if (*num < 1 || *num > c->rules.size()) return "index of deletion too big";
          c->rules.erase(c->rules.begin() + static_cast<long>(*num - 1));
          return {};
        }
        if (std::string e = check_targets(spec); !e.empty()) return e;
        auto it = std::find(c->rules.begin(), c->rules.end(), rule);
        if (it == c->rules.end()) return "bad rule (does a matching rule exist in that chain?)";
        c->rules.erase(it);
        return {};
      }
      if (std::string e = check_targets(spec); !e.empty()) return e;
      if (cmd == "-C" || cmd == "--check") {  // iptables-restore runs checks too; a miss fails the block
        if (std::find(c->rules.begin(), c->rules.end(), rule) == c->rules.end()) {
          return "bad rule (does a matching rule exist in that chain?)";
        }
        return {};
      }
      if (cmd == "-A" || cmd == "--append") {
        c->rules.push_back(rule);
      } else if (cmd == "-I" || cmd == "--insert") {
        std::size_t pos = num.value_or(1);
        if (pos < 1 || pos > c->rules.size() + 1) return "index of insertion too big";
        c->rules.insert(c->rules.begin() + static_cast<long>(pos - 1), rule);
      } else {
        if (!num) return "-R needs a rule number";
        if (*num < 1 || *num > c->rules.size()) return "index of replacement too big";
        c->rules[*num - 1] = rule;
      }
      return {};
    }
    if (cmd == "-N" || cmd == "--new-chain") {
      auto name = arg();
      if (!name) return "-N requires a chain name";
      if (i != tokens.size()) return "unexpected argument after -N " + *name;
      return create(*name);
    }
    if (cmd == "-X" || cmd == "--delete-chain") {
      auto name = arg();
      if (i != tokens.size()) return "unexpected argument after -X";
      if (name) return remove(*name);
      std::vector<std::string> users;
      for (auto& [n, c] : state_.chains) {
        if (!c.builtin) users.push_back(n);
      }
      for (auto& n : users) {
        if (std::string e = remove(n); !e.empty()) return e;
      }
      return {};
    }
    if (cmd == "-F" || cmd == "--flush") {
      auto name = arg();
      if (i != tokens.size()) return "unexpected argument after -F";
      if (!name) {
        for (auto& [n, c] : state_.chains) c.rules.clear();
        return {};
      }
      auto* c = find(*name);
      if (!c) return "chain '" + *name + "' does not exist";
      c->rules.clear();
      return {};
    }
    if (cmd == "-P" || cmd == "--policy") {
      auto name = arg();
      auto policy = arg();
      if (!name || !policy || i != tokens.size()) return "-P needs a chain and a policy";
      return set_policy(*name, *policy);
    }
    (void)noflush;
    return "unknown command \"" + cmd + "\"";
  }

  // ":NAME POLICY [p:b]".
  std::string declare(const std::vector<std::string>& tokens, bool noflush) {
    if (tokens.size() < 2 || tokens.size() > 3 || tokens[0].size() < 2) return "malformed chain line";
    if (tokens.size() == 3 && !is_counters(tokens[2])) return "malformed counters \"" + tokens[2] + "\"";
    std::string name = tokens[0].substr(1);
    const std::string& policy = tokens[1];
    if (auto* c = find(name); c && c->builtin) {
      if (policy == "-") return {};
      return set_policy(name, policy);
    }
    if (policy != "-") return "can't set policy `" + policy + "' on `" + name + "': bad built-in chain name";
    if (auto* c = find(name)) {
      (void)noflush;  // without --noflush the table was emptied at "*table", so c is new here
      c->rules.clear();
      return {};
    }
    return create(name);
  }

  // Without --noflush iptables-restore empties every table it is given.
  void flush_all() {
    for (auto it = state_.chains.begin(); it != state_.chains.end();) {
      if (it->second.builtin) {
        it->second.rules.clear();
        ++it;
      } else {
        it = state_.chains.erase(it);
      }
    }
  }

 private:
  FakeIptables::Chain* find(const std::string& name) {
    auto it = state_.chains.find(name);
    return it == state_.chains.end() ? nullptr : &it->second;
  }

  std::string create(const std::string& name) {
    if (name.empty() || name.size() > kMaxChainName) return "invalid chain name `" + name + "'";
    if (extension_targets().count(name)) return "chain name `" + name + "' is a target name";
    if (find(name)) return "chain already exists";
    state_.chains[name] = FakeIptables::Chain{false, "-", {}};
    return {};
  }

  std::string remove(const std::string& name) {
    auto* c = find(name);
    if (!c) return "chain '" + name + "' does not exist";
    if (c->builtin) return "can't delete built-in chain " + name;
    if (!c->rules.empty()) return "chain " + name + " is not empty";
    for (auto& [n, other] : state_.chains) {
      for (auto& r : other.rules) {
        for (auto& t : spec_targets(r)) {
          if (t == name) return "chain " + name + " is still referenced by chain " + n;
        }
      }
    }
    state_.chains.erase(name);
    return {};
  }

  std::string set_policy(const std::string& name, const std::string& policy) {
    auto* c = find(name);
    if (!c || !c->builtin) return "can't set policy `" + policy + "' on `" + name + "': bad built-in chain name";
    if (policy != "ACCEPT" && policy != "DROP") return "bad policy name `" + policy + "'";
    c->policy = policy;
    return {};
  }

  std::string check_targets(const std::vector<std::string>& spec) {
    for (auto& [target, is_goto] : targets_of(spec)) {
      auto ext = extension_targets().find(target);
      if (ext != extension_targets().end() && !is_goto) {
        if (!ext->second.empty() && !ext->second.count(table_)) {
          return target + " target is not valid in the " + std::string(table_name(table_)) + " table";
        }
        continue;
      }
      auto* c = find(target);
      if (!c) return "chain '" + target + "' does not exist (couldn't load target `" + target + "')";
      if (c->builtin) return "can't jump to built-in chain " + target;
    }
    return {};
  }

  Table table_;
  FakeIptables::TableState state_;
};

}  // namespace

const std::vector<std::string>& builtin_chains(Table table) {
  static const std::map<Table, std::vector<std::string>> chains = {
      {Table::kFilter, {"INPUT", "FORWARD", "OUTPUT"}},
      {Table::kNat, {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}},
      {Table::kMangle, {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}},
      {Table::kRaw, {"PREROUTING", "OUTPUT"}}};
  return chains.at(table);
}

FakeIptables::FakeIptables(IptablesFlavour flavour, IpFamily family) : flavour_(flavour), family_(family) {
  for (Table t : {Table::kFilter, Table::kNat, Table::kMangle, Table::kRaw}) {
    for (const auto& name : builtin_chains(t)) tables_[t].chains[name] = Chain{true, "ACCEPT", {}};
  }
}

const FakeIptables::Chain* FakeIptables::chain(Table t, const std::string& name) const {
  const auto& chains = tables_.at(t).chains;
  auto it = chains.find(name);
  return it == chains.end() ? nullptr : &it->second;
}

Status FakeIptables::restore(std::string_view payload, RestoreFlags flags) {
  ++restore_calls_;
  if (fail_next_) {
    std::string msg = std::move(*fail_next_);
    fail_next_.reset();
    return Error(msg);
  }
  auto fail = [&](int line, const std::string& reason) -> Status {
    std::string err = "fake iptables-restore: line " + std::to_string(line) + " failed: " + reason;
    return Error(format_restore_error("iptables-restore failed", err, payload, line));
  };

  std::optional<Table> current;
  std::optional<Block> block;
  int line_no = 0;
  std::size_t start = 0;
  while (start < payload.size()) {
    std::size_t end = payload.find('\n', start);
    if (end == std::string_view::npos) end = payload.size();
    std::string_view line = payload.substr(start, end - start);
    start = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;

    if (line.front() == '*') {
      if (block) return fail(line_no, "COMMIT expected before a new table");
      auto t = parse_table(line.substr(1));
      if (!t) return fail(line_no, "table name '" + std::string(line.substr(1)) + "' invalid");
      current = *t;
      block.emplace(*t, tables_.at(*t));
      if (!flags.noflush) block->flush_all();
      continue;
    }
    if (!block) return fail(line_no, "no table given (a \"*table\" line must come first)");
    if (line == "COMMIT") {
      tables_[*current] = std::move(block->state());  // each COMMIT is atomic, as in the kernel
      block.reset();
      current.reset();
      continue;
    }
    std::string tok_err;
    auto tokens = tokenize(line, &tok_err);
    if (!tok_err.empty()) return fail(line_no, tok_err);
    std::string err = line.front() == ':' ? block->declare(tokens, flags.noflush) : block->apply(tokens, flags.noflush);
    if (!err.empty()) return fail(line_no, err);
  }
  if (block) return fail(line_no + 1, "COMMIT expected");
  return {};
}

Expected<std::string> FakeIptables::save(Table t) {
  ++save_calls_;
  const auto& chains = tables_.at(t).chains;
  std::string out = "# Generated by fake iptables-save\n*" + std::string(table_name(t)) + "\n";
  std::vector<std::string> order = builtin_chains(t);
  for (const auto& [name, c] : chains) {
    if (!c.builtin) order.push_back(name);  // std::map: user chains sorted by name
  }
  for (const auto& name : order) out += ":" + name + " " + chains.at(name).policy + " [0:0]\n";
  for (const auto& name : order) {
    for (const auto& r : chains.at(name).rules) out += "-A " + name + (r.empty() ? "" : " " + r) + "\n";
  }
  out += "COMMIT\n# Completed\n";
  return out;
}

Expected<bool> FakeIptables::chain_exists(Table t, std::string_view name) {
  return chain(t, std::string(name)) != nullptr;
}

namespace {
// ARGS as the fake stores a rule: joined, comments quoted, whitespace-normalized.
Expected<std::string> spec_of(const std::vector<std::string>& args) {
  std::string line;
  for (const auto& a : args) {
    if (!line.empty()) line += ' ';
    line += a.find(' ') == std::string::npos ? a : '"' + a + '"';
  }
  std::string err;
  std::string spec = join(tokenize(line, &err), 0);
  if (!err.empty()) return Error("fake iptables: " + err);
  return spec;
}
}  // namespace

Expected<bool> FakeIptables::delete_rule(Table t, std::string_view name, const std::vector<std::string>& args) {
  auto& chains = tables_.at(t).chains;
  auto spec = spec_of(args);
  if (!spec.ok()) return Error(spec.error());
  // As iptables: a jump to a chain that does not exist is a usage error (status 2), even
  // before the rule is looked for.
  for (const auto& target : spec_targets(*spec)) {
    if (target.starts_with("KUBE-") && chains.find(target) == chains.end()) {
      return Error("fake iptables: -D " + std::string(name) + ": Chain '" + target + "' does not exist");
    }
  }
  auto it = chains.find(std::string(name));
  if (it == chains.end()) return false;
  auto& rules = it->second.rules;
  auto found = std::find(rules.begin(), rules.end(), *spec);
  if (found == rules.end()) return false;
  rules.erase(found);
  return true;
}

Expected<std::optional<std::string>> FakeIptables::rule_at(Table t, std::string_view name, int index) {
  const Chain* c = chain(t, std::string(name));
  if (c == nullptr) return std::optional<std::string>();
  if (index < 1 || static_cast<std::size_t>(index) > c->rules.size()) return std::optional<std::string>("");
  return std::optional<std::string>("-A " + std::string(name) + " " + c->rules[static_cast<std::size_t>(index) - 1]);
}

void FakeIptables::flush_table(Table t) {
  for (auto& [name, c] : tables_.at(t).chains) c.rules.clear();
}

Expected<bool> FakeIptables::ensure_rule(Table t, std::string_view name, const std::vector<std::string>& args) {
  ++ensure_rule_calls_;
  auto& chains = tables_.at(t).chains;
  auto it = chains.find(std::string(name));
  if (it == chains.end()) return Error("fake iptables: -C " + std::string(name) + ": no chain by that name");
  auto spec_or = spec_of(args);
  if (!spec_or.ok()) return Error(spec_or.error());
  const std::string spec = *spec_or;
  for (const auto& target : spec_targets(spec)) {
    if (target.starts_with("KUBE-") && chains.find(target) == chains.end()) {
      return Error("fake iptables: -I " + std::string(name) + ": jump to missing chain " + target);
    }
  }
  auto& rules = it->second.rules;
  if (std::find(rules.begin(), rules.end(), spec) != rules.end()) return false;
  rules.insert(rules.begin(), spec);
  return true;
}

std::string kube_chains_view(std::string_view save_output) {
  std::set<std::string> decls;
  std::map<std::string, std::vector<std::string>> rules;
  std::size_t start = 0;
  while (start < save_output.size()) {
    std::size_t end = save_output.find('\n', start);
    if (end == std::string_view::npos) end = save_output.size();
    std::string line(save_output.substr(start, end - start));
    start = end + 1;
    if (line.rfind(":KUBE-", 0) == 0) {
      decls.insert(line.substr(0, line.find(' ')));
    } else if (line.rfind("-A ", 0) == 0) {
      std::size_t sp = line.find(' ', 3);
      std::string chain = line.substr(3, sp == std::string::npos ? std::string::npos : sp - 3);
      if (chain.rfind("KUBE-", 0) == 0 || line.find(" KUBE-") != std::string::npos) rules[chain].push_back(line);
    }
  }
  std::string out;
  for (const auto& d : decls) out += d + "\n";
  for (const auto& [chain, lines] : rules) {
    for (const auto& l : lines) out += l + "\n";
  }
  return out;
}

}  // namespace kproxy::kernel
