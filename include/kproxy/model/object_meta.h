// The part of metav1.ObjectMeta that kproxy uses.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "kproxy/model/timestamp.h"

namespace kproxy::model {

// std::less<> so that lookups take a std::string_view without building a std::string.
using StringMap = std::map<std::string, std::string, std::less<>>;

struct ObjectMeta {
  // Empty for cluster-scoped kinds (Node). "namespace" is a C++ keyword.
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  StringMap labels;
  // Every annotation except kubectl.kubernetes.io/last-applied-configuration, which is a
  // second copy of the whole object that no proxy reads (see docs/model.md).
  StringMap annotations;
  // Set while the object is being deleted (graceful deletion, finalizers). An unparseable
  // value is reported and kept as the epoch: "being deleted, time unknown".
  std::optional<Timestamp> deletion_timestamp;

  // "namespace/name", or "name" for cluster-scoped objects: kube-proxy's klog.KObj form.
  std::string key() const { return ns.empty() ? name : ns + "/" + name; }

  bool operator==(const ObjectMeta&) const = default;
};

}  // namespace kproxy::model
