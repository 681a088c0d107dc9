#include "file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kproxy::k8s {

Expected<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(std::strerror(errno));
  std::string data;
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      return Error(std::strerror(saved));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

std::string trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const auto begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return "";
  const auto end = s.find_last_not_of(kSpace);
  return std::string(s.substr(begin, end - begin + 1));
}

}  // namespace kproxy::k8s
