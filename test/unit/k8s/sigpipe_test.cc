// Debian's cpp-httplib writes without MSG_NOSIGNAL: a request on a keep-alive connection
// the server has just closed raises SIGPIPE, which would kill kproxy (seen in the scale
// benchmark). Making a client must leave SIGPIPE ignored for the whole process.
#include <gtest/gtest.h>

#include <csignal>

#include "kproxy/k8s/api_client.h"

namespace kproxy::k8s {
namespace {

TEST(ApiClientProcess, MakingAClientIgnoresSigpipe) {
  std::signal(SIGPIPE, SIG_DFL);
  ClientConfig config;
  config.scheme = "http";
  config.host = "127.0.0.1";
  config.port = 1;
  auto client = make_api_client(config);
  struct sigaction now {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
}

}  // namespace
}  // namespace kproxy::k8s
