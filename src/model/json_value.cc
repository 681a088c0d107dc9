// JsonValue (json_value.h): simdjson for text, with a parser reused per thread; nlohmann for
// the trees callers already hold and for the text simdjson refuses.
#include "kproxy/model/json_value.h"

#include <cstring>
#include <exception>
#include <type_traits>
#include <utility>
#include <vector>

#include "json_reader.h"

namespace kproxy::model {
namespace {

using simdjson::dom::element;
static_assert(std::is_trivially_copyable_v<element>);

// A parser keeps the buffers of the largest document it has read. Parsers are pooled per
// thread so that parsing an object allocates nothing once the pool is warm; one that grew
// past this (a huge object) is freed rather than kept, so a thread never holds more than a
// few MiB for parsing.
constexpr std::size_t kMaxPooledCapacity = 1u << 20;
constexpr std::size_t kMaxPooledParsers = 2;

thread_local bool pool_destroyed = false;

struct ParserPool {
  std::vector<std::unique_ptr<simdjson::dom::parser>> free;
  ~ParserPool() { pool_destroyed = true; }
};

ParserPool& pool() {
  thread_local ParserPool p;
  return p;
}

// A parser taken from the calling thread's pool, given back (to the pool of the thread that
// drops the last JsonValue of its document) when the document is no longer referenced.
struct ParserLease {
  std::unique_ptr<simdjson::dom::parser> parser;

  ParserLease() {
    if (!pool_destroyed && !pool().free.empty()) {
      parser = std::move(pool().free.back());
      pool().free.pop_back();
    } else {
      parser = std::make_unique<simdjson::dom::parser>();
    }
  }
  ParserLease(const ParserLease&) = delete;
  ParserLease& operator=(const ParserLease&) = delete;
  ~ParserLease() {
    if (pool_destroyed || parser->capacity() > kMaxPooledCapacity) return;
    try {
      if (pool().free.size() < kMaxPooledParsers) pool().free.push_back(std::move(parser));
    } catch (...) {
      // Out of memory: the parser is simply freed.
    }
  }
};

}  // namespace

namespace detail {

ValueRef JsonValueAccess::ref(const JsonValue& value) {
  switch (value.backend_) {
    case JsonValue::Backend::kNlohmann:
      return ValueRef(*value.tree_);
    case JsonValue::Backend::kSimdjson: {
      element e;
      std::memcpy(static_cast<void*>(&e), value.element_, sizeof e);
      return ValueRef(e);
    }
    case JsonValue::Backend::kAbsent:
      break;
  }
  return {};
}

}  // namespace detail

JsonValue::JsonValue(nlohmann::json value) {
  auto tree = std::make_shared<const nlohmann::json>(std::move(value));
  tree_ = tree.get();
  owner_ = std::move(tree);
  backend_ = Backend::kNlohmann;
}

Expected<JsonValue> JsonValue::parse(std::string_view text) noexcept {
  static_assert(sizeof(element) == sizeof(element_) && alignof(element) <= 8);
  try {
    auto lease = std::make_shared<ParserLease>();
    element root;
    // realloc_if_needed: the text is copied into the parser's own padded buffer (reused), as
    // simdjson reads a few bytes past the end.
    if (lease->parser->parse(text.data(), text.size(), true).get(root) == simdjson::SUCCESS) {
      JsonValue v;
      std::memcpy(v.element_, static_cast<const void*>(&root), sizeof root);
      v.owner_ = std::move(lease);
      v.backend_ = Backend::kSimdjson;
      return v;
    }
    lease.reset();
    // simdjson refused it. nlohmann reads a few inputs simdjson does not (integers beyond 64
    // bits as floats, a leading BOM, a NUL as the end of the text), and for the rest it gives
    // the error message kproxy has always reported.
    return JsonValue(nlohmann::json::parse(text));
  } catch (const std::exception& e) {
    try {
      return Error(e.what());
    } catch (...) {
      return Error(std::string());
    }
  }
}

bool JsonValue::is_object() const { return detail::JsonValueAccess::ref(*this).is(detail::ValueRef::Type::kObject); }

JsonValue JsonValue::member(std::string_view name) const {
  const detail::ValueRef child = detail::JsonValueAccess::ref(*this).find(name);
  if (!child.present() || child.is(detail::ValueRef::Type::kNull)) return {};
  JsonValue v;
  v.owner_ = owner_;
  v.backend_ = backend_;
  if (child.simdjson()) {
    const element e = child.element();
    std::memcpy(v.element_, static_cast<const void*>(&e), sizeof e);
  } else {
    v.tree_ = child.tree();
  }
  return v;
}

std::optional<std::string_view> JsonValue::string() const {
  const detail::ValueRef ref = detail::JsonValueAccess::ref(*this);
  if (!ref.is(detail::ValueRef::Type::kString)) return std::nullopt;
  return ref.string_value();
}

std::optional<std::int64_t> JsonValue::integer() const {
  const detail::ValueRef ref = detail::JsonValueAccess::ref(*this);
  if (!ref.is(detail::ValueRef::Type::kInteger)) return std::nullopt;
  return ref.integer_value();
}

}  // namespace kproxy::model
