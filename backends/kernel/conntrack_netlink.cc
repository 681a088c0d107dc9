// ConntrackTable over ctnetlink, with libnl-nf-3 (docs/conntrack.md, docs/dependencies.md).
//
// Listing is one dump per protocol, filtered by the kernel: the family in the nfgenmsg header
// (all kernels) and the protocol number through CTA_FILTER (Linux 5.8+; older kernels ignore
// the attribute and send every protocol, which the parser below drops). On a node with a
// million TCP flows this keeps the dump to the UDP and SCTP ones.
//
// Deleting is one IPCTNL_MSG_CT_DELETE per flow, by original tuple, zone and id, each waited
// for: vishvananda/netlink, which kube-proxy uses, does the same. A delete request without a
// tuple flushes the whole table in the kernel (ctnetlink_del_conntrack), so a request is only
// sent for a flow whose addresses were all set.
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netfilter/ct.h>
#include <netlink/netfilter/nfnl.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include "kproxy/kernel/conntrack.h"

namespace kproxy::kernel {
namespace {

// CTA_FILTER_ORIG_FLAGS bit "match CTA_PROTO_NUM". It lives in the kernel's private
// net/netfilter/nf_internals.h, not in the UAPI headers, but it is part of the ABI.
constexpr std::uint32_t kFilterProtoNum = 1U << 3;

using NlSocket = std::unique_ptr<nl_sock, decltype(&nl_socket_free)>;
using NlMsg = std::unique_ptr<nl_msg, decltype(&nlmsg_free)>;
using NlCb = std::unique_ptr<nl_cb, decltype(&nl_cb_put)>;
using NfnlCt = std::unique_ptr<nfnl_ct, decltype(&nfnl_ct_put)>;
using NlAddr = std::unique_ptr<nl_addr, decltype(&nl_addr_put)>;

int af_of(IpFamily family) { return family == IpFamily::kIPv4 ? AF_INET : AF_INET6; }

std::string nl_error(const char* what, int err) { return std::string("conntrack: ") + what + ": " + nl_geterror(err); }

// An nl_addr in network order -> IpAddress; false if it is absent or of another family.
bool to_ip(const nl_addr* addr, IpFamily family, IpAddress& out) {
  if (addr == nullptr) return false;
  const auto* bytes = static_cast<const std::uint8_t*>(nl_addr_get_binary_addr(addr));
  const unsigned len = nl_addr_get_len(addr);
  if (family == IpFamily::kIPv4 && len == 4) {
    out = IpAddress::from_v4((std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                             (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]});
    return true;
  }
  if (family == IpFamily::kIPv6 && len == 16) {
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), bytes, 16);
    out = IpAddress::from_v6(b);
    return true;
  }
  return false;
}

NlAddr to_nl_addr(const IpAddress& ip) {
  const std::size_t len = ip.is_v4() ? 4 : 16;
  return NlAddr(nl_addr_build(ip.is_v4() ? AF_INET : AF_INET6, ip.bytes().data(), len), &nl_addr_put);
}

struct DumpContext {
  IpFamily family;
  FlowProtocol protocol;
  std::vector<Flow>* out;
  int parse_error = 0;
};

