#include "kproxy/config/values.h"

#include <gtest/gtest.h>

namespace kproxy::config {
namespace {

TEST(GoBool, AcceptsStrconvParseBoolSpellingsOnly) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) EXPECT_TRUE(*parse_go_bool(t)) << t;
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) EXPECT_FALSE(*parse_go_bool(f)) << f;
  for (const char* bad : {"", "yes", "on", "tRUE", "2"}) {
    auto b = parse_go_bool(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error(), std::string("strconv.ParseBool: parsing \"") + bad + "\": invalid syntax");
  }
}

TEST(GoInt32, ReadsBaseZeroLikeStrconv) {
  const struct {
    const char* text;
    std::int32_t want;
  } cases[] = {{"0", 0},     {"14", 14},         {"-999", -999},          {"+7", 7},
               {"0x1f", 31}, {"0X1F", 31},       {"0o17", 15},            {"017", 15},
               {"0b101", 5}, {"0x_1f", 31},      {"2147483647", INT32_MAX}, {"-2147483648", INT32_MIN}};
  for (const auto& c : cases) {
    auto n = parse_go_int32(c.text);
    ASSERT_TRUE(n.ok()) << c.text << ": " << n.error();
    EXPECT_EQ(*n, c.want) << c.text;
  }
  for (const char* bad : {"", "-", "abc", "1.5", "08", "1_0", "0x", "14 ", "0x1__f", "0x1f_"}) {
    auto n = parse_go_int32(bad);
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_NE(n.error().find("invalid syntax"), std::string::npos) << n.error();
  }
  EXPECT_EQ(parse_go_int32("2147483648").error(), "strconv.ParseInt: parsing \"2147483648\": value out of range");
}

TEST(GoFloat32, ReadsDecimalAndExponent) {
  EXPECT_FLOAT_EQ(*parse_go_float32("5"), 5.0F);
  EXPECT_FLOAT_EQ(*parse_go_float32("7.5"), 7.5F);
  EXPECT_FLOAT_EQ(*parse_go_float32("1e2"), 100.0F);
  EXPECT_FALSE(parse_go_float32("").ok());
  EXPECT_FALSE(parse_go_float32("fast").ok());
  EXPECT_FALSE(parse_go_float32("1e99").ok());
}

TEST(GoStringSlice, SplitsOneCsvRecord) {
  EXPECT_EQ(*split_go_string_slice(""), std::vector<std::string>{});
  EXPECT_EQ(*split_go_string_slice("a"), std::vector<std::string>{"a"});
  EXPECT_EQ(*split_go_string_slice("a,b,,c"), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(*split_go_string_slice("\"a,b\",c"), (std::vector<std::string>{"a,b", "c"}));
  EXPECT_FALSE(split_go_string_slice("\"open").ok());
  EXPECT_FALSE(split_go_string_slice("a\"b").ok());
}

TEST(GoMapStringBool, ReadsFeatureGateLists) {
  auto m = parse_go_map_string_bool("A=true, B = false,,C=1");
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(*m, (std::map<std::string, bool>{{"A", true}, {"B", false}, {"C", true}}));
  EXPECT_EQ(parse_go_map_string_bool("A").error(), "missing bool value for A");
  EXPECT_NE(parse_go_map_string_bool("A=maybe").error().find("invalid value of A=maybe"), std::string::npos);
}

TEST(ListenAddress, TakesAnIpAloneOrWithAPort) {
  auto bare = parse_listen_address("10.0.0.1");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, 0);
  EXPECT_EQ(bare->ip.to_string(), "10.0.0.1");
  auto v6 = parse_listen_address("[::1]:10249");
  ASSERT_TRUE(v6.ok()) << v6.error();
  EXPECT_EQ(v6->to_string(), "[::1]:10249");
  EXPECT_EQ(parse_listen_address("::").value().port, 0);
  EXPECT_EQ(parse_listen_address("0.0.0.0:10256").value().to_string(), "0.0.0.0:10256");
}

