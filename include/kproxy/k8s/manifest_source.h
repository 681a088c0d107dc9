// --manifests DIR: Services, EndpointSlices and Nodes from files instead of an API server.
//
// Every *.yaml, *.yml and *.json file in the directory (not its subdirectories; names
// starting with '.' are skipped) may hold several objects: YAML documents separated by
// "---", and "kind: List" (or any *List) with items. The source delivers the union of all
// files to the same informers an API server would feed, as a list (replace), so a file
// edited, added, renamed or removed produces exactly the add, update and delete events the
// API would. Objects are filtered as kube-proxy's informers filter them (the Node by name;
// Services and EndpointSlices without the service-proxy-name or headless labels), and a
// namespaced object without a namespace lands in "default", as kubectl apply would put it.
//
// A file that cannot be read or parsed is reported and its previous objects stay in force.
// Changes are followed with inotify on the directory; any event rescans it, which also
// covers ConfigMap volumes (their files are symlinks swapped through "..data"). Objects
// carry no resourceVersion in a manifest, so the source gives each one a hash of its content
// as metadata.resourceVersion: an unchanged object is then not parsed (or reported) again.
#pragma once

#include <map>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kproxy/k8s/reflector.h"
#include "kproxy/status.h"

namespace kproxy::k8s {

class ManifestSource {
 public:
  struct Sinks {
    ReflectorSink& services;
    ReflectorSink& endpoint_slices;
    ReflectorSink& nodes;
  };

  ManifestSource(std::string directory, std::string node_name, Sinks sinks);

  // Reads the directory and delivers its state. An error only when the directory itself
  // cannot be read (a startup error); bad files are reported and skipped.
  Status rescan();

  // Starts following the directory (inotify) and reads it once. An error when the
  // directory cannot be watched or read: a startup error.
  Status open();
  // Follows changes until `stop` is requested (blocking; its own thread). open() first.
  Status run(std::stop_token stop);
  ~ManifestSource();

  // How many rescans have delivered state (tests wait on it).
  std::uint64_t generation() const { return generation_.load(); }

 private:
  struct FileState {
    std::string content;
    std::vector<nlohmann::json> objects;
  };
  void collect(const nlohmann::json& doc, const std::string& file, std::vector<nlohmann::json>& out) const;

  std::string directory_;
  std::string node_name_;
  Sinks sinks_;
  std::map<std::string, FileState> files_;
  std::atomic<std::uint64_t> generation_{0};
  int inotify_fd_ = -1;
};

}  // namespace kproxy::k8s
