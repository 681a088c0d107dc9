// deploy/kubernetes/*.yaml against kproxy itself: the ConfigMap's config.conf is accepted by
// kproxy's config loader without a warning, every DaemonSet container's command line parses
// with kproxy's own flag parser (the ConfigMap's file standing in for --config, the pool's
// init container run for real on a copy), the DaemonSets mount and run what kube-proxy's
// do, and the admission policy guards the taint key kproxy uses by default.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kproxy/config/command_line.h"
#include "kproxy/config/config_file.h"
#include "kproxy/config/kube_proxy_configuration.h"
#include "kproxy/yaml_json.h"

namespace kproxy::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kDeployDir = fs::path(KPROXY_SOURCE_DIR) / "deploy" / "kubernetes";
const std::string kMain = "kproxy.yaml";
const std::string kSctpPool = "kproxy-sctp-userspace.yaml";
const std::string kKubeadmExample = std::string(KPROXY_SOURCE_DIR) + "/deploy/examples/kubeadm-kube-proxy.yaml";
const std::string kPartOf = "app.kubernetes.io/part-of";
const std::string kNodeName = "node-1";

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> load_manifests(const std::string& file) {
  auto docs = yaml_documents_to_json(read_file(kDeployDir / file));
  EXPECT_TRUE(docs.ok()) << file << ": " << (docs.ok() ? "" : docs.error());
  return docs.ok() ? *docs : std::vector<json>{};
}

// Every object of every file in deploy/kubernetes, with the file it came from.
std::vector<std::pair<std::string, json>> all_objects() {
  std::vector<std::pair<std::string, json>> out;
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kDeployDir)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    for (auto& doc : load_manifests(f)) out.emplace_back(f, std::move(doc));
  }
  return out;
}

json find(const std::vector<json>& docs, const std::string& kind, const std::string& name) {
  for (const auto& d : docs) {
    if (d.value("kind", "") == kind && d["metadata"].value("name", "") == name) return d;
  }
  ADD_FAILURE() << "no " << kind << " " << name;
  return json::object();
}

json kube_proxy_config_map() { return find(load_manifests(kMain), "ConfigMap", "kube-proxy"); }

std::string taint_key() { return Taint::parse(KproxyExtension::kDefaultSctpTaint).value().key; }

std::vector<json> daemon_sets() {
  std::vector<json> out;
  for (auto& [file, obj] : all_objects()) {
    if (obj.value("kind", "") == "DaemonSet") out.push_back(obj);
  }
  return out;
}

json named(const json& list, const std::string& name) {
  for (const auto& e : list) {
    if (e.value("name", "") == name) return e;
  }
  ADD_FAILURE() << "nothing named " << name << " in " << list.dump();
  return json::object();
}

