// The contract between the API side and its consumers (the proxier): what an informer
// delivers about one kind of object. Header-only, on purpose: the proxier implements it
// without depending on the API client (DESIGN.md: data flows one way).
#pragma once

#include <memory>

namespace kproxy {

template <typename T>
class InformerHandler {
 public:
  using Ptr = std::shared_ptr<const T>;
  virtual ~InformerHandler() = default;
  virtual void on_add(const Ptr& object) = 0;
  virtual void on_update(const Ptr& old_object, const Ptr& new_object) = 0;
  virtual void on_delete(const Ptr& object) = 0;
  // The first complete list has been delivered (client-go's HasSynced).
  virtual void on_synced() = 0;
};

}  // namespace kproxy
