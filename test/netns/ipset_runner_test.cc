// The two IpsetRunners on the real kernel, each in a namespace of its own: ExecIpsetRunner
// runs ipset through "ip netns exec <ns>", LibIpsetRunner is called from the test thread while
// it is inside the namespace (ScopedNetnsEntry around each call). The same
// behaviours are checked on both (a typed test), then both run one script side by side and
// must leave the same sets. The root namespace's ipsets and iptables are never touched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/kernel/libipset_runner.h"
#include "kproxy/text.h"
#include "netns.h"

namespace kproxy::kernel {
namespace {

using kproxy::testing::Netns;
using kproxy::testing::ScopedNetnsEntry;
using Entries = std::vector<std::string>;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct ExecFlavour {
  static constexpr const char* kName = "Exec";
  // "ipset restore" reports a bad entry as "Syntax error: '99999' is out of range 0-65535",
  // naming neither the set nor the entry (nor, for a missing set, the set).
  static constexpr bool kNamesSetAndEntry = false;
  static std::unique_ptr<IpsetRunner> make(const Netns& ns) {
    return std::make_unique<ExecIpsetRunner>(ExecIpsetOptions{{"ip", "netns", "exec", ns.name()}});
  }
};

// LibIpsetRunner works in the namespace of the thread that calls it: every call enters the
// test namespace, and the test thread is back in its own namespace in between.
class InNamespace final : public IpsetRunner {
 public:
  explicit InNamespace(std::string ns) : ns_(std::move(ns)) {}
  Status apply(const IpsetSpec& spec) override {
    ScopedNetnsEntry in(ns_);
    if (!in.ok()) return Error(in.error());
    return lib_.apply(spec);
  }
  Status change(std::string_view name, const std::vector<std::string>& add,
                const std::vector<std::string>& remove) override {
    ScopedNetnsEntry in(ns_);
    if (!in.ok()) return Error(in.error());
    return lib_.change(name, add, remove);
  }
  Expected<std::optional<std::vector<std::string>>> list(std::string_view name) override {
    ScopedNetnsEntry in(ns_);
    if (!in.ok()) return Error(in.error());
    return lib_.list(name);
  }
  Expected<bool> destroy(std::string_view name) override {
    ScopedNetnsEntry in(ns_);
    if (!in.ok()) return Error(in.error());
    return lib_.destroy(name);
  }

 private:
  std::string ns_;
  LibIpsetRunner lib_;
};

struct LibFlavour {
  static constexpr const char* kName = "Lib";
  static constexpr bool kNamesSetAndEntry = true;
  static std::unique_ptr<IpsetRunner> make(const Netns& ns) { return std::make_unique<InNamespace>(ns.name()); }
};

// The namespace and its runner.
struct Node {
  std::unique_ptr<Netns> ns;
  std::unique_ptr<IpsetRunner> runner;  // destroyed before the namespace
  ~Node() { runner.reset(); }

  // Ground truth, read with the ipset binary inside the namespace.
  Entries kernel_entries(const std::string& set) const {
    return ipset_entries_in_save(ns->exec({"ipset", "save", set}).out);
  }
  // "ipset save" of every set without the random initval, for comparing namespaces. Temporary
  // sets are left out: after a bad entry "ipset restore" leaves "<name>-tmp" created, where
  // LibIpsetRunner, which parses every entry first, sent nothing.
  std::string kernel_save() const {
    const std::string save = ns->exec({"ipset", "save"}).out;
    std::vector<std::string> lines;  // sorted: a set's entries come in hash order
    for (std::string_view line : split_lines(save)) {
      std::string l(line.substr(0, line.find(" initval ")));
      const std::size_t name_start = l.find(' ') + 1;
      const std::string set = l.substr(name_start, l.find(' ', name_start) - name_start);
      if (!set.ends_with("-tmp")) lines.push_back(l);
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
  std::vector<std::string> set_names() const {
    std::vector<std::string> names;
    const std::string out = ns->exec({"ipset", "list", "-n"}).out;
    for (std::string_view n : split_lines(out)) names.emplace_back(n);
    std::sort(names.begin(), names.end());
    return names;
  }
};

template <typename Flavour>
bool make_node(const std::string& tag, Node* node) {
  Netns::remove_stale(tag);
  node->ns = std::make_unique<Netns>(tag);
  EXPECT_TRUE(node->ns->ok());
  if (!node->ns->ok()) return false;
  node->runner = Flavour::make(*node->ns);
  return true;
}

template <typename Flavour>
class IpsetRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    ASSERT_TRUE(make_node<Flavour>(std::string("ipset-") + Flavour::kName, &node_));
  }
  IpsetRunner& runner() { return *node_.runner; }
  Entries list(const std::string& set) {
    auto l = runner().list(set);
    EXPECT_TRUE(l.ok()) << l.error();
    if (!l.ok()) return {"<error>"};
    EXPECT_TRUE(l->has_value()) << set << " missing";
    return l->value_or(Entries{"<missing>"});
  }
  void expect_content(const std::string& set, const Entries& entries) {
    EXPECT_EQ(list(set), entries) << set;
    EXPECT_EQ(node_.kernel_entries(set), entries) << set;
  }