// Runs `script` with /bin/sh; the exit status.
int run_shell(const std::string& script) {
  const fs::path file = fs::temp_directory_path() / ("kproxy-deploy-test-" + std::to_string(::getpid()) + ".sh");
  std::ofstream(file) << script;
  const int status = std::system(("/bin/sh " + file.string()).c_str());
  fs::remove(file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// A pod's filesystem as far as the test needs it: each volume mount of the container becomes
// a directory under `root`; ConfigMap volumes get the ConfigMap's keys as files, emptyDir
// volumes start empty, and the init containers' shell scripts run with the mount paths
// rewritten to those directories. `path()` maps a path in the container to the host.
class PodFiles {
 public:
  PodFiles(const json& pod_spec, const json& container) {
    root_ = fs::temp_directory_path() /
            ("kproxy-deploy-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(root_);
    const json cm = kube_proxy_config_map();
    for (const auto& v : pod_spec["volumes"]) {
      const fs::path dir = root_ / v["name"].get<std::string>();
      fs::create_directories(dir);
      if (v.contains("configMap")) {
        EXPECT_EQ(v["configMap"]["name"], "kube-proxy");
        for (const auto& [key, value] : cm["data"].items()) std::ofstream(dir / key) << value.get<std::string>();
      }
    }
    for (const auto& init : pod_spec.value("initContainers", json::array())) {
      std::string script = init["command"].back().get<std::string>();
      EXPECT_EQ(init["command"][0], "/bin/sh");
      for (const auto& m : init["volumeMounts"]) {
        script =
            replace_all(script, m["mountPath"].get<std::string>(), (root_ / m["name"].get<std::string>()).string());
      }
      init_status_ = run_shell(script);
    }
    for (const auto& m : container["volumeMounts"]) mounts_[m["mountPath"]] = m["name"];
  }
  ~PodFiles() { fs::remove_all(root_); }
  int init_status() const { return init_status_; }

  std::string path(const std::string& in_container) const {
    for (const auto& [mount, volume] : mounts_) {
      if (in_container.rfind(mount + "/", 0) == 0) return (root_ / volume).string() + in_container.substr(mount.size());
    }
    ADD_FAILURE() << in_container << " is on no volume mount";
    return in_container;
  }

 private:
  static inline int counter_ = 0;
  fs::path root_;
  std::map<std::string, std::string> mounts_;
  int init_status_ = 0;
};

TEST(DeployManifests, EveryFileParsesAndEveryObjectIsKnown) {
  const std::set<std::string> kinds{"ServiceAccount",
                                    "ClusterRole",
                                    "ClusterRoleBinding",
                                    "Role",
                                    "RoleBinding",
                                    "ConfigMap",
                                    "DaemonSet",
                                    "ValidatingAdmissionPolicy",
                                    "ValidatingAdmissionPolicyBinding"};
  const auto objects = all_objects();
  ASSERT_GE(objects.size(), 11U);
  for (const auto& [file, obj] : objects) {
    EXPECT_TRUE(kinds.count(obj.value("kind", ""))) << file << ": " << obj.value("kind", "(no kind)");
    EXPECT_TRUE(obj.contains("apiVersion")) << file;
    const std::string ns = obj["metadata"].value("namespace", "");
    const bool cluster_scoped = obj["kind"] == "ClusterRole" || obj["kind"] == "ClusterRoleBinding" ||
                                obj["kind"] == "ValidatingAdmissionPolicy" ||
                                obj["kind"] == "ValidatingAdmissionPolicyBinding";
    EXPECT_EQ(ns, cluster_scoped ? "" : "kube-system") << file << ": " << obj["metadata"]["name"];
  }
}

TEST(DeployManifests, ConfigMapsConfigurationIsAcceptedWithoutWarnings) {
  const json cm = kube_proxy_config_map();
  auto decoded = decode_config(cm["data"]["config.conf"].get<std::string>());
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_THAT(decoded->warnings, ::testing::IsEmpty());
  KubeProxyConfiguration c = decoded->config;
  apply_defaults(c);
  const auto problem = validate(c);
  EXPECT_FALSE(problem.has_value()) << problem->field << ": " << problem->detail;
  EXPECT_EQ(c.mode, ProxyMode::kIptables);
  EXPECT_EQ(c.client_connection.kubeconfig, "/var/lib/kube-proxy/kubeconfig.conf");
  EXPECT_FALSE(c.kproxy.sctp_userspace_mode);

  // It is kubeadm's file: the same configuration as the example next to it.
  auto example = load_config_file(kKubeadmExample);
  ASSERT_TRUE(example.ok()) << example.error();
  EXPECT_EQ(decoded->config, example->config);
}

TEST(DeployManifests, KubeconfigUsesTheServiceAccount) {
  const json cm = kube_proxy_config_map();
  auto docs = yaml_documents_to_json(cm["data"]["kubeconfig.conf"].get<std::string>());
  ASSERT_TRUE(docs.ok()) << docs.error();
  ASSERT_EQ(docs->size(), 1U);
  const json& kc = docs->front();
  EXPECT_EQ(kc["kind"], "Config");
  const std::string context = kc["current-context"];
  const json ctx = named(kc["contexts"], context)["context"];
  const json cluster = named(kc["clusters"], ctx["cluster"].get<std::string>())["cluster"];
  const json user = named(kc["users"], ctx["user"].get<std::string>())["user"];
  EXPECT_EQ(cluster["certificate-authority"], "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
  EXPECT_EQ(cluster["server"].get<std::string>().rfind("https://", 0), 0U);
  EXPECT_EQ(user["tokenFile"], "/var/run/secrets/kubernetes.io/serviceaccount/token");
  EXPECT_FALSE(user.contains("token"));
}

TEST(DeployManifests, EveryCommandLineParsesWithTheConfigMapsFile) {
  const auto sets = daemon_sets();
  ASSERT_EQ(sets.size(), 2U);
  for (const auto& ds : sets) {
    const std::string name = ds["metadata"]["name"];
    SCOPED_TRACE(name);
    const json& pod = ds["spec"]["template"]["spec"];
    ASSERT_EQ(pod["containers"].size(), 1U);
    const json& container = pod["containers"][0];

    PodFiles files(pod, container);
    ASSERT_EQ(files.init_status(), 0);

    EXPECT_EQ(named(container["env"], "NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    std::vector<std::string> args = container["command"].get<std::vector<std::string>>();
    ASSERT_FALSE(args.empty());
    EXPECT_EQ(args[0], "/usr/local/bin/kproxy");
    for (const auto& a : container.value("args", json::array())) args.push_back(a.get<std::string>());

    std::vector<std::string> argv_storage{"kproxy"};
    bool has_config = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
      std::string a = replace_all(args[i], "$(NODE_NAME)", kNodeName);
      ASSERT_EQ(a.rfind("--", 0), 0U) << a;
      // Each flag is one of kproxy's (the parse below would fail otherwise; this names it).
      const std::string flag = a.substr(0, a.find('='));
      EXPECT_THAT(help_text(), HasSubstr(" " + flag + " ")) << flag;
      if (flag == "--config") {
        has_config = true;
        a = "--config=" + files.path(a.substr(a.find('=') + 1));
      }
      argv_storage.push_back(a);
    }
    EXPECT_TRUE(has_config);
    std::vector<const char*> argv;
    for (const auto& a : argv_storage) argv.push_back(a.c_str());

    auto cl = parse_command_line(argv);
    ASSERT_TRUE(cl.ok()) << cl.error();
    EXPECT_THAT(cl->ignored_flags, ::testing::IsEmpty());
    EXPECT_THAT(cl->warnings, ::testing::IsEmpty());
    EXPECT_EQ(cl->config.hostname_override, kNodeName);
    EXPECT_FALSE(cl->cleanup);
    EXPECT_EQ(cl->config.kproxy.sctp_userspace_mode, name == "kproxy-sctp-userspace");
    EXPECT_EQ(cl->config.kproxy.sctp_userspace_taint->key, taint_key());
    // The kubeconfig that the file names is in the same ConfigMap volume.
    EXPECT_TRUE(fs::exists(files.path(cl->config.client_connection.kubeconfig)));
  }
}

TEST(DeployManifests, DaemonSetsRunAsKubeadmsKubeProxyDoes) {
  for (const auto& ds : daemon_sets()) {
    const std::string name = ds["metadata"]["name"];
    SCOPED_TRACE(name);
    EXPECT_EQ(ds["apiVersion"], "apps/v1");
    EXPECT_EQ(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
    const json& pod = ds["spec"]["template"]["spec"];
    EXPECT_EQ(ds["spec"]["selector"]["matchLabels"], ds["spec"]["template"]["metadata"]["labels"]);
    EXPECT_EQ(pod["hostNetwork"], true);
    EXPECT_EQ(pod["serviceAccountName"], "kube-proxy");
    EXPECT_EQ(pod["priorityClassName"], "system-node-critical");
    EXPECT_EQ(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    EXPECT_THAT(pod["tolerations"].dump(), HasSubstr(json{{"operator", "Exists"}}.dump()));

    const json& c = pod["containers"][0];
    EXPECT_EQ(c["securityContext"]["privileged"], true);

    const json xtables = named(pod["volumes"], "xtables-lock");
    EXPECT_EQ(xtables["hostPath"]["path"], "/run/xtables.lock");
    EXPECT_EQ(xtables["hostPath"]["type"], "FileOrCreate");
    const json xtables_mount = named(c["volumeMounts"], "xtables-lock");
    EXPECT_EQ(xtables_mount["mountPath"], "/run/xtables.lock");
    EXPECT_FALSE(xtables_mount.value("readOnly", false));

    EXPECT_EQ(named(pod["volumes"], "lib-modules")["hostPath"]["path"], "/lib/modules");
    const json modules_mount = named(c["volumeMounts"], "lib-modules");
    EXPECT_EQ(modules_mount["mountPath"], "/lib/modules");
    EXPECT_EQ(modules_mount["readOnly"], true);

    EXPECT_EQ(named(pod["volumes"], "kube-proxy")["configMap"]["name"], "kube-proxy");
    EXPECT_EQ(named(c["volumeMounts"], "kube-proxy")["mountPath"], "/var/lib/kube-proxy");

    // /livez (not /healthz, which fails on a node being deleted) on the healthz port.
    for (const char* probe : {"livenessProbe", "readinessProbe"}) {
      EXPECT_EQ(c[probe]["httpGet"]["path"], "/livez") << probe;
      EXPECT_EQ(c[probe]["httpGet"]["port"], 10256) << probe;
    }
    // One image for the init container and kproxy.
    for (const auto& init : pod.value("initContainers", json::array())) EXPECT_EQ(init["image"], c["image"]);
  }
}

TEST(DeployManifests, TheSctpPoolAndTheRestNeverOverlap) {
  const json main = find(load_manifests(kMain), "DaemonSet", "kproxy");
  const json pool = find(load_manifests(kSctpPool), "DaemonSet", "kproxy-sctp-userspace");
  const json& pool_pod = pool["spec"]["template"]["spec"];
  EXPECT_EQ(pool_pod["nodeSelector"]["kproxy.io/sctp-userspace"], "true");
  const json main_terms = main["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
                              ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
  ASSERT_EQ(main_terms.size(), 1U);  // terms are ORed: one term, so every expression must hold
  const json excluded = {{"key", "kproxy.io/sctp-userspace"}, {"operator", "NotIn"}, {"values", {"true"}}};
  const json left_to_kube_proxy = {{"key", "kproxy.io/proxy"}, {"operator", "NotIn"}, {"values", {"kube-proxy"}}};
  EXPECT_THAT(main_terms[0]["matchExpressions"], ::testing::Contains(excluded));
  EXPECT_THAT(main_terms[0]["matchExpressions"], ::testing::Contains(left_to_kube_proxy));
  const json pool_terms =
      pool_pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
  ASSERT_EQ(pool_terms.size(), 1U);
  EXPECT_THAT(pool_terms[0]["matchExpressions"], ::testing::Contains(left_to_kube_proxy));
}

TEST(DeployManifests, TheSctpPoolsInitContainerRefusesAFileWithAKproxyStanza) {
  const json pool = find(load_manifests(kSctpPool), "DaemonSet", "kproxy-sctp-userspace");
  json pod = pool["spec"]["template"]["spec"];
  // A ConfigMap that already has a kproxy stanza: the script must stop, not append a second one.
  const fs::path dir = fs::temp_directory_path() / ("kproxy-deploy-test-stanza-" + std::to_string(::getpid()));
  fs::create_directories(dir / "in");
  fs::create_directories(dir / "out");
  std::ofstream(dir / "in" / "config.conf") << "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                                               "kind: KubeProxyConfiguration\nkproxy:\n  sctpUserspaceMode: false\n";
  std::string script = pod["initContainers"][0]["command"].back();
  script = replace_all(script, "/var/lib/kube-proxy", (dir / "in").string());
  script = replace_all(script, "/run/kproxy", (dir / "out").string());
  EXPECT_NE(run_shell("exec 2>/dev/null\n" + script), 0);
  EXPECT_FALSE(fs::exists(dir / "out" / "config.conf"));
  fs::remove_all(dir);
}

TEST(DeployManifests, KubeadmsRbacIsKept) {
  const auto docs = load_manifests(kMain);
  EXPECT_EQ(find(docs, "ServiceAccount", "kube-proxy")["metadata"]["namespace"], "kube-system");

  const json crb = find(docs, "ClusterRoleBinding", "kubeadm:node-proxier");
  EXPECT_EQ(crb["roleRef"]["kind"], "ClusterRole");
  EXPECT_EQ(crb["roleRef"]["name"], "system:node-proxier");
  EXPECT_EQ(crb["subjects"],
            json::parse(R"([{"kind":"ServiceAccount","name":"kube-proxy","namespace":"kube-system"}])"));

  const json role = find(docs, "Role", "kube-proxy");
  EXPECT_EQ(
      role["rules"],
      json::parse(R"([{"apiGroups":[""],"resources":["configmaps"],"resourceNames":["kube-proxy"],"verbs":["get"]}])"));
  const json rb = find(docs, "RoleBinding", "kube-proxy");
  EXPECT_EQ(rb["roleRef"]["name"], "kube-proxy");
  EXPECT_EQ(rb["subjects"][0]["name"], "system:bootstrappers:kubeadm:default-node-token");
}

TEST(DeployManifests, OnlyKproxysOwnObjectsCarryThePartOfLabel) {
  // `kubectl apply -l app.kubernetes.io/part-of=kproxy` on a kubeadm cluster must leave
  // kubeadm's objects (above all its ConfigMap) alone, and the same selector on delete must
  // never remove what kube-proxy needs to come back.
  const std::set<std::string> kubeadms{"ServiceAccount/kube-proxy", "ClusterRoleBinding/kubeadm:node-proxier",
                                       "Role/kube-proxy", "RoleBinding/kube-proxy", "ConfigMap/kube-proxy"};
  for (const auto& [file, obj] : all_objects()) {
    const std::string id = obj["kind"].get<std::string>() + "/" + obj["metadata"]["name"].get<std::string>();
    const json labels = obj["metadata"].value("labels", json::object());
    if (kubeadms.count(id)) {
      EXPECT_FALSE(labels.contains(kPartOf)) << id;
    } else {
      EXPECT_EQ(labels.value(kPartOf, ""), "kproxy") << file << ": " << id;
    }
  }
}

TEST(DeployManifests, TheAdmissionPolicyGuardsKproxysTaintOnItsOwnNode) {
  const auto docs = load_manifests(kMain);
  const json role = find(docs, "ClusterRole", "kproxy:node-taint");
  EXPECT_EQ(role["rules"], json::parse(R"([{"apiGroups":[""],"resources":["nodes"],"verbs":["get","patch"]}])"));
  const json binding = find(docs, "ClusterRoleBinding", "kproxy:node-taint");
  EXPECT_EQ(binding["roleRef"]["name"], "kproxy:node-taint");
  EXPECT_EQ(binding["subjects"],
            json::parse(R"([{"kind":"ServiceAccount","name":"kube-proxy","namespace":"kube-system"}])"));

  const json vap = find(docs, "ValidatingAdmissionPolicy", "kproxy-node-taint");
  EXPECT_EQ(vap["apiVersion"], "admissionregistration.k8s.io/v1");
  const json& spec = vap["spec"];
  EXPECT_EQ(spec["failurePolicy"], "Fail");
  const json rule = spec["matchConstraints"]["resourceRules"][0];
  EXPECT_EQ(rule["resources"], json::array({"nodes"}));
  EXPECT_EQ(rule["operations"], json::array({"UPDATE"}));
  EXPECT_THAT(spec["matchConditions"][0]["expression"].get<std::string>(),
              HasSubstr("\"system:serviceaccount:kube-system:kube-proxy\""));
  EXPECT_EQ(named(spec["variables"], "kproxyTaintKey")["expression"], "'" + taint_key() + "'");
  EXPECT_THAT(named(spec["variables"], "callerNode")["expression"].get<std::string>(),
              HasSubstr("'authentication.kubernetes.io/node-name'"));
  // Every variable is used by a validation, directly or through another variable.
  std::string validations;
  for (const auto& v : spec["validations"]) validations += v["expression"].get<std::string>() + "\n";
  for (const char* v : {"callerNode", "otherTaintsUnchanged", "restOfSpecUnchanged", "metadataUnchanged"}) {
    EXPECT_THAT(validations, HasSubstr("variables." + std::string(v)));
  }
  EXPECT_THAT(validations, HasSubstr("variables.callerNode == object.metadata.name"));

  const json vapb = find(docs, "ValidatingAdmissionPolicyBinding", "kproxy-node-taint");
  EXPECT_EQ(vapb["spec"]["policyName"], "kproxy-node-taint");
  EXPECT_EQ(vapb["spec"]["validationActions"], json::array({"Deny"}));
}

TEST(DeployManifests, TheImageInstallsKproxyWhereTheCommandLooksForIt) {
  const std::string dockerfile = read_file(fs::path(KPROXY_SOURCE_DIR) / "deploy" / "Dockerfile");
  EXPECT_THAT(dockerfile, HasSubstr("/usr/local/bin/kproxy"));
  EXPECT_THAT(dockerfile, HasSubstr("FROM debian:bookworm-slim"));
}

}  // namespace
}  // namespace kproxy::config
