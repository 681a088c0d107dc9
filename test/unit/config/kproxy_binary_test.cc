// The kproxy binary end to end: what an operator sees on the terminal and in the pod log.
// Every wait has a deadline and ends as soon as its condition holds; nothing sleeps.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kproxy/config/config_file.h"
#include "kproxy/version.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kKubeadmExample = std::string(KPROXY_SOURCE_DIR) + "/deploy/examples/kubeadm-kube-proxy.yaml";
// Without an API server on this machine, the running tests read Services from manifests.
const std::string kManifests = "--manifests=" + std::string(KPROXY_FIXTURES_DIR) + "/manifests/basic";

// A running kproxy with its stdout and stderr on pipes, in a network namespace of its own
// when the test runs as root. Killed if still running when the test ends.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int out[2];
    int err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv{KPROXY_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      const int null = open("/dev/null", O_RDONLY);
      dup2(null, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      // The test runner's signal mask must not leak into the child.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      // kproxy programs iptables and sysctls of the namespace it runs in. As root, give it a
      // fresh network namespace of its own (it dies with the process), never this machine's.
      // Without root it cannot change either, and runs as it is.
      if (geteuid() == 0 && unshare(CLONE_NEWNET) != 0) _exit(125);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }

  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

  // Reads output until `done` holds or both pipes close; false on the deadline.
  bool read_until(const std::function<bool()>& done, Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
      if (out_fd_ < 0 && err_fd_ < 0) return done();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
      if (poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) return false;
      drain(fds[0], out_fd_, out_);
      drain(fds[1], err_fd_, err_);
    }
    return true;
  }

  bool stderr_contains(const std::string& text, Clock::duration timeout) {
    return read_until([&] { return err_.find(text) != std::string::npos; }, timeout);
  }

  void signal(int sig) { kill(pid_, sig); }

  // The exit status (or 128 + signal), after both pipes have closed; -1 on the deadline.
  int wait_exit(Clock::duration timeout) {
    if (!read_until([] { return false; }, timeout) && (out_fd_ >= 0 || err_fd_ >= 0)) return -1;
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  static void drain(const pollfd& p, int& fd, std::string& sink) {
    if (fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return;
    char buf[8192];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      sink.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      close(fd);
      fd = -1;
    }
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
};

struct Result {
  int code;
  std::string out;
  std::string err;
};

// Runs kproxy to completion; it must finish within the deadline.
Result run(const std::vector<std::string>& args) {
  Child child(args);
  EXPECT_TRUE(child.started());
  const int code = child.wait_exit(20s);
  EXPECT_NE(code, -1) << "kproxy did not exit";
  return {code, child.out(), child.err()};
}

std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(KproxyBinary, HelpDocumentsEveryFlagOnStdout) {
  const Result r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  for (const char* flag :
       {"--config", "--kubeconfig", "--master", "--hostname-override", "--proxy-mode", "--cluster-cidr",
        "--detect-local-mode", "--masquerade-all", "--iptables-sync-period", "--iptables-min-sync-period",
        "--iptables-masquerade-bit", "--ipvs-scheduler", "--ipvs-sync-period", "--ipvs-min-sync-period",
        "--ipvs-strict-arp", "--nodeport-addresses", "--healthz-bind-address", "--metrics-bind-address",
        "--bind-address", "--conntrack-max-per-core", "--conntrack-min", "--conntrack-tcp-timeout-established",
        "--conntrack-tcp-timeout-close-wait", "--conntrack-tcp-be-liberal", "--conntrack-udp-timeout",
        "--conntrack-udp-timeout-stream", "--cleanup", "-v, --v", "--version", "--sctp-userspace-mode",
        "--sctp-userspace-taint", "--manifests", "--iptables-applier"}) {
    EXPECT_NE(r.out.find(std::string(flag) + " "), std::string::npos) << flag;
  }
}

TEST(KproxyBinary, VersionPrintsTheVersion) {
  const Result r = run({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string("kproxy v") + kproxy::kVersion + "\n");
  EXPECT_EQ(r.err, "");
}

TEST(KproxyBinary, BadInputExitsOneWithOneLineNamingIt) {
  const struct {
    std::vector<std::string> args;
    const char* line;
  } cases[] = {
      {{"--iptables-sync-period=abc"},
       "kproxy: invalid value \"abc\" for flag --iptables-sync-period: time: invalid duration \"abc\"\n"},
      {{"--no-such-flag"}, "kproxy: unknown flag: --no-such-flag\n"},
      {{"--config", "/nonexistent/config.conf"}, "kproxy: config file /nonexistent/config.conf: No such file or directory\n"},
      {{"--sctp-userspace-taint=a=b:Sometimes"},
       "kproxy: invalid value \"a=b:Sometimes\" for flag --sctp-userspace-taint: taint effect \"Sometimes\" is not "
       "NoSchedule, PreferNoSchedule or NoExecute\n"},
  };
  for (const auto& c : cases) {
    const Result r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.line;
    EXPECT_EQ(r.err, c.line);
    EXPECT_EQ(count_lines(r.err), 1U);
    EXPECT_EQ(r.out, "");
  }
}

TEST(KproxyBinary, KubeadmConfigStartsShowsTheEffectiveConfigAndStopsOnSigterm) {
  Child child({"--config", kKubeadmExample, "--hostname-override=n1", "--v=2", kManifests});
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.stderr_contains("waiting for SIGTERM", 20s)) << child.err();
  const std::string& log = child.err();
  EXPECT_NE(log.find(std::string("kproxy v") + kproxy::kVersion + " starting"), std::string::npos) << log;
  EXPECT_NE(log.find("effective configuration:\napiVersion: kubeproxy.config.k8s.io/v1alpha1\n"), std::string::npos)
      << log;
  for (const char* line : {"\nhostnameOverride: n1\n", "\nmode: iptables\n", "\nclusterCIDR: 10.244.0.0/16\n",
                           "\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n", "\n  verbosity: 2\n",
                           "\n  syncPeriod: 30s\n", "\nhealthzBindAddress: 0.0.0.0:10256\n"}) {
    EXPECT_NE(log.find(line), std::string::npos) << line << " in\n" << log;
  }
  EXPECT_EQ(log.find("\nW"), std::string::npos) << "no warnings expected:\n" << log;
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait_exit(10s), 0) << child.err();
  EXPECT_NE(child.err().find("received SIGTERM; exiting"), std::string::npos) << child.err();
  EXPECT_EQ(child.out(), "");
}

