#include "kproxy/kernel/host.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kproxy::kernel {
namespace {

std::string sysctl_path(std::string_view name) {
  std::string path = "/proc/sys/";
  for (char c : name) path += c == '.' ? '/' : c;
  return path;
}

}  // namespace

Expected<std::string> read_sysctl(std::string_view name) {
  std::ifstream in(sysctl_path(name));
  if (!in) return Error("reading sysctl " + std::string(name) + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string value = ss.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return value;
}

Status write_sysctl(std::string_view name, std::string_view value) {
  auto current = read_sysctl(name);
  if (current.ok() && *current == value) return {};
  std::ofstream out(sysctl_path(name));
  out << value << '\n';
  out.close();
  if (!out) return Error("setting sysctl " + std::string(name) + "=" + std::string(value) + ": " + std::strerror(errno));
  return {};
}

std::vector<IpAddress> local_addresses() {
  std::vector<IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      out.push_back(IpAddress::from_v4(ntohl(sin->sin_addr.s_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      std::array<std::uint8_t, 16> bytes{};
      std::memcpy(bytes.data(), sin6->sin6_addr.s6_addr, 16);
      out.push_back(IpAddress::from_v6(bytes));
    }
  }
  freeifaddrs(list);
  return out;
}

bool kernel_sctp_present(std::string_view proc_net_protocols, bool sys_module_sctp) {
  if (sys_module_sctp) return true;
  std::size_t start = 0;
  while (start < proc_net_protocols.size()) {
    std::size_t end = proc_net_protocols.find('\n', start);
    if (end == std::string_view::npos) end = proc_net_protocols.size();
    const std::string_view line = proc_net_protocols.substr(start, end - start);
    const std::string_view name = line.substr(0, line.find_first_of(" \t"));
    if (name == "SCTP" || name == "SCTPv6") return true;
    start = end + 1;
  }
  return false;
}

bool kernel_sctp_present() {
  std::ifstream in("/proc/net/protocols");
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ec;
  return kernel_sctp_present(text.str(), std::filesystem::exists("/sys/module/sctp", ec));
}

}  // namespace kproxy::kernel
