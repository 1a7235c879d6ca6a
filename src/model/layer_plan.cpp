#include "model/layer_plan.h"

#include <algorithm>

#include "core/error.h"

namespace semskip {

const char* row_exec_name(RowExec m) {
  switch (m) {
    case RowExec::gather: return "gather";
    case RowExec::bucket: return "bucket";
    case RowExec::mask: return "mask";
  }
  SEMSKIP_ASSERT(false);
  return "";
}

RowExec parse_row_exec(const std::string& text, const std::string& what) {
  if (text == "gather") return RowExec::gather;
  if (text == "bucket") return RowExec::bucket;
  if (text == "mask") return RowExec::mask;
  SEMSKIP_THROW_MSG("{}: unknown row execution '{}' (expected gather, bucket or mask)", what, text);
}

namespace {

template <class Count>
RunFirstOrder run_first(const at::Tensor& mask, const at::Tensor& cs, const Count& n_run) {
  const at::Tensor i = at::arange(mask.size(-1), cs.options()).expand(cs.sizes());
  RunFirstOrder r;
  r.pos = at::where(mask, cs - 1, i - cs + n_run);
  r.order = at::empty(cs.sizes(), cs.options()).scatter_(-1, r.pos, i);
  return r;
}

}  // namespace

RunFirstOrder run_first_order(const at::Tensor& mask, const at::Tensor& cs, const at::Tensor& n_run) {
  return run_first(mask, cs, n_run);
}

RunFirstOrder run_first_order(const at::Tensor& mask, const at::Tensor& cs, int64_t n_run) {
  return run_first(mask, cs, n_run);
}

int64_t row_bucket(int64_t n, int64_t n_rows) {
  SEMSKIP_ASSERT(n >= 0 && n <= n_rows);
  if (n == 0) return 0;
  int64_t b = 1;
  if (n <= kRowBucketStep) {
    while (b < n) b *= 2;
  } else {
    b = (n + kRowBucketStep - 1) / kRowBucketStep * kRowBucketStep;
  }
  return std::min(b, n_rows);
}

std::vector<int64_t> row_buckets(int64_t n_rows) {
  std::vector<int64_t> out;
  for (int64_t n = 1; n <= n_rows;) {
    const int64_t b = row_bucket(n, n_rows);
    out.push_back(b);
    n = b + 1;
  }
  return out;
}

}  // namespace semskip