TEST(KproxyBinary, SigintStopsItToo) {
  Child child({kManifests, "--hostname-override=n1"});
  ASSERT_TRUE(child.stderr_contains("waiting for SIGTERM", 20s)) << child.err();
  EXPECT_EQ(child.err().find("effective configuration"), std::string::npos) << "only at --v=2";
  child.signal(SIGINT);
  EXPECT_EQ(child.wait_exit(10s), 0);
  EXPECT_NE(child.err().find("received SIGINT; exiting"), std::string::npos) << child.err();
}

TEST(KproxyBinary, IgnoredFlagsGetOneWarningNamingThemAll) {
  Child child({"--config=" + kKubeadmExample, "--proxy-mode=ipvs", "--masquerade-all", "--hostname-override=n1",
               kManifests});
  ASSERT_TRUE(child.stderr_contains("waiting for SIGTERM", 20s)) << child.err();
  const std::string& log = child.err();
  std::size_t warnings = 0;
  for (std::size_t at = log.find("\nW"); at != std::string::npos; at = log.find("\nW", at + 1)) ++warnings;
  EXPECT_EQ(warnings, 1U) << log;
  EXPECT_NE(log.find("ignoring flags --masquerade-all, --proxy-mode:"), std::string::npos) << log;
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait_exit(10s), 0);
}

TEST(KproxyBinary, WithoutAnyWayToReachTheApiItExitsNamingWhatIsMissing) {
  // No --kubeconfig, no --master, no --manifests, and not in a pod: kube-proxy's rule says
  // in-cluster, which needs the service environment.
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  const Result r = run({"--hostname-override=n1"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("KUBERNETES_SERVICE_HOST"), std::string::npos) << r.err;
}

TEST(KproxyBinary, AMissingKubeconfigIsAStartupErrorNamingTheFile) {
  const Result r = run({"--kubeconfig=/nonexistent/kubeconfig", "--hostname-override=n1"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/kubeconfig"), std::string::npos) << r.err;
}

TEST(KproxyBinary, WriteConfigToWritesAFileThatReadsBack) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("kproxy-write-config-" + std::to_string(getpid()) + ".yaml")).string();
  const Result r = run({"--write-config-to", path, "--proxy-mode=ipvs", "--hostname-override=n2"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto decoded = kproxy::config::load_config_file(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(decoded->config.mode, kproxy::config::ProxyMode::kIpvs);
  EXPECT_EQ(decoded->config.hostname_override, "n2");
  EXPECT_TRUE(decoded->warnings.empty());
}

TEST(KproxyBinary, CleanupAndInitOnlyExitAtOnce) {
  EXPECT_EQ(run({"--cleanup"}).code, 0);
  EXPECT_EQ(run({"--init-only", "--config", kKubeadmExample}).code, 0);
}

}  // namespace
