#include "kproxy/k8s/client_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_server.h"

namespace kproxy::k8s {
namespace {

using ::testing::HasSubstr;
using testing::read_fixture;

std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned n = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[n >> s & 63]);
  }
  if (i + 1 == in.size()) {
    const unsigned n = static_cast<unsigned char>(in[i]) << 16;
    out += {kAlphabet[n >> 18 & 63], kAlphabet[n >> 12 & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned n = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
    out += {kAlphabet[n >> 18 & 63], kAlphabet[n >> 12 & 63], kAlphabet[n >> 6 & 63], '='};
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kproxy-k8s-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& contents) const {
    const auto p = std::filesystem::path(path_) / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << contents;
    return p.string();
  }

 private:
  std::string path_;
};

// A kubeconfig with one context "ctx" -> cluster "c", user "kp", plus the given stanza bodies
// (indented by the caller as YAML mapping entries under cluster: / user:).
std::string kubeconfig(const std::string& cluster_body, const std::string& user_body,
                       const std::string& current = "ctx") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: " + current +
         "\n"
         "contexts:\n"
         "- name: other\n  context: {cluster: nope, user: nope}\n"
         "- name: ctx\n  context:\n    cluster: c\n    user: kp\n"
         "clusters:\n- name: c\n  cluster:\n" +
         cluster_body + "users:\n- name: kp\n  user:\n" + user_body;
}

TEST(ParseServerUrl, SplitsSchemeHostPortAndPath) {
  auto u = parse_server_url("https://[fd00::1]:6443/k8s/clusters/c-1/");
  ASSERT_TRUE(u.ok()) << u.error();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "fd00::1");
  EXPECT_EQ(u->port, 6443);
  EXPECT_EQ(u->path_prefix, "/k8s/clusters/c-1");

  auto plain = parse_server_url("http://localhost");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, 80);
  auto bare = parse_server_url("10.0.0.1:6443");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->scheme, "https");
  EXPECT_EQ(bare->port, 6443);
}

TEST(ParseServerUrl, RejectsBadUrls) {
  EXPECT_THAT(parse_server_url("ftp://x").error(), HasSubstr("not https or http"));
  EXPECT_THAT(parse_server_url("https://fd00::1:443").error(), HasSubstr("brackets"));
  EXPECT_THAT(parse_server_url("https://host:99999").error(), HasSubstr("99999"));
  EXPECT_THAT(parse_server_url("https://:443").error(), HasSubstr("no host"));
  EXPECT_THAT(parse_server_url("https://[fd00::1").error(), HasSubstr("]"));
}

TEST(Kubeconfig, UsesCurrentContextAndResolvesRelativePaths) {
  TempDir dir;
  dir.write("certs/ca.crt", read_fixture("ca.crt"));
  dir.write("certs/client.crt", read_fixture("client.crt"));
  dir.write("certs/client.key", read_fixture("client.key"));
  const std::string path = dir.write("kubeconfig",
                                     kubeconfig("    server: https://10.1.2.3:6443\n"
                                                "    certificate-authority: certs/ca.crt\n"
                                                "    tls-server-name: kubernetes.default.svc\n",
                                                "    client-certificate: certs/client.crt\n"
                                                "    client-key: ./certs/client.key\n"));
  auto c = load_kubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->scheme, "https");
  EXPECT_EQ(c->host, "10.1.2.3");
  EXPECT_EQ(c->port, 6443);
  EXPECT_EQ(c->ca_pem, read_fixture("ca.crt"));
  EXPECT_EQ(c->tls_server_name, "kubernetes.default.svc");
  EXPECT_EQ(c->client_cert_pem, read_fixture("client.crt"));
  EXPECT_EQ(c->client_key_pem, read_fixture("client.key"));
  EXPECT_TRUE(c->token.empty());
  EXPECT_EQ(c->source, path);
  EXPECT_EQ(c->server_url(), "https://10.1.2.3:6443");
}

