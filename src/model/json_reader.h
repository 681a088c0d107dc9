// Internal to kproxy_model: typed, path-aware reading of API JSON with rejection reporting.
//
// Every read goes through a Field, which knows where it is in the object ("spec.ports[1]") and
// reports a wrong JSON type itself. Paths are built only when something is reported, so the
// common case (a valid object) allocates nothing for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kproxy/ip.h"
#include "kproxy/model/rejection.h"
#include "kproxy/model/timestamp.h"

namespace kproxy::model::detail {

using Json = nlohmann::json;

// What a failed check does to the object: drop (or default) this part and keep the rest, or
// make the whole object unusable.
enum class Severity : std::uint8_t { kDrop, kRefuse };

// Collects the rejections of one object.
class Reporter {
 public:
  explicit Reporter(std::string_view kind) : kind_(kind) {}

  void report(Severity severity, std::string field, const Json* value, RejectReason reason, std::string detail);
  // Past the cap a rejection is only counted, so callers skip building its text.
  bool full() const;
  void count_unkept(Severity severity) {
    ++unkept_;
    if (severity == Severity::kRefuse) refused_ = true;
  }
  // "namespace/name" once the metadata has been read; stamped on every rejection at finish().
  void set_object(std::string object) { object_ = std::move(object); }
  bool refused() const { return refused_; }

  template <typename T>
  ParseResult<T> finish(std::optional<T> value) && {
    ParseResult<T> result;
    if (!refused_) result.value = std::move(value);
    for (auto& r : rejections_) r.object = object_;
    result.rejections = std::move(rejections_);
    result.more_rejections = unkept_;
    return result;
  }

 private:
  std::string kind_;
  std::string object_ = "(unknown)";
  std::vector<Rejection> rejections_;
  std::size_t unkept_ = 0;
  bool refused_ = false;
};

// A position in the object: a JSON value (or nothing, when absent) and how it was reached.
// A Field refers to its parent, so it must not outlive it; fields live on the stack of the
// function that walks the object.
class Field {
 public:
  // The object itself (path "").
  Field(Reporter& reporter, const Json& root) : reporter_(&reporter), value_(&root) {}

  // Absent means missing or JSON null: Go's decoder gives both the zero value.
  bool present() const { return value_ != nullptr; }
  const Json& json() const { return *value_; }
  std::string path() const;

  // A member of this object; absent when this is not an object (check is_object() first).
  // The rvalue overloads are deleted because a child refers to its parent: name the parent.
  Field member(std::string_view name) const&;
  Field member(std::string_view name) const&& = delete;
  // An element of this array (i < size()).
  Field at(std::size_t i) const&;
  Field at(std::size_t i) const&& = delete;
  // A member of this object addressed as a map key: "metadata.labels[app]".
  Field key(std::string_view name) const&;
  Field key(std::string_view name) const&& = delete;
  std::size_t size() const { return value_ != nullptr && (value_->is_array() || value_->is_object()) ? value_->size() : 0; }

  void fail(Severity severity, RejectReason reason, std::string detail) const;

  // Type checks: present with the right type, or reported as kWrongType and nullopt/false.
  // Calling them on an absent field returns nullopt/false without reporting.
  std::optional<std::string_view> string(Severity severity) const;
  // An integer JSON number. A float is kWrongType; beyond int64 is kOutOfRange.
  std::optional<std::int64_t> integer(Severity severity) const;
  std::optional<bool> boolean(Severity severity) const;
  bool is_array(Severity severity) const;
  bool is_object(Severity severity) const;

  // A string that must be non-empty: absent or "" is reported as kMissingField.
  std::optional<std::string_view> required_string(Severity severity) const;
  // An integer within [min, max]; outside is kOutOfRange.
  std::optional<std::int64_t> integer_in(Severity severity, std::int64_t min, std::int64_t max) const;

  // IP addresses and CIDRs through kproxy's parser (decimal IPv4 octets, no zones).
  // IPv4-mapped IPv6 is refused everywhere: Go reads it as IPv4, so its family is ambiguous.
  enum class AddressUse : std::uint8_t {
    kAny,        // node addresses
    kNotSpecial  // also refuses unspecified, loopback, link-local and multicast
  };
  std::optional<IpAddress> ip(Severity severity, AddressUse use) const;
  // trim: strip surrounding whitespace first, as kube-proxy does for loadBalancerSourceRanges.
  std::optional<Cidr> cidr(Severity severity, bool trim) const;
  std::optional<Timestamp> timestamp(Severity severity) const;

 private:
  enum class Step : std::uint8_t { kRoot, kMember, kIndex, kKey };
  Field(const Field& parent, const Json* value, Step step, std::string_view name, std::size_t index)
      : reporter_(parent.reporter_), parent_(&parent), value_(value), step_(step), name_(name), index_(index) {}

  Reporter* reporter_;
  const Field* parent_ = nullptr;
  const Json* value_;
  Step step_ = Step::kRoot;
  std::string_view name_;
  std::size_t index_ = 0;
};

// Names and map keys in rejections are cut only past the longest valid one (a label key:
// 253-character prefix, "/", 63-character name), so a valid long name always prints whole.
inline constexpr std::size_t kMaxNameChars = 317;

// The value as JSON text for a rejection: strings quoted and escaped, containers elided.
std::string render_value(const Json& value);
// Printable text: control bytes, invalid UTF-8 and invisible format characters escaped,
// cut after max_chars characters with "...".
std::string escape_text(std::string_view text, std::size_t max_chars);

// Looks a string up in a table of API spellings.
template <typename E, std::size_t N>
std::optional<E> lookup(std::string_view text, const std::pair<std::string_view, E> (&table)[N]) {
  for (const auto& [spelling, value] : table) {
    if (spelling == text) return value;
  }
  return std::nullopt;
}

}  // namespace kproxy::model::detail
