#include "kproxy/k8s/manifest_source.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kproxy/log.h"
#include "kproxy/yaml_json.h"

namespace kproxy::k8s {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxFileBytes = 64u << 20;

bool is_manifest_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  auto ends = [&](std::string_view s) { return name.size() > s.size() && name.ends_with(s); };
  return ends(".yaml") || ends(".yml") || ends(".json");
}

std::string string_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool has_label(const nlohmann::json& object, const char* label) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return false;
  auto labels = meta->find("labels");
  return labels != meta->end() && labels->is_object() && labels->contains(label);
}

// A file descriptor that closes itself.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

}  // namespace

ManifestSource::ManifestSource(std::string directory, std::string node_name, Sinks sinks)
    : directory_(std::move(directory)), node_name_(std::move(node_name)), sinks_(sinks) {}

void ManifestSource::collect(const nlohmann::json& doc, const std::string& file,
                             std::vector<nlohmann::json>& out) const {
  if (!doc.is_object()) {
    spdlog::warn("manifests {}: a document is not an object; skipped", file);
    return;
  }
  const std::string kind = string_field(doc, "kind");
  if (kind.ends_with("List")) {  // "List", "ServiceList", ... (kubectl get -o yaml writes "List")
    auto items = doc.find("items");
    if (items == doc.end() || !items->is_array()) {
      spdlog::warn("manifests {}: {} without an items array; skipped", file, kind);
      return;
    }
    for (const auto& item : *items) collect(item, file, out);
    return;
  }
  out.push_back(doc);
}

Status ManifestSource::rescan() {
  std::error_code ec;
  fs::directory_iterator it(directory_, ec);
  if (ec) return Error("manifests directory " + directory_ + ": " + ec.message());

  std::map<std::string, FileState> next;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (!is_manifest_name(name)) continue;
    std::error_code fec;
    if (!entry.is_regular_file(fec)) continue;  // follows symlinks (ConfigMap volumes)
    const std::string path = entry.path().string();
    auto previous = files_.find(name);

    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    if (in) buf << in.rdbuf();
    if (!in) {
      spdlog::warn("manifests {}: cannot read it ({}); keeping its previous objects", path, std::strerror(errno));
      if (previous != files_.end()) next.emplace(name, previous->second);
      continue;
    }
    std::string content = buf.str();
    if (previous != files_.end() && previous->second.content == content) {
      next.emplace(name, previous->second);
      continue;
    }
    if (content.size() > kMaxFileBytes) {
      spdlog::warn("manifests {}: larger than {} bytes; keeping its previous objects", path, kMaxFileBytes);
      if (previous != files_.end()) next.emplace(name, previous->second);
      continue;
    }
    auto docs = yaml_documents_to_json(content);
    if (!docs) {
      spdlog::warn("manifests {}: {}; keeping its previous objects", path, docs.error());
      if (previous != files_.end()) next.emplace(name, previous->second);
      continue;
    }
    FileState state;
    state.content = std::move(content);
    for (const auto& d : *docs) collect(d, path, state.objects);
    if (log::v(4)) spdlog::info("manifests {}: {} objects", path, state.objects.size());
    next.emplace(name, std::move(state));
  }
  files_ = std::move(next);

  std::vector<nlohmann::json> services, slices, nodes;
  for (const auto& [name, state] : files_) {
    for (nlohmann::json object : state.objects) {
      const std::string kind = string_field(object, "kind");
      const std::string api = string_field(object, "apiVersion");
      auto meta = object.find("metadata");
      if (meta != object.end() && meta->is_object()) {
        if (kind != "Node" && string_field(*meta, "namespace").empty()) (*meta)["namespace"] = "default";
        if (string_field(*meta, "resourceVersion").empty()) {
          (*meta)["resourceVersion"] = "m" + std::to_string(std::hash<std::string>{}(object.dump()));
        }
      }
      if (kind == "Service" && api == "v1") {
        // kube-proxy's informer label selector.
        if (has_label(object, "service.kubernetes.io/service-proxy-name") ||
            has_label(object, "service.kubernetes.io/headless")) {
          continue;
        }
        services.push_back(std::move(object));
      } else if (kind == "EndpointSlice" && api == "discovery.k8s.io/v1") {
        if (has_label(object, "service.kubernetes.io/service-proxy-name") ||
            has_label(object, "service.kubernetes.io/headless")) {
          continue;
        }
        slices.push_back(std::move(object));
      } else if (kind == "Node" && api == "v1") {
        if (object_key(object) == node_name_) nodes.push_back(std::move(object));
      } else if (log::v(2)) {
        spdlog::info("manifests {}: {} {} {} is not a kind kproxy reads; ignored", name, api, kind,
                     object_key(object));
      }
    }
  }
  const std::string rv = "manifests-" + std::to_string(generation_.load() + 1);
  if (log::v(2)) {
    spdlog::info("manifests {}: {} files, {} Services, {} EndpointSlices, {} Node", directory_, files_.size(),
                 services.size(), slices.size(), nodes.size());
  }
  sinks_.services.replace(std::move(services), rv);
  sinks_.endpoint_slices.replace(std::move(slices), rv);
  sinks_.nodes.replace(std::move(nodes), rv);
  ++generation_;
  return {};
}

ManifestSource::~ManifestSource() {
  if (inotify_fd_ >= 0) close(inotify_fd_);
}

Status ManifestSource::open() {
  if (inotify_fd_ < 0) {
    inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) return Error(std::string("inotify_init1: ") + std::strerror(errno));
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB |
                          IN_DELETE_SELF | IN_MOVE_SELF;
    if (inotify_add_watch(inotify_fd_, directory_.c_str(), mask) < 0) {
      return Error("manifests directory " + directory_ + ": " + std::strerror(errno));
    }
  }
  // Watch first, then scan: a change between the two is caught by the next event.
  return rescan();
}

Status ManifestSource::run(std::stop_token stop) {
  if (inotify_fd_ < 0) {
    if (Status s = open(); !s.ok()) return s;
  }
  Fd wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake.fd < 0) return Error(std::string("eventfd: ") + std::strerror(errno));
  std::stop_callback on_stop(stop, [&wake] {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake.fd, &one, sizeof one);
  });

  while (!stop.stop_requested()) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake.fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Error(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents) break;
    bool gone = false;
    alignas(inotify_event) char buf[16384];
    for (;;) {
      ssize_t n = read(inotify_fd_, buf, sizeof buf);
      if (n <= 0) break;
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) gone = true;
        p += sizeof(inotify_event) + ev->len;
      }
    }
    if (gone) {
      spdlog::error("manifests directory {} was removed or moved; keeping the last state and no longer following it",
                    directory_);
      return {};
    }
    if (Status s = rescan(); !s.ok()) spdlog::warn("{}; keeping the last state", s.message());
  }
  return {};
}

}  // namespace kproxy::k8s