TEST(Kubeconfig, DataFieldsWinOverFiles) {
  TempDir dir;
  // The file fields point at files that do not exist: they must not even be read.
  const std::string path = dir.write(
      "kubeconfig", kubeconfig("    server: https://example.com\n"
                               "    certificate-authority: missing-ca.crt\n"
                               "    certificate-authority-data: " + base64(read_fixture("ca.crt")) + "\n",
                               "    client-certificate: missing.crt\n"
                               "    client-certificate-data: " + base64(read_fixture("client.crt")) + "\n"
                               "    client-key: missing.key\n"
                               "    client-key-data: " + base64(read_fixture("client.key")) + "\n"));
  auto c = load_kubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->ca_pem, read_fixture("ca.crt"));
  EXPECT_EQ(c->client_cert_pem, read_fixture("client.crt"));
  EXPECT_EQ(c->client_key_pem, read_fixture("client.key"));
  EXPECT_EQ(c->port, 443);
}

TEST(Kubeconfig, TokenWinsOverTokenFile) {
  TempDir dir;
  const std::string path = dir.write("kubeconfig", kubeconfig("    server: https://example.com\n",
                                                              "    token: abc\n"
                                                              "    tokenFile: does-not-exist\n"));
  auto c = load_kubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->token, "abc");
  EXPECT_TRUE(c->token_file.empty());
}

TEST(Kubeconfig, TokenFileIsReadTrimmedAndKeptForRotation) {
  TempDir dir;
  dir.write("secrets/token", "  tok-1\n");
  const std::string path =
      dir.write("kubeconfig", kubeconfig("    server: https://example.com\n", "    tokenFile: secrets/token\n"));
  auto c = load_kubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->token, "tok-1");
  EXPECT_EQ(c->token_file, dir.path() + "/secrets/token");
}

TEST(Kubeconfig, MasterOverridesOnlyTheServer) {
  TempDir dir;
  const std::string path =
      dir.write("kubeconfig", kubeconfig("    server: https://example.com\n"
                                         "    certificate-authority-data: " + base64(read_fixture("ca.crt")) + "\n",
                                         "    token: abc\n"));
  auto c = load_kubeconfig(path, "https://[fd00::5]:8443");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->host, "fd00::5");
  EXPECT_EQ(c->port, 8443);
  EXPECT_EQ(c->server_url(), "https://[fd00::5]:8443");
  EXPECT_EQ(c->token, "abc");
  EXPECT_EQ(c->ca_pem, read_fixture("ca.crt"));
}

TEST(Kubeconfig, MissingKubeconfigNamesTheFile) {
  auto c = load_kubeconfig("/nonexistent/kproxy/kubeconfig");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "kubeconfig /nonexistent/kproxy/kubeconfig: No such file or directory");
}

TEST(Kubeconfig, MissingCredentialFilesNameTheUserAndFile) {
  TempDir dir;
  dir.write("client.crt", read_fixture("client.crt"));
  const std::string path = dir.write("kubeconfig", kubeconfig("    server: https://example.com\n",
                                                              "    client-certificate: client.crt\n"
                                                              "    client-key: kp.key\n"));
  auto c = load_kubeconfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "kubeconfig " + path + ": user \"kp\": client-key " + dir.path() +
                           "/kp.key: No such file or directory");

  const std::string ca_path = dir.write("kubeconfig2", kubeconfig("    server: https://example.com\n"
                                                                  "    certificate-authority: /nonexistent/ca.crt\n",
                                                                  "    token: x\n"));
  auto ca = load_kubeconfig(ca_path);
  ASSERT_FALSE(ca.ok());
  EXPECT_EQ(ca.error(), "kubeconfig " + ca_path +
                            ": cluster \"c\": certificate-authority /nonexistent/ca.crt: No such file or directory");

  const std::string tf_path =
      dir.write("kubeconfig3", kubeconfig("    server: https://example.com\n", "    tokenFile: no-token\n"));
  auto tf = load_kubeconfig(tf_path);
  ASSERT_FALSE(tf.ok());
  EXPECT_THAT(tf.error(), HasSubstr("user \"kp\": tokenFile " + dir.path() + "/no-token: No such file or directory"));
}

