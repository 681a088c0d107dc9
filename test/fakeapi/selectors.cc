#include "fakeapi/selectors.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace kproxy::fakeapi {
namespace {

using json = nlohmann::json;

// Characters that end an identifier in the label selector lexer (labels/lexer in selector.go).
bool is_special(char c) { return c == '!' || c == '(' || c == ')' || c == ',' || c == '=' || c == '<' || c == '>'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// A label name or value segment: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters
// (validation.IsQualifiedName / IsValidLabelValue).
bool is_name_segment(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!is_alnum(s.front()) || !is_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  if (!is_alnum(s.front()) || !is_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

bool is_qualified_name(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return is_name_segment(s);
  return is_dns_subdomain(s.substr(0, slash)) && is_name_segment(s.substr(slash + 1));
}

bool is_label_value(std::string_view s) { return s.empty() || is_name_segment(s); }

enum class Tok { kEnd, kIdent, kNot, kEq, kDoubleEq, kNotEq, kIn, kNotIn, kOpen, kClose, kComma, kGt, kLt };

struct Token {
  Tok type;
  std::string text;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Token next() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
    if (pos_ >= s_.size()) return {Tok::kEnd, ""};
    char c = s_[pos_];
    auto two = s_.substr(pos_, 2);
    if (two == "!=") { pos_ += 2; return {Tok::kNotEq, "!="}; }
    if (two == "==") { pos_ += 2; return {Tok::kDoubleEq, "=="}; }
    switch (c) {
      case '!': ++pos_; return {Tok::kNot, "!"};
      case '=': ++pos_; return {Tok::kEq, "="};
      case '(': ++pos_; return {Tok::kOpen, "("};
      case ')': ++pos_; return {Tok::kClose, ")"};
      case ',': ++pos_; return {Tok::kComma, ","};
      case '>': ++pos_; return {Tok::kGt, ">"};
      case '<': ++pos_; return {Tok::kLt, "<"};
      default: break;
    }
    std::size_t start = pos_;
    while (pos_ < s_.size() && !is_space(s_[pos_]) && !is_special(s_[pos_])) ++pos_;
    std::string word(s_.substr(start, pos_ - start));
    if (word == "in") return {Tok::kIn, word};
    if (word == "notin") return {Tok::kNotIn, word};
    return {Tok::kIdent, word};
  }

  Token peek() {
    std::size_t saved = pos_;
    Token t = next();
    pos_ = saved;
    return t;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

Error parse_error(const std::string& what) { return Error("unable to parse requirement: " + what); }

bool parse_int64(std::string_view s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Expected<LabelSelector> LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  Lexer lex(text);
  if (lex.peek().type == Tok::kEnd) return sel;
  for (;;) {
    Requirement req;
    Token t = lex.next();
    bool negated = false;
    if (t.type == Tok::kNot) {
      negated = true;
      t = lex.next();
    }
    if (t.type != Tok::kIdent) {
      return Error("found '" + t.text + "', expected: !, identifier, or 'end of string'");
    }
    req.key = t.text;
    if (!is_qualified_name(req.key)) {
      return parse_error("key: Invalid value: \"" + req.key + "\": name part must consist of alphanumeric characters, '-', '_' or '.'");
    }
    Token op = lex.peek();
    if (negated) {
      if (op.type != Tok::kEnd && op.type != Tok::kComma) {
        return Error("found '" + op.text + "', expected: ',' or 'end of string'");
      }
      req.op = Op::kDoesNotExist;
    } else if (op.type == Tok::kEnd || op.type == Tok::kComma) {
      req.op = Op::kExists;
    } else {
      lex.next();
      switch (op.type) {
        case Tok::kEq:
        case Tok::kDoubleEq: req.op = Op::kEquals; break;
        case Tok::kNotEq: req.op = Op::kNotEquals; break;
        case Tok::kIn: req.op = Op::kIn; break;
        case Tok::kNotIn: req.op = Op::kNotIn; break;
        case Tok::kGt: req.op = Op::kGreaterThan; break;
        case Tok::kLt: req.op = Op::kLessThan; break;
        default:
          return Error("found '" + op.text + "', expected: in, notin, =, ==, !=, gt, lt");
      }
      if (req.op == Op::kIn || req.op == Op::kNotIn) {
        if (lex.next().type != Tok::kOpen) return Error("found '" + op.text + "', expected: '('");
        for (;;) {
          Token v = lex.next();
          if (v.type == Tok::kClose && req.values.empty()) break;
          if (v.type == Tok::kIdent) {
            req.values.push_back(v.text);
            v = lex.next();
          } else if (v.type == Tok::kComma || v.type == Tok::kClose) {
            req.values.emplace_back();  // "a in (,x)" holds an empty value, as upstream
          } else {
            return Error("found '" + v.text + "', expected: ',', ')' or identifier");
          }
          if (v.type == Tok::kClose) break;
          if (v.type != Tok::kComma) return Error("found '" + v.text + "', expected: ',' or ')'");
        }
        if (req.values.empty()) {
          return parse_error("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty");
        }
      } else {
        Token v = lex.peek();
        if (v.type == Tok::kIdent) {
          lex.next();
          req.values.push_back(v.text);
        } else if (v.type == Tok::kEnd || v.type == Tok::kComma) {
          req.values.emplace_back();  // "a=" selects the empty value
        } else {
          return Error("found '" + v.text + "', expected: identifier");
        }
        if (req.op == Op::kGreaterThan || req.op == Op::kLessThan) {
          std::int64_t ignored = 0;
          if (!parse_int64(req.values[0], ignored)) {
            return parse_error("values[0]: Invalid value: \"" + req.values[0] + "\": for 'Gt', 'Lt' operators, the value must be an integer");
          }
        }
      }
      if (req.op != Op::kGreaterThan && req.op != Op::kLessThan) {
        for (const auto& v : req.values) {
          if (!is_label_value(v)) {
            return parse_error("values[0][" + req.key + "]: Invalid value: \"" + v + "\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'");
          }
        }
      }
    }
    sel.requirements_.push_back(std::move(req));
    Token sep = lex.next();
    if (sep.type == Tok::kEnd) break;
    if (sep.type != Tok::kComma) return Error("found '" + sep.text + "', expected: ',' or 'end of string'");
  }
  return sel;
}

bool LabelSelector::matches(const json& labels) const {
  for (const auto& r : requirements_) {
    const json* value = nullptr;
    if (labels.is_object()) {
      auto it = labels.find(r.key);
      if (it != labels.end()) value = &*it;
    }
    std::string v = value && value->is_string() ? value->get<std::string>() : "";
    auto in_values = [&] { return std::find(r.values.begin(), r.values.end(), v) != r.values.end(); };
    bool ok = false;
    switch (r.op) {
      case Op::kExists: ok = value != nullptr; break;
      case Op::kDoesNotExist: ok = value == nullptr; break;
      case Op::kEquals:
      case Op::kIn: ok = value != nullptr && in_values(); break;
      case Op::kNotEquals:
      case Op::kNotIn: ok = value == nullptr || !in_values(); break;
      case Op::kGreaterThan:
      case Op::kLessThan: {
        std::int64_t have = 0, want = 0;
        if (value == nullptr || !parse_int64(v, have) || !parse_int64(r.values[0], want)) return false;
        ok = r.op == Op::kGreaterThan ? have > want : have < want;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

Expected<FieldSelector> FieldSelector::parse(std::string_view text) {
  FieldSelector sel;
  // Split on unescaped commas (fields.splitTerms).
  std::vector<std::string> terms;
  std::string cur;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      cur += text[i];
      cur += text[++i];
    } else if (text[i] == ',') {
      terms.push_back(cur);
      cur.clear();
    } else {
      cur += text[i];
    }
  }
  terms.push_back(cur);
  for (const auto& term : terms) {
    if (term.empty()) continue;
    // The first operator found scanning left to right wins; at each position "!=" and "=="
    // are tried before "=" (fields.splitTerm).
    std::size_t pos = std::string::npos, len = 0;
    bool equals = true;
    for (std::size_t i = 0; i < term.size() && pos == std::string::npos; ++i) {
      if (term[i] == '\\') {
        ++i;
        continue;
      }
      if (term.compare(i, 2, "!=") == 0) {
        pos = i, len = 2, equals = false;
      } else if (term.compare(i, 2, "==") == 0) {
        pos = i, len = 2;
      } else if (term[i] == '=') {
        pos = i, len = 1;
      }
    }
    if (pos == std::string::npos) {
      return Error("invalid selector: '" + std::string(text) + "'; can't understand '" + term + "'");
    }
    Term t{term.substr(0, pos), equals, ""};
    std::string raw = term.substr(pos + len);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\') {
        if (i + 1 >= raw.size() || (raw[i + 1] != '\\' && raw[i + 1] != ',' && raw[i + 1] != '=')) {
          return Error("invalid field selector: invalid escape sequence in '" + raw + "'");
        }
        t.value += raw[++i];
      } else {
        t.value += raw[i];
      }
    }
    sel.terms_.push_back(std::move(t));
  }
  return sel;
}

std::string field_value(const json& object, std::string_view path) {
  const json* cur = &object;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto dot = path.find('.', start);
    std::string part(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (!cur->is_object()) return "";
    auto it = cur->find(part);
    if (it == cur->end()) {
      // Typed booleans render as "false" when unset (e.g. Node spec.unschedulable).
      return path == "spec.unschedulable" ? "false" : "";
    }
    cur = &*it;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_boolean()) return cur->get<bool>() ? "true" : "false";
  if (cur->is_number()) return cur->dump();
  return "";
}

bool FieldSelector::matches(const json& object) const {
  for (const auto& t : terms_) {
    bool eq = field_value(object, t.field) == t.value;
    if (eq != t.equals) return false;
  }
  return true;
}

}  // namespace kproxy::fakeapi