int on_dump_message(nl_msg* msg, void* arg) {
  auto* ctx = static_cast<DumpContext*>(arg);
  nfnl_ct* raw = nullptr;
  if (const int err = nfnlmsg_ct_parse(nlmsg_hdr(msg), &raw); err < 0) {
    ctx->parse_error = err;
    return NL_STOP;
  }
  NfnlCt ct(raw, &nfnl_ct_put);
  if (nfnl_ct_get_family(ct.get()) != af_of(ctx->family)) return NL_OK;
  if (!nfnl_ct_test_proto(ct.get()) || nfnl_ct_get_proto(ct.get()) != static_cast<std::uint8_t>(ctx->protocol)) {
    return NL_OK;
  }
  Flow flow;
  flow.protocol = ctx->protocol;
  if (!to_ip(nfnl_ct_get_src(ct.get(), 0), ctx->family, flow.original.src) ||
      !to_ip(nfnl_ct_get_dst(ct.get(), 0), ctx->family, flow.original.dst) ||
      !to_ip(nfnl_ct_get_src(ct.get(), 1), ctx->family, flow.reply.src) ||
      !to_ip(nfnl_ct_get_dst(ct.get(), 1), ctx->family, flow.reply.dst)) {
    return NL_OK;  // not a complete IP entry of this family; nothing kproxy could act on
  }
  flow.original.src_port = nfnl_ct_get_src_port(ct.get(), 0);
  flow.original.dst_port = nfnl_ct_get_dst_port(ct.get(), 0);
  flow.reply.src_port = nfnl_ct_get_src_port(ct.get(), 1);
  flow.reply.dst_port = nfnl_ct_get_dst_port(ct.get(), 1);
  if (nfnl_ct_test_zone(ct.get())) flow.zone = nfnl_ct_get_zone(ct.get());
  if (nfnl_ct_test_id(ct.get())) flow.id = nfnl_ct_get_id(ct.get());
  ctx->out->push_back(flow);
  return NL_OK;
}

class NetlinkConntrackTable final : public ConntrackTable {
 public:
  explicit NetlinkConntrackTable(NlSocket sock) : sock_(std::move(sock)) {}

  Expected<std::vector<Flow>> list(IpFamily family, const std::vector<FlowProtocol>& protocols) override {
    std::vector<Flow> flows;
    for (FlowProtocol protocol : protocols) {
      if (Status s = dump(family, protocol, flows); !s.ok()) return Error(s.message());
    }
    return flows;
  }

  Expected<std::size_t> remove(const std::vector<Flow>& flows) override {
    drain();
    std::size_t deleted = 0;
    std::size_t failed = 0;
    std::string first_error;
    for (const Flow& flow : flows) {
      const int err = delete_one(flow);
      if (err == 0) {
        ++deleted;
      } else if (err != -NLE_OBJ_NOTFOUND) {
        if (failed++ == 0) first_error = to_string(flow) + ": " + nl_geterror(err);
      }
    }
    if (failed != 0) {
      return Error("conntrack: deleted " + std::to_string(deleted) + " of " + std::to_string(flows.size()) +
                   " flows; " + std::to_string(failed) + " failed, the first: " + first_error);
    }
    return deleted;
  }

 private:
  // A request that failed halfway may have left replies (the rest of a dump, an ACK) in the
  // socket; they would be read as answers to the next request. Read until nothing is left:
  // the kernel produces the next part of a dump only when the previous one was read, so an
  // empty socket means no dump is running.
  void drain() {
    const int fd = nl_socket_get_fd(sock_.get());
    std::array<char, 16384> buf;
    while (::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
    }
  }

