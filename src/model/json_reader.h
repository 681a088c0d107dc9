// Internal to kproxy_model: typed, path-aware reading of API JSON with rejection reporting.
//
// Every read goes through a Field, which knows where it is in the object ("spec.ports[1]") and
// reports a wrong JSON type itself. Paths are built only when something is reported, so the
// common case (a valid object) allocates nothing for them.
//
// A Field reads a ValueRef: a value of either parser, simdjson (text from the API server, the
// fast path: model::JsonValue::parse) or nlohmann (trees built by manifests and tests). Both
// read the same way: null is absent, the last of duplicate keys counts, a map's entries are
// visited in key order, an integer is one that fits 64 bits.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "kproxy/ip.h"
#include "kproxy/model/json_value.h"
#include "kproxy/model/rejection.h"
#include "kproxy/model/timestamp.h"

namespace kproxy::model::detail {

using Json = nlohmann::json;

// A JSON value of either parser, or absent. Does not own the document; cheap to copy.
class ValueRef {
 public:
  enum class Type : std::uint8_t {
    kAbsent,
    kNull,
    kBool,
    kInteger,     // fits int64
    kBigInteger,  // an unsigned integer beyond int64
    kFloat,
    kString,
    kArray,
    kObject,
    kOther  // nlohmann's "discarded"
  };

  ValueRef() = default;
  explicit ValueRef(const Json& tree) : tree_(&tree) {}
  explicit ValueRef(simdjson::dom::element element) : element_(element), simd_(true) {}

  bool present() const { return tree_ != nullptr || simd_; }
  bool simdjson() const { return simd_; }
  Type type() const;
  bool is(Type t) const { return type() == t; }
  // Preconditions: the matching type.
  std::string_view string_value() const;
  std::int64_t integer_value() const;
  double float_value() const;
  bool bool_value() const;
  // Entries of an array or object (an object's duplicate keys count for simdjson values).
  std::size_t size() const;
  // The last member with this name, null included; absent when missing or not an object.
  ValueRef find(std::string_view name) const;
  // Element i of an nlohmann array (Field::at walks simdjson arrays with a cursor).
  ValueRef tree_element(std::size_t i) const { return ValueRef((*tree_)[i]); }
  const Json* tree() const { return tree_; }
  simdjson::dom::element element() const { return element_; }

 private:
  const Json* tree_ = nullptr;
  simdjson::dom::element element_;
  bool simd_ = false;
};

// JsonValue's value, for the parsers (json_value.cc).
struct JsonValueAccess {
  static ValueRef ref(const JsonValue& value);
};

// What a failed check does to the object: drop (or default) this part and keep the rest, or
// make the whole object unusable.
enum class Severity : std::uint8_t { kDrop, kRefuse };

// Collects the rejections of one object.
class Reporter {
 public:
  explicit Reporter(std::string_view kind) : kind_(kind) {}

  void report(Severity severity, std::string field, const ValueRef& value, RejectReason reason, std::string detail);
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
  // The object itself (path ""), whatever its type.
  Field(Reporter& reporter, ValueRef root) : reporter_(&reporter), value_(root) {}

  // Absent means missing or JSON null: Go's decoder gives both the zero value.
  bool present() const { return value_.present(); }
  // Type tests that report nothing.
  bool holds_object() const { return value_.is(ValueRef::Type::kObject); }
  bool holds_array() const { return value_.is(ValueRef::Type::kArray); }
  bool holds_string() const { return value_.is(ValueRef::Type::kString); }
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
  std::size_t size() const {
    const auto t = value_.type();
    return t == ValueRef::Type::kArray || t == ValueRef::Type::kObject ? value_.size() : 0;
  }
  // The members of this object in key order, each key once (the last of duplicates, as Go's
  // decoder and nlohmann keep it): fn(key, entry), entry addressed as a map key (see key()).
  template <typename Fn>
  void for_each_entry(Fn&& fn) const;

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
  Field(const Field& parent, ValueRef value, Step step, std::string_view name, std::size_t index)
      : reporter_(parent.reporter_), parent_(&parent), value_(value.is(ValueRef::Type::kNull) ? ValueRef() : value),
        step_(step), name_(name), index_(index) {}

  Reporter* reporter_;
  const Field* parent_ = nullptr;
  ValueRef value_;
  Step step_ = Step::kRoot;
  std::string_view name_;
  std::size_t index_ = 0;
  // simdjson arrays are lists on a tape: at(i) from the start is O(i), so the last position
  // is kept and the usual loop over i = 0, 1, 2... costs O(1) a step.
  mutable simdjson::dom::array::iterator cursor_;
  mutable std::size_t cursor_index_ = kNoCursor;
  static constexpr std::size_t kNoCursor = static_cast<std::size_t>(-1);
};

template <typename Fn>
void Field::for_each_entry(Fn&& fn) const {
  if (!holds_object()) return;
  if (!value_.simdjson()) {
    // nlohmann's objects are sorted maps that kept the last of duplicate keys.
    for (const auto& [k, v] : value_.tree()->items()) {
      Field entry(*this, ValueRef(v), Step::kKey, k, 0);
      fn(std::string_view(k), entry);
    }
    return;
  }
  simdjson::dom::object object;
  if (value_.element().get_object().get(object) != simdjson::SUCCESS) return;
  // Go's encoder writes map keys sorted, so the API server's objects are in order already;
  // only other input pays for sorting.
  bool sorted = true;
  std::string_view previous;
  bool first = true;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string_view k = it.key();
    if (!first && !(previous < k)) {
      sorted = false;
      break;
    }
    previous = k;
    first = false;
  }
  if (sorted) {
    for (auto it = object.begin(); it != object.end(); ++it) {
      Field entry(*this, ValueRef(it.value()), Step::kKey, it.key(), 0);
      fn(it.key(), entry);
    }
    return;
  }
  std::vector<std::pair<std::string_view, simdjson::dom::element>> entries;
  entries.reserve(object.size());
  for (auto it = object.begin(); it != object.end(); ++it) entries.emplace_back(it.key(), it.value());
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i + 1 < entries.size() && entries[i + 1].first == entries[i].first) continue;  // a later duplicate wins
    Field entry(*this, ValueRef(entries[i].second), Step::kKey, entries[i].first, 0);
    fn(entries[i].first, entry);
  }
}

// Names and map keys in rejections are cut only past the longest valid one (a label key:
// 253-character prefix, "/", 63-character name), so a valid long name always prints whole.
inline constexpr std::size_t kMaxNameChars = 317;

// The value as JSON text for a rejection: strings quoted and escaped, containers elided.
std::string render_value(const ValueRef& value);
inline std::string render_value(const Json& value) { return render_value(ValueRef(value)); }
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
