#include "kproxy/ip.h"

#include <gtest/gtest.h>

namespace kproxy {
namespace {

struct Canonical {
  const char* in;
  const char* out;
};

class IpCanonicalForm : public ::testing::TestWithParam<Canonical> {};

TEST_P(IpCanonicalForm, ParsesToCanonicalText) {
  auto ip = IpAddress::parse(GetParam().in);
  ASSERT_TRUE(ip.ok()) << ip.error();
  EXPECT_EQ(ip->to_string(), GetParam().out);
}

INSTANTIATE_TEST_SUITE_P(
    Addresses, IpCanonicalForm,
    ::testing::Values(
        Canonical{"10.96.0.1", "10.96.0.1"}, Canonical{"0.0.0.0", "0.0.0.0"},
        Canonical{"255.255.255.255", "255.255.255.255"},
        // CVE-2021-29923: Kubernetes reads leading zeros as decimal, never octal.
        Canonical{"010.001.002.003", "10.1.2.3"}, Canonical{"0177.0.0.01", "177.0.0.1"},
        Canonical{"::", "::"}, Canonical{"::1", "::1"}, Canonical{"2001:DB8::1", "2001:db8::1"},
        Canonical{"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
        // RFC 5952: the longest zero run is shortened, the first one on a tie, and a
        // single zero group is never shortened.
        Canonical{"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
        Canonical{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
        Canonical{"fd00:10:96::a", "fd00:10:96::a"}, Canonical{"1::", "1::"},
        Canonical{"::ffff:10.0.0.1", "::ffff:10.0.0.1"}, Canonical{"64:ff9b::192.0.2.33", "64:ff9b::c000:221"}));

class IpRejected : public ::testing::TestWithParam<const char*> {};

TEST_P(IpRejected, IsNotAnAddress) { EXPECT_FALSE(IpAddress::parse(GetParam()).ok()) << GetParam(); }

INSTANTIATE_TEST_SUITE_P(Garbage, IpRejected,
                         ::testing::Values("", "24", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-4", "1.2.3.4 ",
                                           " 1.2.3.4", "1..2.3", "a.b.c.d", "0x7f.0.0.1", "1.2.3.4/32", ":::",
                                           "1:2:3:4:5:6:7:8:9", "1::2::3", ":1::", "1::2:", "12345::",
                                           "fe80::1%eth0", "[::1]", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4",
                                           "g::1", "None", "鮽ort"));

TEST(IpAddress, ClassifiesSpecialRanges) {
  auto is = [](const char* s) { return IpAddress::parse(s).value(); };
  EXPECT_TRUE(is("127.0.0.1").is_loopback());
  EXPECT_TRUE(is("127.255.0.9").is_loopback());
  EXPECT_TRUE(is("::1").is_loopback());
  EXPECT_FALSE(is("::2").is_loopback());
  EXPECT_TRUE(is("169.254.169.254").is_link_local());
  EXPECT_TRUE(is("fe80::1").is_link_local());
  EXPECT_TRUE(is("febf::1").is_link_local());
  EXPECT_FALSE(is("fec0::1").is_link_local());
  EXPECT_TRUE(is("224.0.0.1").is_multicast());
  EXPECT_TRUE(is("239.1.1.1").is_multicast());
  EXPECT_TRUE(is("ff02::1").is_multicast());
  EXPECT_TRUE(is("0.0.0.0").is_unspecified());
  EXPECT_TRUE(is("::").is_unspecified());
  EXPECT_TRUE(is("::ffff:1.2.3.4").is_ipv4_mapped());
  EXPECT_FALSE(is("1.2.3.4").is_ipv4_mapped());
  EXPECT_EQ(is("1.2.3.4").family(), IpFamily::kIPv4);
  EXPECT_EQ(is("::ffff:1.2.3.4").family(), IpFamily::kIPv6);
}

TEST(IpAddress, ComparesByFamilyThenBytes) {
  auto a = IpAddress::parse("10.0.0.1").value();
  auto b = IpAddress::parse("10.0.0.2").value();
  auto c = IpAddress::parse("010.0.0.01").value();
  EXPECT_LT(a, b);
  EXPECT_EQ(a, c);
  EXPECT_LT(a, IpAddress::parse("::1").value());
}

TEST(IpAddress, JoinsHostAndPortAsGoDoes) {
  EXPECT_EQ(join_host_port(IpAddress::parse("10.1.2.3").value(), 8080), "10.1.2.3:8080");
  EXPECT_EQ(join_host_port(IpAddress::parse("fd00::5").value(), 53), "[fd00::5]:53");
}

TEST(IpAddress, ErrorQuotesTheValue) {
  auto r = IpAddress::parse("10.0.0.300");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("\"10.0.0.300\""), std::string::npos) << r.error();
  EXPECT_NE(IpAddress::parse("fe80::1%eth0").error().find("zone"), std::string::npos);
}

TEST(Cidr, MasksHostBitsAndPrintsTheNetwork) {
  EXPECT_EQ(Cidr::parse("10.0.0.7/8")->to_string(), "10.0.0.0/8");
  EXPECT_EQ(Cidr::parse("10.244.1.0/24")->to_string(), "10.244.1.0/24");
  EXPECT_EQ(Cidr::parse("0.0.0.0/0")->to_string(), "0.0.0.0/0");
  EXPECT_EQ(Cidr::parse("192.168.1.130/25")->to_string(), "192.168.1.128/25");
  EXPECT_EQ(Cidr::parse("fd00:10:244:1::5/64")->to_string(), "fd00:10:244:1::/64");
  EXPECT_EQ(Cidr::parse("2001:db8::1/128")->to_string(), "2001:db8::1/128");
  EXPECT_EQ(Cidr::parse("010.0.0.0/8")->to_string(), "10.0.0.0/8");
}

TEST(Cidr, RejectsMalformedPrefixes) {
  for (const char* s : {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x",
                        "::/129", "/8", "28", "10.0.0.0/0008", "fe80::/10%eth0"}) {
    EXPECT_FALSE(Cidr::parse(s).ok()) << s;
  }
}

TEST(Cidr, ContainsOnlyAddressesOfItsFamilyAndRange) {
  auto c = Cidr::parse("10.244.0.0/16").value();
  EXPECT_TRUE(c.contains(IpAddress::parse("10.244.3.9").value()));
  EXPECT_FALSE(c.contains(IpAddress::parse("10.245.0.1").value()));
  EXPECT_FALSE(c.contains(IpAddress::parse("::ffff:10.244.3.9").value()));
  auto v6 = Cidr::parse("fd00::/8").value();
  EXPECT_TRUE(v6.contains(IpAddress::parse("fd12::1").value()));
  EXPECT_FALSE(v6.contains(IpAddress::parse("fe00::1").value()));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(IpAddress::parse("1.2.3.4").value()));
}

}  // namespace
}  // namespace kproxy
