#include "skip/semantic_cache.h"

#include <limits>

#include "core/error.h"
#include "core/strings.h"
#include "index/index_factory.h"
#include "index/vector_index.h"
#include "metrics/flop_counter.h"

namespace semskip {

namespace {
at::ScalarType to_scalar_type(DType d) {
  switch (d) {
    case DType::fp32: return at::kFloat;
    case DType::bf16: return at::kBFloat16;
    case DType::fp16: return at::kHalf;
  }
  SEMSKIP_ASSERT(false);
}
}  // namespace

Eviction parse_eviction(const std::string& s, const std::string& what) {
  if (s == "lru") return Eviction::lru;
  if (s == "lfu") return Eviction::lfu;
  if (s == "fifo") return Eviction::fifo;
  SEMSKIP_THROW_MSG("{}: unknown eviction '{}' (expected lru, lfu or fifo)", what, s);
}

const char* eviction_name(Eviction e) {
  switch (e) {
    case Eviction::lru: return "lru";
    case Eviction::lfu: return "lfu";
    case Eviction::fifo: return "fifo";
  }
  SEMSKIP_ASSERT(false);
}

double parse_admission(const std::string& s, const std::string& what) {
  if (s == "all-misses") return 1.0;
  if (s.rfind("sample:", 0) == 0) {
    double p = parse_double(s.substr(7), what);
    SEMSKIP_THROW_IF_NOT_MSG(p > 0.0 && p <= 1.0, "{}: admission probability {} must be in (0, 1]", what, p);
    return p;
  }
  SEMSKIP_THROW_MSG("{}: unknown admission '{}' (expected all-misses or sample:<p>)", what, s);
}

SemanticCache::SemanticCache(int64_t key_dim, int64_t value_dim, const CacheOptions& opts)
    : key_dim_(key_dim), value_dim_(value_dim), opts_(opts), rng_(opts.seed) {
  SEMSKIP_THROW_IF_NOT_MSG(opts_.capacity >= 1, "cache capacity must be ≥ 1, got {}", opts_.capacity);
  index_ = make_index(opts_.index_descriptor, key_dim_);
  values_ = at::zeros({opts_.capacity, value_dim_},
                      at::TensorOptions().dtype(to_scalar_type(opts_.value_dtype)).device(opts_.device));
  free_slots_.reserve(static_cast<size_t>(opts_.capacity));
  for (int64_t s = opts_.capacity - 1; s >= 0; --s) free_slots_.push_back(s);
  inserted_at_.assign(static_cast<size_t>(opts_.capacity), 0);
  used_at_.assign(static_cast<size_t>(opts_.capacity), 0);
  uses_.assign(static_cast<size_t>(opts_.capacity), 0);
  live_.assign(static_cast<size_t>(opts_.capacity), false);
  stats_.capacity = opts_.capacity;
  stats_.key_dim = key_dim_;
}

SemanticCache::~SemanticCache() = default;

std::string SemanticCache::index_descriptor() const { return index_->describe(); }

SemanticCache::Match SemanticCache::search(const at::Tensor& keys, int64_t k, FlopCounter* flops, int layer) {
  SEMSKIP_ASSERT(keys.dim() == 2 && keys.size(1) == key_dim_);
  const int64_t n = keys.size(0);
  Match m;
  m.similarity = at::full({n, k}, -std::numeric_limits<float>::infinity(), at::kFloat);
  m.slot = at::full({n, k}, -1, at::kLong);
  if (n == 0) return m;
  if (flops) flops->add(layer, OpGroup::lookup, index_->lookup_flops(n));
  if (n_used_ == 0) return m;
  SearchResult found = index_->search(keys, k);
  m.similarity = found.similarities.to(at::kCPU, at::kFloat);
  m.slot = found.ids.to(at::kCPU, at::kLong);
  // Backends report missing neighbours as id −1; make their similarity −inf so a threshold
  // can never accept them.
  m.similarity.masked_fill_(m.slot.lt(0), -std::numeric_limits<float>::infinity());
  return m;
}

void SemanticCache::touch(const at::Tensor& slots) {
  ++clock_;
  at::Tensor s = slots.to(at::kCPU, at::kLong).contiguous();
  const int64_t* p = s.data_ptr<int64_t>();
  for (int64_t i = 0; i < s.numel(); ++i) {
    if (p[i] < 0) continue;
    used_at_[static_cast<size_t>(p[i])] = clock_;
    ++uses_[static_cast<size_t>(p[i])];
  }
}

at::Tensor SemanticCache::values(const at::Tensor& slots, at::Device device) const {
  return values_.index_select(0, slots.to(values_.device(), at::kLong)).to(device);
}

int64_t SemanticCache::pick_victim() const {
  int64_t best = -1;
  for (int64_t s = 0; s < opts_.capacity; ++s) {
    // Entries inserted by the current insert() call are never victims of the same call.
    if (!live_[static_cast<size_t>(s)] || inserted_at_[static_cast<size_t>(s)] == clock_) continue;
    if (best < 0) {
      best = s;
      continue;
    }
    const size_t a = static_cast<size_t>(s), b = static_cast<size_t>(best);
    bool better = false;
    switch (opts_.eviction) {
      case Eviction::lru: better = used_at_[a] < used_at_[b]; break;
      case Eviction::fifo: better = inserted_at_[a] < inserted_at_[b]; break;
      case Eviction::lfu:
        better = uses_[a] < uses_[b] || (uses_[a] == uses_[b] && used_at_[a] < used_at_[b]);
        break;
    }
    if (better) best = s;
  }
  return best;
}

void SemanticCache::insert(const at::Tensor& keys, const at::Tensor& values) {
  SEMSKIP_ASSERT(keys.dim() == 2 && keys.size(1) == key_dim_);
  SEMSKIP_ASSERT(values.dim() == 2 && values.size(1) == value_dim_ && values.size(0) == keys.size(0));
  const int64_t m = keys.size(0);
  if (m == 0) return;
  ++clock_;
  std::vector<int64_t> rows;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int64_t i = 0; i < m; ++i) {
    if (opts_.admit_prob >= 1.0 || u(rng_) < opts_.admit_prob) rows.push_back(i);
    else ++stats_.rejected;
  }
  // A step can bring more misses than the cache holds: only the last `capacity` can stay.
  if (static_cast<int64_t>(rows.size()) > opts_.capacity) {
    stats_.rejected += static_cast<int64_t>(rows.size()) - opts_.capacity;
    rows.erase(rows.begin(), rows.end() - opts_.capacity);
  }
  if (rows.empty()) return;
  std::vector<int64_t> slots, evicted;
  for (size_t i = 0; i < rows.size(); ++i) {
    int64_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
      ++n_used_;
    } else {
      slot = pick_victim();
      SEMSKIP_ASSERT(slot >= 0);
      evicted.push_back(slot);
      ++stats_.evictions;
    }
    // Mark now so the next pick in this batch does not choose the same slot.
    live_[static_cast<size_t>(slot)] = true;
    inserted_at_[static_cast<size_t>(slot)] = clock_;
    used_at_[static_cast<size_t>(slot)] = clock_;
    uses_[static_cast<size_t>(slot)] = 0;
    slots.push_back(slot);
  }
  if (!evicted.empty()) index_->remove(static_cast<int64_t>(evicted.size()), evicted.data());
  at::Tensor row_idx = at::tensor(rows, at::kLong);
  at::Tensor slot_idx = at::tensor(slots, at::kLong);
  at::Tensor k = keys.to(at::kCPU, at::kFloat).index_select(0, row_idx).contiguous();
  index_->add(k.size(0), k.data_ptr<float>(), slots.data());
  values_.index_copy_(0, slot_idx.to(values_.device()),
                      values.index_select(0, row_idx.to(values.device())).to(values_.device(), values_.scalar_type()));
  stats_.insertions += static_cast<int64_t>(slots.size());
  stats_.size = n_used_;
  stats_.value_bytes = n_used_ * value_dim_ * static_cast<int64_t>(values_.element_size());
}

}  // namespace semskip