  Node node_;
};

struct FlavourNames {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};

using Flavours = ::testing::Types<ExecFlavour, LibFlavour>;
TYPED_TEST_SUITE(IpsetRunnerTest, Flavours, FlavourNames);

struct TypeCase {
  std::string type;
  IpFamily family;
  Entries first, second;
  std::optional<std::pair<std::uint16_t, std::uint16_t>> port_range = std::nullopt;  // bitmap:port

  IpsetSpec spec(const std::string& name, const Entries& entries) const {
    IpsetSpec s{name, type, family, entries};
    s.port_range = port_range;
    return s;
  }
  // What "ipset save" prints of the set's creation (up to the options kproxy leaves alone).
  std::string create_line(const std::string& name) const {
    if (port_range) {
      return "create " + name + " " + type + " range " + std::to_string(port_range->first) + "-" +
             std::to_string(port_range->second);
    }
    return "create " + name + " " + type + " family " + std::string(ipset_family_name(family));
  }
};

// bitmap:port (kube-proxy's KUBE-NODE-PORT-* sets) is created with a "range" and neither
// "family" nor "maxelem"; its entries are bare ports, which "ipset save" prints in numeric
// order and list() returns sorted as strings.
const std::vector<TypeCase>& type_cases() {
  static const std::vector<TypeCase> cases = {
      {"hash:ip,port",
       IpFamily::kIPv4,
       {"10.96.0.1,tcp:443", "10.96.0.2,sctp:3868", "10.96.0.3,udp:53"},
       {"10.96.0.1,tcp:443", "10.96.0.4,tcp:80"}},
      {"hash:ip,port,ip",
       IpFamily::kIPv4,
       {"10.1.0.2,tcp:8080,10.1.0.2", "10.1.0.3,udp:53,10.1.0.3"},
       {"10.1.0.3,sctp:3868,10.1.0.3"}},
      {"hash:ip,port,net",
       IpFamily::kIPv4,
       {"10.1.0.2,tcp:8080,10.0.0.0/24", "10.1.0.3,udp:53,192.168.0.0/16"},
       {"10.1.0.2,tcp:8080,10.0.0.0/24", "10.1.0.4,sctp:3868,172.16.0.0/12"}},
      {"hash:ip", IpFamily::kIPv4, {"10.96.0.1", "10.96.0.2"}, {"10.96.0.3"}},
      {"hash:ip,port", IpFamily::kIPv6, {"fd00::1,tcp:443", "fd00::2,udp:53"}, {"fd00::3,sctp:3868"}},
      {"bitmap:port", IpFamily::kIPv4, {"30080", "30081", "8080"}, {"30080", "443", "9000"}, {{0, 65535}}},
  };
  return cases;
}

TYPED_TEST(IpsetRunnerTest, ApplyCreatesThenReplacesTheContentOfEachType) {
  for (std::size_t i = 0; i < type_cases().size(); ++i) {
    const TypeCase& c = type_cases()[i];
    const std::string name = "KPT-SET-" + std::to_string(i);
    SCOPED_TRACE(c.type + " " + std::string(ipset_family_name(c.family)));
    Status s = this->runner().apply(c.spec(name, c.first));
    ASSERT_TRUE(s.ok()) << s.message();
    this->expect_content(name, c.first);
    const std::string save = this->node_.ns->exec({"ipset", "save", name}).out;
    EXPECT_TRUE(contains(save, c.create_line(name))) << save;
    if (c.port_range) {
      EXPECT_FALSE(contains(save, "family")) << save;
      EXPECT_FALSE(contains(save, "maxelem")) << save;
    }
    s = this->runner().apply(c.spec(name, c.second));
    ASSERT_TRUE(s.ok()) << s.message();
    this->expect_content(name, c.second);
    s = this->runner().apply(c.spec(name, {}));
    ASSERT_TRUE(s.ok()) << s.message();
    this->expect_content(name, {});
  }
  const auto names = this->node_.set_names();
  EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n.ends_with("-tmp"); }), 0);
  EXPECT_EQ(names.size(), type_cases().size());
}

