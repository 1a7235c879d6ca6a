#pragma once
// Policy descriptor strings: `name[:key=value[,key=value…]]`, list values joined by '+'
// (`static:layers=5+7`, `residual:p=2,r=7,tau=0.95,target=mlp`). The text is recorded in
// reports as the policy's key, so parsing is strict: unknown or repeated keys are errors.
//
// text() is the canonical form: the keys in the order the policy documents them (README,
// `semskip run`; keys a policy does not document last, alphabetically) and every number in
// one notation (integers in decimal, other numbers in shortest round-trip form: `0.950` →
// `0.95`, `1e-1` → `0.1`). `residual:tau=0.95,p=2,r=7` and `residual:p=2,r=7,tau=0.950` are
// the same descriptor, `residual:p=2,r=7,tau=0.95`, and the same row of a report.

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace semskip {

class Descriptor {
 public:
  // semskip::Error naming the descriptor on malformed text.
  static Descriptor parse(const std::string& text);

  const std::string& name() const { return name_; }
  // The canonical text (see above); Descriptor::parse(text()) gives the same descriptor.
  const std::string& text() const { return text_; }
  // The text as given (trimmed).
  const std::string& source() const { return source_; }
  bool has(const std::string& key) const;

  // Typed accessors; a missing key gives the default, a malformed value an error that names
  // the descriptor and the key.
  std::string get_string(const std::string& key, const std::string& def) const;
  // As get_string, but the value must be one of `allowed`.
  std::string get_choice(const std::string& key, const std::string& def,
                         const std::vector<std::string>& allowed) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_double(const std::string& key, double def) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  // Required variants: error naming the key when absent.
  int64_t require_int(const std::string& key) const;
  double require_double(const std::string& key) const;

  // Rejects keys outside `known`, listing the accepted ones.
  void check_keys(const std::set<std::string>& known) const;

 private:
  const std::string* find(const std::string& key) const;
  std::string text_;
  std::string source_;
  std::string name_;
  std::vector<std::pair<std::string, std::string>> params_;
};

}  // namespace semskip