TEST(Kubeconfig, BadBase64NamesTheField) {
  TempDir dir;
  const std::string path = dir.write("kubeconfig", kubeconfig("    server: https://example.com\n",
                                                              "    client-certificate-data: bm90IGJhc2U2NA*=\n"
                                                              "    client-key-data: eA==\n"));
  auto c = load_kubeconfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "kubeconfig " + path +
                           ": user \"kp\": client-certificate-data: illegal base64 data at input byte 14");

  const std::string ca_path = dir.write(
      "kubeconfig2", kubeconfig("    server: https://example.com\n    certificate-authority-data: abc\n", ""));
  auto ca = load_kubeconfig(ca_path);
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(ca.error(), HasSubstr("cluster \"c\": certificate-authority-data: illegal base64 data"));
}

TEST(Kubeconfig, DataThatIsNotPemNamesTheField) {
  TempDir dir;
  const std::string path = dir.write(
      "kubeconfig", kubeconfig("    server: https://example.com\n"
                               "    certificate-authority-data: " + base64("hello") + "\n",
                               "    token: x\n"));
  auto c = load_kubeconfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error(), HasSubstr("cluster \"c\": certificate-authority-data: no PEM certificate found"));
}

TEST(Kubeconfig, MismatchedClientKeyIsRefused) {
  TempDir dir;
  const std::string path = dir.write(
      "kubeconfig", kubeconfig("    server: https://example.com\n",
                               "    client-certificate-data: " + base64(read_fixture("client.crt")) + "\n"
                               "    client-key-data: " + base64(read_fixture("server.key")) + "\n"));
  auto c = load_kubeconfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error(), HasSubstr("user \"kp\": client-key-data does not match client-certificate-data"));
}

TEST(Kubeconfig, ExecAndAuthProviderUsersAreUnsupported) {
  TempDir dir;
  const std::string exec_path = dir.write(
      "kubeconfig", kubeconfig("    server: https://example.com\n",
                               "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n"));
  auto e = load_kubeconfig(exec_path);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error(), HasSubstr("user \"kp\": exec credential plugins are not supported"));

  const std::string ap_path =
      dir.write("kubeconfig2", kubeconfig("    server: https://example.com\n", "    auth-provider:\n      name: gcp\n"));
  auto a = load_kubeconfig(ap_path);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.error(), HasSubstr("user \"kp\": auth-provider is not supported"));
}

TEST(Kubeconfig, ContextErrors) {
  TempDir dir;
  const std::string no_current =
      dir.write("k1", "apiVersion: v1\nclusters: []\ncontexts: []\nusers: []\n");
  EXPECT_THAT(load_kubeconfig(no_current).error(), HasSubstr("current-context is not set"));

  const std::string missing_ctx = dir.write("k2", kubeconfig("    server: https://x\n", "", "gone"));
  EXPECT_THAT(load_kubeconfig(missing_ctx).error(), HasSubstr("context \"gone\" not found"));

  const std::string no_server = dir.write("k3", kubeconfig("    insecure-skip-tls-verify: true\n", ""));
  EXPECT_THAT(load_kubeconfig(no_server).error(), HasSubstr("cluster \"c\": server is not set"));
}