TYPED_TEST(IpsetRunnerTest, ApplySwapsASetThatIptablesReferencesAndDestroyFailsMeanwhile) {
  const std::string name = "KPT-REFERENCED";
  const Entries first = {"10.96.0.1,tcp:443", "10.96.0.2,sctp:3868"};
  ASSERT_TRUE(this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, first}).ok());
  const std::vector<std::string> rule = {"INPUT", "-m", "set", "--match-set", name, "dst,dst", "-j", "ACCEPT"};
  std::vector<std::string> add = {"iptables", "-A"};
  add.insert(add.end(), rule.begin(), rule.end());
  ASSERT_EQ(this->node_.ns->exec_ok(add).exit_code, 0);

  const Entries second = {"10.96.0.3,udp:53"};
  Status s = this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, second});
  ASSERT_TRUE(s.ok()) << s.message();
  this->expect_content(name, second);

  auto in_use = this->runner().destroy(name);
  ASSERT_FALSE(in_use.ok());
  EXPECT_TRUE(contains(in_use.error(), name)) << in_use.error();
  EXPECT_TRUE(contains(in_use.error(), "in use by a kernel component")) << in_use.error();
  this->expect_content(name, second);

  std::vector<std::string> del = {"iptables", "-D"};
  del.insert(del.end(), rule.begin(), rule.end());
  ASSERT_EQ(this->node_.ns->exec_ok(del).exit_code, 0);
  auto destroyed = this->runner().destroy(name);
  ASSERT_TRUE(destroyed.ok()) << destroyed.error();
  EXPECT_TRUE(*destroyed);
  auto again = this->runner().destroy(name);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_FALSE(*again);
  // The runner forgot the set: the next apply creates it again.
  ASSERT_TRUE(this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, first}).ok());
  this->expect_content(name, first);
}

TYPED_TEST(IpsetRunnerTest, ChangeAddsAndRemovesWithExistSemantics) {
  const std::string name = "KPT-CHANGE";
  ASSERT_TRUE(
      this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, {"10.96.0.1,tcp:443", "10.96.0.2,tcp:80"}}).ok());
  Status s = this->runner().change(name, {"10.96.0.3,sctp:3868", "10.96.0.1,tcp:443"},  // the second is present
                                   {"10.96.0.2,tcp:80", "10.96.0.9,udp:53"});           // the second is absent
  ASSERT_TRUE(s.ok()) << s.message();
  this->expect_content(name, {"10.96.0.1,tcp:443", "10.96.0.3,sctp:3868"});
  EXPECT_TRUE(this->runner().change(name, {}, {}).ok());
  EXPECT_TRUE(this->runner().change("KPT-NOT-THERE", {}, {}).ok());  // nothing to do, nothing asked

  Status missing = this->runner().change("KPT-NOT-THERE", {"10.96.0.1,tcp:443"}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.message(), "does not exist")) << missing.message();
  if (TypeParam::kNamesSetAndEntry) {
    EXPECT_TRUE(contains(missing.message(), "KPT-NOT-THERE")) << missing.message();
  }
}

