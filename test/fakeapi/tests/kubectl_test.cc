// The fake held to a real client: kubectl (present on the machine image) lists, watches and
// taints against it, so the fake's discovery, paging, Table, watch and PATCH handling are
// those a real API client expects, not only what kproxy happens to send. Skips when kubectl
// is absent or cannot run.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "fakeapi/fake_api_server.h"
#include "test_clients.h"

namespace kproxy::fakeapi {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::CommandResult;

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  std::size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find(':', start);
    std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

json service(const std::string& ns, const std::string& name) {
  return {{"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"type", "ClusterIP"}, {"clusterIP", "10.96.0.10"},
                    {"ports", json::array({{{"port", 80}, {"protocol", "TCP"}}})}}}};
}

class Kubectl : public ::testing::Test {
 protected:
  void SetUp() override {
    kubectl_ = find_in_path("kubectl");
    if (kubectl_.empty()) {
      GTEST_SKIP() << "kubectl is not on PATH: the fake API server is not checked against a real client";
    }
    char tmpl[] = "/tmp/kproxy-fakeapi-kubectl-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(api_.start().ok());
    ASSERT_TRUE(api_.write_kubeconfig(dir_ + "/config").ok());
    auto version = run({"version", "--client"});
    if (version.exit_code != 0) {
      GTEST_SKIP() << "kubectl cannot run here (exit " << version.exit_code << "): " << version.err;
    }
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> argv(const std::vector<std::string>& args) const {
    std::vector<std::string> a = {kubectl_, "--kubeconfig", dir_ + "/config", "--cache-dir", dir_ + "/cache"};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }
  std::vector<std::string> env() const { return {"HOME=" + dir_, "KUBECONFIG=" + dir_ + "/config"}; }
  CommandResult run(const std::vector<std::string>& args) {
    return testing::run_with_deadline(argv(args), env(), 60s);
  }

  std::string kubectl_;
  std::string dir_;
  FakeApiServer api_;
};

TEST_F(Kubectl, GetServicesAllNamespacesFollowsContinueTokens) {
  for (int i = 0; i < 5; ++i) api_.upsert("services", service(i % 2 ? "odd" : "even", "svc-" + std::to_string(i)));
  auto r = run({"get", "services", "-A", "-o", "json", "--chunk-size=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(list.is_discarded()) << r.out;
  ASSERT_EQ(list["items"].size(), 5u);
  std::set<std::string> names;
  for (const auto& i : list["items"]) names.insert(i["metadata"]["name"]);
  EXPECT_EQ(names, (std::set<std::string>{"svc-0", "svc-1", "svc-2", "svc-3", "svc-4"}));
  int continued = 0;
  for (const auto& req : api_.requests()) {
    if (req.path == "/api/v1/services" && req.target.find("continue=") != std::string::npos) ++continued;
  }
  EXPECT_EQ(continued, 2) << "three pages of two";
}

TEST_F(Kubectl, GetEndpointSlicesAsServerSideTable) {
  api_.upsert("endpointslices", {{"metadata", {{"name", "web-abc"}, {"namespace", "prod"},
                                               {"labels", {{"kubernetes.io/service-name", "web"}}}}},
                                 {"addressType", "IPv4"},
                                 {"endpoints", json::array({{{"addresses", {"10.1.0.5"}}}})},
                                 {"ports", json::array({{{"port", 8080}, {"protocol", "TCP"}}})}});
  auto r = run({"get", "endpointslices", "-A"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("NAMESPACE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("web-abc"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10.1.0.5"), std::string::npos) << r.out;
}

TEST_F(Kubectl, WatchServicesSeesALaterAdd) {
  api_.upsert("services", service("default", "early"));
  ChildProcess watch(argv({"get", "services", "-A", "-w"}), env());
  ASSERT_TRUE(watch.started());
  ASSERT_TRUE(watch.wait_for_output([](const std::string& out) { return out.find("early") != std::string::npos; }, 60s))
      << watch.err();
  ASSERT_TRUE(api_.wait_for_watches(1, 60s, "services")) << watch.err();
  api_.upsert("services", service("default", "late"));
  EXPECT_TRUE(watch.wait_for_output([](const std::string& out) { return out.find("late") != std::string::npos; }, 60s))
      << "stdout: " << watch.out() << "\nstderr: " << watch.err();
  // The destructor kills kubectl.
}

TEST_F(Kubectl, TaintNodesAddsAndRemovesTaints) {
  api_.upsert("nodes", {{"metadata", {{"name", "n1"}}},
                        {"spec", {{"taints", json::array({{{"key", "node.kubernetes.io/unreachable"},
                                                           {"effect", "NoExecute"}}})}}}});
  auto add = run({"taint", "nodes", "n1", "key=value:NoSchedule"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_NE(add.out.find("tainted"), std::string::npos) << add.out;
  auto taints = (*api_.get("nodes", "", "n1"))["spec"]["taints"];
  ASSERT_EQ(taints.size(), 2u) << taints.dump();
  EXPECT_NE(std::find(taints.begin(), taints.end(), json{{"key", "key"}, {"value", "value"}, {"effect", "NoSchedule"}}),
            taints.end()) << taints.dump();
  auto patch = api_.wait_for_request([](const RecordedRequest& r) { return r.method == "PATCH"; }, 1s);
  ASSERT_TRUE(patch.has_value());
  EXPECT_EQ(patch->content_type, "application/strategic-merge-patch+json");

  auto remove = run({"taint", "nodes", "n1", "key:NoSchedule-"});
  ASSERT_EQ(remove.exit_code, 0) << remove.err;
  EXPECT_NE(remove.out.find("untainted"), std::string::npos) << remove.out;
  taints = (*api_.get("nodes", "", "n1"))["spec"]["taints"];
  EXPECT_EQ(taints, json::parse(R"([{"key":"node.kubernetes.io/unreachable","effect":"NoExecute"}])"));
}

TEST_F(Kubectl, WrongTokenIsUnauthorized) {
  api_.set_tokens({"another"});
  auto r = run({"get", "services"});
  EXPECT_NE(r.exit_code, 0);
  // kubectl's wording for a 401 Status with reason Unauthorized.
  EXPECT_NE(r.err.find("You must be logged in to the server"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kproxy::fakeapi
