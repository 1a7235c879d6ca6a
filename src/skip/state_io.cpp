#include "skip/state_io.h"

#include <cstring>

#include "core/error.h"

namespace semskip {

void StateWriter::i64(int64_t v) { raw(&v, sizeof v); }
void StateWriter::f64(double v) { raw(&v, sizeof v); }

void StateWriter::str(const std::string& s) {
  i64(static_cast<int64_t>(s.size()));
  raw(s.data(), s.size());
}

void StateWriter::i64s(const std::vector<int64_t>& v) {
  i64(static_cast<int64_t>(v.size()));
  raw(v.data(), v.size() * sizeof(int64_t));
}

void StateWriter::tensor(const at::Tensor& t) {
  if (!t.defined()) {
    i64(-1);
    return;
  }
  i64(static_cast<int64_t>(t.scalar_type()));
  i64s(t.sizes().vec());
  const at::Tensor c = t.to(at::kCPU).contiguous();
  const int64_t n = c.numel() * static_cast<int64_t>(c.element_size());
  i64(n);
  raw(c.data_ptr(), static_cast<size_t>(n));
}

StateReader::StateReader(std::string bytes, std::string what) : buf_(std::move(bytes)), what_(std::move(what)) {}

void StateReader::raw(void* p, size_t n) {
  SEMSKIP_THROW_IF_NOT_MSG(n <= buf_.size() - pos_, "{}: the saved state ends early (truncated or damaged file)",
                           what_);
  std::memcpy(p, buf_.data() + pos_, n);
  pos_ += n;
}

int64_t StateReader::i64() {
  int64_t v;
  raw(&v, sizeof v);
  return v;
}

double StateReader::f64() {
  double v;
  raw(&v, sizeof v);
  return v;
}

std::string StateReader::str() {
  const int64_t n = i64();
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0 && static_cast<size_t>(n) <= buf_.size() - pos_,
                           "{}: the saved state is damaged (a string of {} bytes)", what_, n);
  std::string s(static_cast<size_t>(n), '\0');
  raw(s.data(), s.size());
  return s;
}

std::vector<int64_t> StateReader::i64s() {
  const int64_t n = i64();
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0 && static_cast<size_t>(n) <= (buf_.size() - pos_) / sizeof(int64_t),
                           "{}: the saved state is damaged (a list of {} numbers)", what_, n);
  std::vector<int64_t> v(static_cast<size_t>(n));
  raw(v.data(), v.size() * sizeof(int64_t));
  return v;
}

void StateReader::expect_tag(const std::string& name) {
  const size_t at = pos_;
  std::string got;
  try {
    got = str();
  } catch (const Error&) {
    SEMSKIP_THROW_MSG("{}: expected the saved state of '{}' at byte {}, the file ends or is damaged there", what_,
                      name, at);
  }
  SEMSKIP_THROW_IF_NOT_MSG(got == name, "{}: expected the saved state of '{}' at byte {}, found '{}' (state of "
                           "another configuration or version)", what_, name, at, got.substr(0, 80));
}

at::Tensor StateReader::tensor() {
  const int64_t type = i64();
  if (type == -1) return at::Tensor();
  SEMSKIP_THROW_IF_NOT_MSG(type >= 0 && type < static_cast<int64_t>(at::ScalarType::NumOptions),
                           "{}: the saved state is damaged (tensor dtype {})", what_, type);
  const std::vector<int64_t> sizes = i64s();
  at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(static_cast<at::ScalarType>(type)));
  const int64_t n = i64();
  SEMSKIP_THROW_IF_NOT_MSG(n == t.numel() * static_cast<int64_t>(t.element_size()),
                           "{}: the saved state is damaged (a tensor of {} bytes for {} elements)", what_, n,
                           t.numel());
  raw(t.data_ptr(), static_cast<size_t>(n));
  return t;
}

}  // namespace semskip