// kube-proxy's KUBE-NODE-PORT-TCP and the like: bitmap:port over 0-65535, bare ports.
TYPED_TEST(IpsetRunnerTest, BitmapPortSetsApplyChangeAndListSortedAsStrings) {
  const std::string name = "KPT-NODE-PORT";
  IpsetSpec spec{name, "bitmap:port", IpFamily::kIPv4, {"30080", "30081", "8080"}};
  spec.port_range = {{0, 65535}};
  Status s = this->runner().apply(spec);
  ASSERT_TRUE(s.ok()) << s.message();
  // "ipset save" prints them in numeric order; list() sorts them as strings, as it does for
  // every type.
  const std::string save = this->node_.ns->exec({"ipset", "save", name}).out;
  EXPECT_TRUE(contains(save, "create " + name + " bitmap:port range 0-65535")) << save;
  EXPECT_LT(save.find("add " + name + " 8080\n"), save.find("add " + name + " 30080\n")) << save;
  this->expect_content(name, {"30080", "30081", "8080"});

  s = this->runner().change(name, {"9000", "30080"},  // the second is present
                            {"30081", "1"});          // the second is absent
  ASSERT_TRUE(s.ok()) << s.message();
  this->expect_content(name, {"30080", "8080", "9000"});

  ASSERT_EQ(this->node_.ns->exec_ok({"ipset", "add", name, "65535"}).exit_code, 0);
  ASSERT_EQ(this->node_.ns->exec_ok({"ipset", "add", name, "0"}).exit_code, 0);
  EXPECT_EQ(this->list(name), (Entries{"0", "30080", "65535", "8080", "9000"}));

  // A replacement (swap) keeps the set's type; a bad port fails and keeps the content.
  spec.entries = {"30082"};
  s = this->runner().apply(spec);
  ASSERT_TRUE(s.ok()) << s.message();
  this->expect_content(name, {"30082"});
  spec.entries = {"30083", "99999"};
  s = this->runner().apply(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(contains(s.message(), "99999")) << s.message();
  this->expect_content(name, {"30082"});
}

TYPED_TEST(IpsetRunnerTest, ListIsSortedAndMissingSetsAreNullopt) {
  const std::string name = "KPT-LIST";
  ASSERT_TRUE(this->runner().apply({name, "hash:ip", IpFamily::kIPv4, {}}).ok());
  for (const char* ip : {"10.96.0.30", "10.96.0.4", "10.96.0.200", "10.96.0.1"}) {
    ASSERT_EQ(this->node_.ns->exec_ok({"ipset", "add", name, ip}).exit_code, 0);
  }
  EXPECT_EQ(this->list(name), (Entries{"10.96.0.1", "10.96.0.200", "10.96.0.30", "10.96.0.4"}));
  auto missing = this->runner().list("KPT-NOT-THERE");
  ASSERT_TRUE(missing.ok()) << missing.error();
  EXPECT_FALSE(missing->has_value());
  auto no_set = this->runner().destroy("KPT-NOT-THERE");
  ASSERT_TRUE(no_set.ok()) << no_set.error();
  EXPECT_FALSE(*no_set);
}

TYPED_TEST(IpsetRunnerTest, BadEntryFailsAndKeepsTheContent) {
  const std::string name = "KPT-BAD";
  const Entries good = {"10.96.0.1,tcp:443", "10.96.0.2,sctp:3868"};
  ASSERT_TRUE(this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, good}).ok());

  const std::string bad = "10.96.0.1,tcp:99999";
  Status s =
      this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, {"10.96.0.0,tcp:80", bad, "10.96.0.3,udp:53"}});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(contains(s.message(), "99999")) << s.message();
  if (TypeParam::kNamesSetAndEntry) {
    EXPECT_TRUE(contains(s.message(), name)) << s.message();
    EXPECT_TRUE(contains(s.message(), bad)) << s.message();
  }
  this->expect_content(name, good);

  s = this->runner().change(name, {"10.96.0.7,tcp:80", bad}, {"10.96.0.1,tcp:443"});
  ASSERT_FALSE(s.ok());
  if (TypeParam::kNamesSetAndEntry) {
    EXPECT_TRUE(contains(s.message(), "add " + name + " " + bad)) << s.message();
  }
  this->expect_content(name, good);  // the good line before the bad one was not sent either

  // A duplicate is refused by the kernel, not the parser: the error still names the entry.
  s = this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, {"10.96.0.5,tcp:80", "10.96.0.5,tcp:80"}});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(contains(s.message(), "already added")) << s.message();
  if (TypeParam::kNamesSetAndEntry) {
    EXPECT_TRUE(contains(s.message(), "10.96.0.5,tcp:80")) << s.message();
  }
  this->expect_content(name, good);

  // A later apply works, whatever temporary set the failures left.
  const Entries next = {"10.96.0.3,udp:53"};
  s = this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, next});
  ASSERT_TRUE(s.ok()) << s.message();
  this->expect_content(name, next);
  EXPECT_EQ(this->node_.set_names(), (std::vector<std::string>{name}));
}