TEST(Kubeconfig, InsecureWithCaIsRefused) {
  TempDir dir;
  const std::string path = dir.write(
      "kubeconfig", kubeconfig("    server: https://example.com\n    insecure-skip-tls-verify: true\n"
                               "    certificate-authority-data: " + base64(read_fixture("ca.crt")) + "\n",
                               ""));
  EXPECT_THAT(load_kubeconfig(path).error(), HasSubstr("cannot both be set"));

  const std::string ok_path =
      dir.write("k2", kubeconfig("    server: https://example.com\n    insecure-skip-tls-verify: true\n", ""));
  auto c = load_kubeconfig(ok_path);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(c->insecure_skip_tls_verify);
}

// Environment and service-account directory for the in-cluster tests.
struct FakeCluster {
  TempDir sa;
  std::map<std::string, std::string> env;
  InClusterEnvironment environment() const {
    return {[this](const std::string& name) -> std::optional<std::string> {
              auto it = env.find(name);
              if (it == env.end()) return std::nullopt;
              return it->second;
            },
            sa.path()};
  }
};

TEST(InCluster, BracketsAnIpv6ServiceHost) {
  FakeCluster fc;
  fc.env = {{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  fc.sa.write("token", "sa-token\n");
  fc.sa.write("ca.crt", read_fixture("ca.crt"));
  auto c = in_cluster_config(fc.environment());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->host, "fd00::1");
  EXPECT_EQ(c->port, 443);
  EXPECT_EQ(c->server_url(), "https://[fd00::1]:443");
  EXPECT_EQ(c->token, "sa-token");
  EXPECT_EQ(c->token_file, fc.sa.path() + "/token");
  EXPECT_EQ(c->ca_pem, read_fixture("ca.crt"));
  EXPECT_EQ(c->source, "in-cluster");
}

TEST(InCluster, MissingTokenFileNamesIt) {
  FakeCluster fc;
  fc.env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  auto c = in_cluster_config(fc.environment());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "in-cluster config: token file " + fc.sa.path() + "/token: No such file or directory");
}

TEST(InCluster, UnreadableTokenFileNamesIt) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  FakeCluster fc;
  fc.env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  const std::string token = fc.sa.write("token", "t");
  ::chmod(token.c_str(), 0);
  auto c = in_cluster_config(fc.environment());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "in-cluster config: token file " + token + ": Permission denied");
}

TEST(InCluster, MissingCaFallsBackToSystemRoots) {
  FakeCluster fc;
  fc.env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  fc.sa.write("token", "t");
  auto c = in_cluster_config(fc.environment());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(c->ca_pem.empty());
}

TEST(ResolveClientConfig, FollowsKubeProxysCreateClientRule) {
  FakeCluster outside;  // no KUBERNETES_SERVICE_* variables
  auto none = resolve_client_config("", "", outside.environment());
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error(), HasSubstr("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"));

  auto master = resolve_client_config("", "http://127.0.0.1:8080", outside.environment());
  ASSERT_TRUE(master.ok()) << master.error();
  EXPECT_EQ(master->scheme, "http");
  EXPECT_EQ(master->port, 8080);
  EXPECT_TRUE(master->token.empty());
  EXPECT_EQ(master->source, "--master");

  FakeCluster inside;
  inside.env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  inside.sa.write("token", "t");
  auto in = resolve_client_config("", "", inside.environment());
  ASSERT_TRUE(in.ok()) << in.error();
  EXPECT_EQ(in->source, "in-cluster");

  TempDir dir;
  const std::string path = dir.write("kubeconfig", kubeconfig("    server: https://example.com\n", "    token: k\n"));
  auto kc = resolve_client_config(path, "https://10.0.0.9:6443", inside.environment());
  ASSERT_TRUE(kc.ok()) << kc.error();
  EXPECT_EQ(kc->host, "10.0.0.9");
  EXPECT_EQ(kc->token, "k");
}

TEST(UserAgent, IsKproxyVersionAndPlatform) {
  EXPECT_THAT(default_user_agent(), ::testing::MatchesRegex("kproxy/[^ ]+ \\(linux/[a-z0-9]+\\)"));
}

}  // namespace
}  // namespace kproxy::k8s
