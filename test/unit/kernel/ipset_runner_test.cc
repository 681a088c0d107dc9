// The ipset adapter's text: the restore script of apply(), the entries of "ipset save", the fake.
#include <gtest/gtest.h>

#include "fake_ipset.h"
#include "kproxy/kernel/ipset_runner.h"

namespace kproxy::kernel {
namespace {

TEST(IpsetScript, BuildsInATemporarySetAndSwaps) {
  const IpsetSpec spec{"KUBE-LOOP-BACK", "hash:ip,port,ip", IpFamily::kIPv4,
                       {"10.1.0.2,tcp:80,10.1.0.2", "10.1.0.3,sctp:36412,10.1.0.3"}};
  EXPECT_EQ(ipset_apply_script(spec, false, false),
            "create KUBE-LOOP-BACK-tmp hash:ip,port,ip family inet maxelem 65536\n"
            "add KUBE-LOOP-BACK-tmp 10.1.0.2,tcp:80,10.1.0.2\n"
            "add KUBE-LOOP-BACK-tmp 10.1.0.3,sctp:36412,10.1.0.3\n"
            "swap KUBE-LOOP-BACK KUBE-LOOP-BACK-tmp\n"
            "destroy KUBE-LOOP-BACK-tmp\n");
  EXPECT_EQ(ipset_apply_script(IpsetSpec{"S", "hash:ip,port,ip", IpFamily::kIPv6, {}}, true, true),
            "destroy S-tmp\ncreate S hash:ip,port,ip family inet6\ncreate S-tmp hash:ip,port,ip family inet6 maxelem 65536\n"
            "swap S S-tmp\ndestroy S-tmp\n");
  EXPECT_EQ(ipset_max_elements(100000), 200000u);
}

TEST(IpsetScript, BitmapPortIsCreatedWithARangeAndNeitherFamilyNorMaxelem) {
  IpsetSpec spec{"KUBE-NODE-PORT-TCP", "bitmap:port", IpFamily::kIPv6, {"30080", "30081", "8080"}};
  spec.port_range = {{0, 65535}};
  EXPECT_EQ(ipset_apply_script(spec, true, true),
            "destroy KUBE-NODE-PORT-TCP-tmp\n"
            "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\n"
            "create KUBE-NODE-PORT-TCP-tmp bitmap:port range 0-65535\n"
            "add KUBE-NODE-PORT-TCP-tmp 30080\n"
            "add KUBE-NODE-PORT-TCP-tmp 30081\n"
            "add KUBE-NODE-PORT-TCP-tmp 8080\n"
            "swap KUBE-NODE-PORT-TCP KUBE-NODE-PORT-TCP-tmp\n"
            "destroy KUBE-NODE-PORT-TCP-tmp\n");
  // "ipset save" prints the ports in numeric order; the entries come back sorted as strings.
  EXPECT_EQ(ipset_entries_in_save("create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\n"
                                  "add KUBE-NODE-PORT-TCP 8080\n"
                                  "add KUBE-NODE-PORT-TCP 30080\n"
                                  "add KUBE-NODE-PORT-TCP 30081\n"),
            (std::vector<std::string>{"30080", "30081", "8080"}));
}

TEST(IpsetScript, ChangesWriteOnlyTheDifference) {
  EXPECT_EQ(ipset_change_script("KUBE-LOOP-BACK", {"10.1.0.2,tcp:80,10.1.0.2"}, {"10.1.0.3,udp:53,10.1.0.3"}),
            "add KUBE-LOOP-BACK 10.1.0.2,tcp:80,10.1.0.2 -exist\n"
            "del KUBE-LOOP-BACK 10.1.0.3,udp:53,10.1.0.3 -exist\n");
  EXPECT_EQ(ipset_change_script("S", {}, {}), "");
}

TEST(IpsetScript, EntriesOfSaveOutput) {
  EXPECT_EQ(ipset_entries_in_save("create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536\n"
                                  "add KUBE-LOOP-BACK 10.1.0.3,udp:53,10.1.0.3\n"
                                  "add KUBE-LOOP-BACK 10.1.0.2,tcp:8080,10.1.0.2 timeout 5\n"),
            (std::vector<std::string>{"10.1.0.2,tcp:8080,10.1.0.2", "10.1.0.3,udp:53,10.1.0.3"}));
}

TEST(FakeIpset, AppliesListsAndDestroys) {
  FakeIpset f;
  EXPECT_FALSE(f.list("S")->has_value());
  ASSERT_TRUE(f.apply(IpsetSpec{"S", "hash:ip,port,ip", IpFamily::kIPv4, {"b", "a", "a"}}).ok());
  EXPECT_EQ(**f.list("S"), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(f.apply(IpsetSpec{"S", "hash:ip", IpFamily::kIPv4, {}}).ok()) << "swap needs the same type";
  f.referenced.insert("S");
  EXPECT_FALSE(f.destroy("S").ok());
  f.referenced.clear();
  EXPECT_TRUE(*f.destroy("S"));
  EXPECT_FALSE(*f.destroy("S"));
}

}  // namespace
}  // namespace kproxy::kernel

namespace kproxy::kernel {
namespace {

TEST(IpsetTemporaryName, FitsIpsetsThirtyOneCharactersAndTellsLongNamesApart) {
  EXPECT_EQ(ipset_temporary_name("KUBE-LOOP-BACK"), "KUBE-LOOP-BACK-tmp");
  EXPECT_EQ(ipset_temporary_name("KUBE-NODE-PORT-LOCAL-TCP"), "KUBE-NODE-PORT-LOCAL-TCP-tmp");  // 28
  for (const char* name : {"KUBE-LOAD-BALANCER-SOURCE-IP", "KUBE-LOAD-BALANCER-SOURCE-CIDR",
                           "KUBE-NODE-PORT-LOCAL-SCTP-HASH", "KUBE-6-LOAD-BALANCER-SOURCE-CIDR"}) {
    SCOPED_TRACE(name);
    const std::string tmp = ipset_temporary_name(name);
    EXPECT_LE(tmp.size(), 31u);
    EXPECT_NE(tmp, name);
    EXPECT_EQ(tmp, ipset_temporary_name(name)) << "not deterministic: a leftover would not be found";
  }
  EXPECT_NE(ipset_temporary_name("KUBE-LOAD-BALANCER-SOURCE-IP"), ipset_temporary_name("KUBE-LOAD-BALANCER-SOURCE-CIDR"));
  EXPECT_NE(ipset_temporary_name("KUBE-6-NODE-PORT-LOCAL-SCTP-HAS"), ipset_temporary_name("KUBE-6-NODE-PORT-LOCAL-SCTP-HAT"));
}

}  // namespace
}  // namespace kproxy::kernel