TYPED_TEST(IpsetRunnerTest, ApplyDestroysALeftoverTemporarySet) {
  const std::string name = "KPT-LEFT";
  ASSERT_EQ(this->node_.ns->exec_ok({"ipset", "create", name + "-tmp", "hash:ip", "family", "inet"}).exit_code, 0);
  ASSERT_EQ(this->node_.ns->exec_ok({"ipset", "add", name + "-tmp", "10.9.9.9"}).exit_code, 0);
  Status s = this->runner().apply({name, "hash:ip,port", IpFamily::kIPv4, {"10.96.0.1,tcp:443"}});
  ASSERT_TRUE(s.ok()) << s.message();
  this->expect_content(name, {"10.96.0.1,tcp:443"});
  EXPECT_EQ(this->node_.set_names(), (std::vector<std::string>{name}));
}

// Both runners run one script, each in its own namespace, and must agree on every result and
// on the sets they leave (their "ipset save", create options included).
TEST(IpsetRunnersAgree, SameScriptSameSets) {
  if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
  Node exec, lib;
  ASSERT_TRUE(make_node<ExecFlavour>("ipset-agree-exec", &exec));
  ASSERT_TRUE(make_node<LibFlavour>("ipset-agree-lib", &lib));

  auto both = [&](const std::string& what, auto&& op) {
    SCOPED_TRACE(what);
    const std::string a = op(*exec.runner), b = op(*lib.runner);
    EXPECT_EQ(a, b);
    EXPECT_EQ(exec.kernel_save(), lib.kernel_save());
  };
  auto status = [](const Status& s) { return s.ok() ? std::string("ok") : std::string("error"); };
  for (std::size_t i = 0; i < type_cases().size(); ++i) {
    const TypeCase& c = type_cases()[i];
    const std::string name = "KPT-AGREE-" + std::to_string(i);
    both("apply " + name, [&](IpsetRunner& r) { return status(r.apply(c.spec(name, c.first))); });
    both("change " + name, [&](IpsetRunner& r) { return status(r.change(name, c.second, c.first)); });
    both("list " + name, [&](IpsetRunner& r) {
      auto l = r.list(name);
      std::string out;
      if (l.ok() && l->has_value()) {
        for (const auto& e : **l) out += e + " ";
      }
      return out;
    });
  }
  both("bad apply", [&](IpsetRunner& r) {
    return status(r.apply({"KPT-AGREE-0", "hash:ip,port", IpFamily::kIPv4, {"10.96.0.1,tcp:99999"}}));
  });
  both("wrong type", [&](IpsetRunner& r) {
    return status(r.apply({"KPT-AGREE-0", "hash:ip", IpFamily::kIPv4, {"10.96.0.1"}}));
  });
  both("missing list", [&](IpsetRunner& r) { return std::to_string(r.list("KPT-NOPE")->has_value()); });
  both("destroy", [&](IpsetRunner& r) { return std::to_string(*r.destroy("KPT-AGREE-1")); });
  both("destroy again", [&](IpsetRunner& r) { return std::to_string(*r.destroy("KPT-AGREE-1")); });
  both("recreate", [&](IpsetRunner& r) {
    return status(r.apply({"KPT-AGREE-1", "hash:ip,port,ip", IpFamily::kIPv4, {"10.1.0.2,tcp:8080,10.1.0.2"}}));
  });
  // The sets left over by the failed applies are swept by the next ones.
  both("apply after failures", [&](IpsetRunner& r) {
    return status(r.apply({"KPT-AGREE-0", "hash:ip,port", IpFamily::kIPv4, {"10.96.0.9,tcp:9"}}));
  });
  EXPECT_EQ(exec.set_names(), lib.set_names());
  for (const auto& n : lib.set_names()) EXPECT_FALSE(n.ends_with("-tmp")) << n;
}

}  // namespace
}  // namespace kproxy::kernel
