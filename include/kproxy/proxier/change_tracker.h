// ChangeTracker: keeps the Services and EndpointSlices delivered by the informers, and turns
// them into Snapshots on demand, saying which service ports changed since the last one.
//
// It plays the part of kube-proxy's ServiceChangeTracker and EndpointsChangeTracker with its
// EndpointSliceCache (pkg/proxy/servicechangetracker.go, endpointschangetracker.go,
// endpointslicecache.go), for one IP family. It is not thread-safe: the informer handlers and
// checkout() run on the proxier's one consumer thread (docs/architecture.md, "Threads").
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/informer_handler.h"
#include "kproxy/model/endpoint_slice.h"
#include "kproxy/model/service.h"
#include "kproxy/proxier/snapshot.h"

namespace kproxy::proxier {

struct ChangeTrackerOptions {
  // The family this tracker proxies. An IPv6 proxier uses a second tracker.
  IpFamily family = IpFamily::kIPv4;
  // This node's name, to mark endpoints local. Empty: no endpoint is local.
  std::string node_name;
  // Read hints.forNodes (kube-proxy reads them only with the PreferSameTrafficDistribution
  // feature gate, beta and on by default from 1.34).
  bool read_node_hints = true;
};

class ChangeTracker {
 public:
  explicit ChangeTracker(ChangeTrackerOptions options);

  // The handlers to give the Service and EndpointSlice informers. They live as long as the
  // tracker.
  InformerHandler<model::Service>& service_handler() { return service_handler_; }
  InformerHandler<model::EndpointSlice>& endpoint_slice_handler() { return slice_handler_; }

  // Both informers have delivered their first complete list: a sync before this would remove
  // rules for Services not listed yet.
  bool synced() const { return services_synced_ && slices_synced_; }

  // Some event since the last checkout may have changed a service port.
  bool has_pending_changes() const { return !dirty_.empty(); }

  struct Checkout {
    std::shared_ptr<const Snapshot> snapshot;
    // Service ports added, removed or changed in any field (endpoints included) since the
    // previous checkout. Events that leave every port as it was add nothing.
    std::set<ServicePortName> changed;
  };
  // Applies the pending changes and returns the new snapshot with what changed.
  Checkout checkout();

  // The last snapshot checked out (empty before the first).
  const std::shared_ptr<const Snapshot>& current() const { return current_; }

 private:
  using ServiceKey = std::pair<std::string, std::string>;  // namespace, name
  using ServicePtr = std::shared_ptr<const model::Service>;
  using SlicePtr = std::shared_ptr<const model::EndpointSlice>;

  template <typename T>
  class Handler final : public InformerHandler<T> {
   public:
    Handler(ChangeTracker& tracker, bool& synced) : tracker_(tracker), synced_(synced) {}
    void on_add(const typename InformerHandler<T>::Ptr& object) override { tracker_.set(object); }
    void on_update(const typename InformerHandler<T>::Ptr& old_object,
                   const typename InformerHandler<T>::Ptr& new_object) override {
      tracker_.remove(old_object);
      tracker_.set(new_object);
    }
    void on_delete(const typename InformerHandler<T>::Ptr& object) override { tracker_.remove(object); }
    void on_synced() override { synced_ = true; }

   private:
    ChangeTracker& tracker_;
    bool& synced_;
  };

  void set(const ServicePtr& service);
  void remove(const ServicePtr& service);
  void set(const SlicePtr& slice);
  void remove(const SlicePtr& slice);

  // The service ports of one Service as this tracker's family sees them (none if skipped).
  std::vector<ServicePortInfo> build(const ServiceKey& key) const;

  ChangeTrackerOptions options_;
  Handler<model::Service> service_handler_;
  Handler<model::EndpointSlice> slice_handler_;
  bool services_synced_ = false;
  bool slices_synced_ = false;

  std::map<ServiceKey, ServicePtr> services_;
  // Slices by Service, then by slice name. A slice may arrive before its Service.
  std::map<ServiceKey, std::map<std::string, SlicePtr>> slices_;
  std::set<ServiceKey> dirty_;
  std::shared_ptr<const Snapshot> current_;
};

// kube-proxy's ShouldSkipService (pkg/proxy/util/utils.go): headless Services, ExternalName
// Services and Services without a cluster IP are not proxied.
bool should_skip_service(const model::Service& service);

// The service ports of `service` for `family`, without endpoints: none when the Service is
// skipped or has no cluster IP of that family (GetClusterIPByFamily).
std::vector<ServicePortInfo> service_port_infos(const model::Service& service, IpFamily family);

}  // namespace kproxy::proxier