TEST(ListenAddress, NamesWhatIsWrong) {
  EXPECT_EQ(parse_listen_address("nope").error(), "\"nope\" must be IP:port");
  EXPECT_EQ(parse_listen_address("host:80").error(), "\"host\" must be a valid IP");
  EXPECT_EQ(parse_listen_address("1.2.3.4:0").error(), "\"0\" must be a valid port");
  EXPECT_EQ(parse_listen_address("1.2.3.4:65536").error(), "\"65536\" must be a valid port");
  EXPECT_EQ(parse_listen_address("1.2.3.4:").error(), "\"\" must be a valid port");
  EXPECT_NE(parse_listen_address("1.2.3.4:5:6").error().find("must be IP:port"), std::string::npos);
  EXPECT_EQ(parse_listen_address("[::1]").error(), "\"[::1]\" must be IP:port");
}

TEST(NodePortAddresses, AcceptsPrimaryAloneOrCidrs) {
  EXPECT_TRUE(parse_node_port_addresses({}).value().all());
  EXPECT_TRUE(parse_node_port_addresses({"primary"}).value().primary);
  auto cidrs = parse_node_port_addresses({"10.0.0.0/8", "fd00::/8"});
  ASSERT_TRUE(cidrs.ok());
  EXPECT_EQ(cidrs->cidrs.size(), 2U);
  EXPECT_EQ(parse_node_port_addresses({"primary", "10.0.0.0/8"}).error(), "can't use both 'primary' and CIDRs");
  EXPECT_EQ(parse_node_port_addresses({"10.0.0.1"}).error(), "\"10.0.0.1\" must be a valid CIDR");
}

TEST(PortRange, FollowsParsePortRange) {
  for (const char* ok : {"", "300-2000", "8080", "100+10", " 1-2 "}) EXPECT_TRUE(validate_port_range(ok).ok()) << ok;
  for (const char* bad : {"x", "2000-300", "1-70000", "65535+1", "1-", "-5"}) {
    auto s = validate_port_range(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("must be a valid port range"), std::string::npos);
  }
}

TEST(Vmodule, EntriesArePatternEqualsLevel) {
  EXPECT_TRUE(validate_vmodule_entry("proxier*=4").ok());
  EXPECT_FALSE(validate_vmodule_entry("proxier").ok());
  EXPECT_FALSE(validate_vmodule_entry("=4").ok());
  EXPECT_FALSE(validate_vmodule_entry("p=x").ok());
}

TEST(Taint, ParsesKubectlSyntax) {
  auto t = Taint::parse("sctp.kproxy.io/userspace=true:NoSchedule");
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(t->key, "sctp.kproxy.io/userspace");
  EXPECT_EQ(t->value, "true");
  EXPECT_EQ(t->effect, Taint::Effect::kNoSchedule);
  EXPECT_EQ(t->to_string(), "sctp.kproxy.io/userspace=true:NoSchedule");
  auto no_value = Taint::parse("dedicated:NoExecute");
  ASSERT_TRUE(no_value.ok());
  EXPECT_EQ(no_value->to_string(), "dedicated:NoExecute");
  EXPECT_EQ(Taint::parse("a=b:PreferNoSchedule").value().effect, Taint::Effect::kPreferNoSchedule);
}

TEST(Taint, RefusesUnknownEffectsAndBadKeys) {
  EXPECT_EQ(Taint::parse("k=v:Sometimes").error(),
            "taint effect \"Sometimes\" is not NoSchedule, PreferNoSchedule or NoExecute");
  EXPECT_NE(Taint::parse("k=v").error().find("is not a taint"), std::string::npos);
  EXPECT_NE(Taint::parse("Bad_Prefix/k:NoSchedule").error().find("taint key"), std::string::npos);
  EXPECT_NE(Taint::parse("=v:NoSchedule").error().find("taint key"), std::string::npos);
  EXPECT_NE(Taint::parse("k=v w:NoSchedule").error().find("taint value"), std::string::npos);
  EXPECT_NE(Taint::parse(std::string(64, 'a') + ":NoSchedule").error().find("taint key"), std::string::npos);
}

}  // namespace
}  // namespace kproxy::config
