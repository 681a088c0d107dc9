// Reading the parts every kind shares: kind/apiVersion, metadata, port protocols
// (object_reader.h). The text-input checks are in parse.cc.
#include "object_reader.h"

#include <string>
#include <utility>

#include "kproxy/model/parse.h"
#include "names.h"

namespace kproxy::model::detail {
namespace {

// A second copy of the whole object that `kubectl apply` keeps; no proxy reads it, and keeping
// it would double the memory held per object.
constexpr std::string_view kLastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";

// labels and annotations: string to string. A non-string value drops that entry only.
StringMap read_string_map(const Field& map, bool skip_last_applied) {
  StringMap out;
  if (!map.is_object(Severity::kDrop)) return out;
  map.for_each_entry([&](std::string_view k, const Field& entry) {
    if (skip_last_applied && k == kLastAppliedAnnotation) return;
    if (!entry.present()) return;  // null: as if absent
    if (auto s = entry.string(Severity::kDrop)) out.emplace(std::string(k), std::string(*s));
  });
  return out;
}

}  // namespace

ObjectMeta read_object_meta(Reporter& reporter, const Field& root, const KindInfo& info) {
  ObjectMeta meta;
  const std::string kind_text(info.kind);

  if (Field kind = root.member("kind"); kind.present()) {
    if (auto s = kind.string(Severity::kRefuse); s && *s != info.kind) {
      kind.fail(Severity::kRefuse, RejectReason::kUnknownValue, "is not " + kind_text);
    }
  }
  if (Field version = root.member("apiVersion"); version.present()) {
    if (auto s = version.string(Severity::kRefuse); s && *s != info.api_version) {
      // Other versions have other schemas (discovery/v1beta1 had "topology", not "zone").
      version.fail(Severity::kRefuse, RejectReason::kUnknownValue,
                   "is not " + std::string(info.api_version) + ", the version kproxy reads");
    }
  }

  Field metadata = root.member("metadata");
  if (!metadata.present()) {
    metadata.fail(Severity::kRefuse, RejectReason::kMissingField, "is required");
    return meta;
  }
  if (!metadata.is_object(Severity::kRefuse)) return meta;

  // The object's name for messages: the raw text (escaped) even when it is malformed, so the
  // operator can find it.
  std::string display_ns;
  std::string display_name = "(unknown)";

  if (info.namespaced) {
    Field ns = metadata.member("namespace");
    if (auto s = ns.required_string(Severity::kRefuse)) {
      display_ns = escape_text(*s, kMaxNameChars);
      if (is_dns1123_label(*s)) {
        meta.ns = std::string(*s);
      } else {
        ns.fail(Severity::kRefuse, RejectReason::kMalformed, "is not a DNS-1123 label");
      }
    }
  }
  Field name = metadata.member("name");
  if (auto s = name.required_string(Severity::kRefuse)) {
    display_name = escape_text(*s, kMaxNameChars);
    if (info.valid_name(*s)) {
      meta.name = std::string(*s);
    } else {
      name.fail(Severity::kRefuse, RejectReason::kMalformed, "is not " + std::string(info.name_rule));
    }
  }
  reporter.set_object(info.namespaced ? (display_ns.empty() ? "(unknown)" : display_ns) + "/" + display_name
                                      : display_name);

  if (auto s = metadata.member("uid").string(Severity::kDrop)) meta.uid = std::string(*s);
  if (auto s = metadata.member("resourceVersion").string(Severity::kDrop)) meta.resource_version = std::string(*s);
  meta.labels = read_string_map(metadata.member("labels"), false);
  meta.annotations = read_string_map(metadata.member("annotations"), true);

  if (Field deletion = metadata.member("deletionTimestamp"); deletion.present()) {
    // Present means "being deleted" whatever the text says; an unreadable time is reported
    // and kept as the epoch so that the deletion itself is not lost.
    meta.deletion_timestamp = deletion.timestamp(Severity::kDrop).value_or(Timestamp{});
  }
  return meta;
}

std::optional<Protocol> read_protocol(const Field& field, Severity severity) {
  if (!field.present()) return Protocol::kTcp;
  auto s = field.string(severity);
  if (!s) return std::nullopt;
  static constexpr std::pair<std::string_view, Protocol> kProtocols[] = {
      {"TCP", Protocol::kTcp}, {"UDP", Protocol::kUdp}, {"SCTP", Protocol::kSctp}};
  auto p = lookup(*s, kProtocols);
  if (!p) field.fail(severity, RejectReason::kUnknownValue, "is not TCP, UDP or SCTP");
  return p;
}

}  // namespace kproxy::model::detail
