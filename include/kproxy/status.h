// Status and Expected<T>: how fallible functions report failure inside kproxy.
//
// C++20 has no std::expected (it is C++23), so kproxy carries a small one. Errors are a
// message with context (object, field, value, or syscall and errno); exceptions never
// cross module boundaries (DESIGN.md, "Errors").
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace kproxy {

class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// The result of an operation that returns nothing: ok, or an error message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error.message())), ok_(false) {}  // NOLINT: implicit by design

  static Status ok_status() { return {}; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& message() const { return error_; }

 private:
  std::string error_;
  bool ok_ = true;
};

// A value or an error.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Expected(Error error) : v_(std::move(error)) {}    // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const std::string& error() const {
    assert(!ok());
    return std::get<1>(v_).message();
  }
  Status status() const { return ok() ? Status() : Status(Error(error())); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace kproxy