  Status dump(IpFamily family, FlowProtocol protocol, std::vector<Flow>& out) {
    drain();
    nl_msg* raw = nfnlmsg_alloc_simple(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET, NLM_F_DUMP,
                                       static_cast<std::uint8_t>(af_of(family)), 0);
    if (raw == nullptr) return Error("conntrack: out of memory building a dump request");
    NlMsg msg(raw, &nlmsg_free);
    // CTA_TUPLE_ORIG { CTA_TUPLE_PROTO { CTA_PROTO_NUM } } and CTA_FILTER { ORIG_FLAGS }: the
    // kernel sends only entries whose original tuple has this protocol.
    nlattr* tuple = nla_nest_start(msg.get(), CTA_TUPLE_ORIG);
    nlattr* proto = tuple == nullptr ? nullptr : nla_nest_start(msg.get(), CTA_TUPLE_PROTO);
    if (proto == nullptr || nla_put_u8(msg.get(), CTA_PROTO_NUM, static_cast<std::uint8_t>(protocol)) < 0) {
      return Error("conntrack: building a dump request: message too small");
    }
    nla_nest_end(msg.get(), proto);
    nla_nest_end(msg.get(), tuple);
    nlattr* filter = nla_nest_start(msg.get(), CTA_FILTER);
    if (filter == nullptr || nla_put_u32(msg.get(), CTA_FILTER_ORIG_FLAGS, kFilterProtoNum) < 0) {
      return Error("conntrack: building a dump request: message too small");
    }
    nla_nest_end(msg.get(), filter);

    if (const int err = nl_send_auto(sock_.get(), msg.get()); err < 0)
      return Error(nl_error("sending a dump request", err));
    const std::size_t before = out.size();
    DumpContext ctx{family, protocol, &out};
    // nl_socket_get_cb hands out a reference of its own: release it once cloned.
    const NlCb socket_cb(nl_socket_get_cb(sock_.get()), &nl_cb_put);
    NlCb cb(nl_cb_clone(socket_cb.get()), &nl_cb_put);
    if (!cb) return Error("conntrack: out of memory for a netlink callback");
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_dump_message, &ctx);
    const int err = nl_recvmsgs(sock_.get(), cb.get());
    if (ctx.parse_error < 0) {
      out.resize(before);
      return Error(nl_error("parsing a dumped entry", ctx.parse_error));
    }
    if (err < 0) {
      out.resize(before);
      return Error(nl_error(("listing " + std::string(flow_protocol_name(protocol)) + " flows").c_str(), err));
    }
    return {};
  }

  // 0, or a negative libnl error (-NLE_OBJ_NOTFOUND when the entry is gone or has another id).
  int delete_one(const Flow& flow) {
    const IpFamily family = flow.family();
    if (flow.original.dst.family() != family) return -NLE_INVAL;
    NfnlCt ct(nfnl_ct_alloc(), &nfnl_ct_put);
    NlAddr src = to_nl_addr(flow.original.src);
    NlAddr dst = to_nl_addr(flow.original.dst);
    if (!ct || !src || !dst) return -NLE_NOMEM;
    nfnl_ct_set_family(ct.get(), static_cast<std::uint8_t>(af_of(family)));
    nfnl_ct_set_proto(ct.get(), static_cast<std::uint8_t>(flow.protocol));
    if (int err = nfnl_ct_set_src(ct.get(), 0, src.get()); err < 0) return err;
    if (int err = nfnl_ct_set_dst(ct.get(), 0, dst.get()); err < 0) return err;
    nfnl_ct_set_src_port(ct.get(), 0, flow.original.src_port);
    nfnl_ct_set_dst_port(ct.get(), 0, flow.original.dst_port);
    if (flow.zone != 0) nfnl_ct_set_zone(ct.get(), flow.zone);
    if (flow.id != 0) nfnl_ct_set_id(ct.get(), flow.id);

    nl_msg* raw = nullptr;
    if (int err = nfnl_ct_build_delete_request(ct.get(), NLM_F_ACK, &raw); err < 0) return err;
    NlMsg msg(raw, &nlmsg_free);
    if (int err = nl_send_auto(sock_.get(), msg.get()); err < 0) return err;
    return nl_wait_for_ack(sock_.get());
  }

  NlSocket sock_;
};

}  // namespace

Expected<std::unique_ptr<ConntrackTable>> open_netlink_conntrack_table() {
  NlSocket sock(nl_socket_alloc(), &nl_socket_free);
  if (!sock) return Error("conntrack: out of memory for a netlink socket");
  if (const int err = nl_connect(sock.get(), NETLINK_NETFILTER); err < 0) {
    return Error(nl_error("connecting a NETLINK_NETFILTER socket", err));
  }
  // Acks are asked for explicitly (deletes), never added to dumps.
  nl_socket_disable_auto_ack(sock.get());
  // Replies are matched to requests by draining before each request (see drain()), so that a
  // request that failed halfway cannot leave libnl's expected sequence number behind.
  nl_socket_disable_seq_check(sock.get());
  // Dump messages can be larger than libnl's default receive buffer: peek at their size.
  nl_socket_enable_msg_peek(sock.get());
  return std::unique_ptr<ConntrackTable>(std::make_unique<NetlinkConntrackTable>(std::move(sock)));
}

}  // namespace kproxy::kernel
