#pragma once
// The byte format of a run's resumable state (`semskip run --resume`): policies, caches and
// evaluator results write their state into a StateWriter at a step boundary and read it back
// from a StateReader into freshly built objects of the same configuration. Values are written
// in order with no schema; each part starts with a tag, so state of another kind or version is
// refused naming the part instead of being misread. Tensors keep dtype and shape exactly (a
// contiguous CPU copy of their bytes), so restored state is bit-identical.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

class StateWriter {
 public:
  void tag(const std::string& name) { str(name); }
  void i64(int64_t v);
  void f64(double v);
  void str(const std::string& s);
  void i64s(const std::vector<int64_t>& v);
  // Any dtype and device; an undefined tensor is written as such.
  void tensor(const at::Tensor& t);
  const std::string& bytes() const { return buf_; }

 private:
  void raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  std::string buf_;
};

class StateReader {
 public:
  // `what` names the source (a file) in messages.
  StateReader(std::string bytes, std::string what);
  // semskip::Error naming `what` unless the next value is the tag `name`.
  void expect_tag(const std::string& name);
  int64_t i64();
  double f64();
  std::string str();
  std::vector<int64_t> i64s();
  at::Tensor tensor();  // on the CPU
  bool at_end() const { return pos_ == buf_.size(); }
  const std::string& what() const { return what_; }

 private:
  void raw(void* p, size_t n);
  std::string buf_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace semskip
