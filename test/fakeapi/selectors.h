// Label and field selectors with the syntax and matching rules of
// k8s.io/apimachinery/pkg/labels/selector.go and .../fields/selector.go.
//
//   labels: "a", "!a", "a=b", "a==b", "a!=b", "a in (x,y)", "a notin (x)", "a>1", "a<1";
//           comma = AND. "!=" and "notin" also match objects without the key.
//   fields: "metadata.name=x", "spec.clusterIP!=None", "==" = "="; comma = AND;
//           "\," "\=" "\\" escape those characters in values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kproxy/status.h"

namespace kproxy::fakeapi {

class LabelSelector {
 public:
  enum class Op { kExists, kDoesNotExist, kEquals, kNotEquals, kIn, kNotIn, kGreaterThan, kLessThan };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };

  // The empty string selects everything. Errors read like the apiserver's
  // ("unable to parse requirement: ...", "found '...', expected: ...").
  static Expected<LabelSelector> parse(std::string_view text);

  bool empty() const { return requirements_.empty(); }
  // `labels` is metadata.labels (null or an object of strings).
  bool matches(const nlohmann::json& labels) const;
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  struct Term {
    std::string field;
    bool equals;  // false for "!="
    std::string value;
  };

  static Expected<FieldSelector> parse(std::string_view text);

  bool empty() const { return terms_.empty(); }
  // Matches the object's field values as the apiserver renders them (strings; booleans as
  // "true"/"false"; absent fields as "").
  bool matches(const nlohmann::json& object) const;
  const std::vector<Term>& terms() const { return terms_; }

 private:
  std::vector<Term> terms_;
};

// The string value of a dotted field path ("spec.clusterIP") of an object, as field selectors see it.
std::string field_value(const nlohmann::json& object, std::string_view path);

}  // namespace kproxy::fakeapi
