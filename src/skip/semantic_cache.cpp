#include "skip/semantic_cache.h"

#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/strings.h"
#include "index/index_factory.h"
#include "index/vector_index.h"
#include "metrics/flop_counter.h"
#include "skip/state_io.h"

namespace semskip {

namespace {
// One row reduction per tensor on its device and one host read of M flags per insert.
void check_finite_entries(const at::Tensor& keys, const at::Tensor& values) {
  auto finite_rows = [](const at::Tensor& t) {
    return at::isFloatingType(t.scalar_type()) ? at::isfinite(t).all(1)
                                               : at::ones({t.size(0)}, t.options().dtype(at::kBool));
  };
  const at::Tensor ok_keys = finite_rows(keys);
  const at::Tensor ok = ok_keys.logical_and(finite_rows(values).to(ok_keys.device())).cpu();
  if (ok.all().item<bool>()) return;
  const at::Tensor bad = ok.logical_not().nonzero().flatten();
  SEMSKIP_THROW_MSG("semantic cache: {} of {} entries about to be inserted hold non-finite keys or values (NaN or "
                    "inf), first entry {}; the run stops rather than serve them as cache hits",
                    bad.numel(), ok.numel(), bad[0].item<int64_t>());
}

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
  check_finite_entries(keys, values);
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
  if (!evicted.empty()) {
    index_->remove(static_cast<int64_t>(evicted.size()), evicted.data());
    index_log_.push_back({evicted, at::Tensor()});
  }
  at::Tensor row_idx = at::tensor(rows, at::kLong);
  at::Tensor slot_idx = at::tensor(slots, at::kLong);
  at::Tensor k = keys.to(at::kCPU, at::kFloat).index_select(0, row_idx).contiguous();
  index_->add(k.size(0), k.data_ptr<float>(), slots.data());
  index_log_.push_back({slots, k});
  values_.index_copy_(0, slot_idx.to(values_.device()),
                      values.index_select(0, row_idx.to(values.device())).to(values_.device(), values_.scalar_type()));
  stats_.insertions += static_cast<int64_t>(slots.size());
  stats_.size = n_used_;
  stats_.value_bytes = n_used_ * value_dim_ * static_cast<int64_t>(values_.element_size());
}

namespace {

std::vector<int64_t> bools_to_i64(const std::vector<bool>& v) { return std::vector<int64_t>(v.begin(), v.end()); }

void write_stats(StateWriter& w, const CacheStats& s) {
  w.i64s({s.lookups, s.hits, s.insertions, s.evictions, s.rejected, s.vetoed, s.size, s.capacity, s.key_dim,
          s.value_bytes});
}

CacheStats read_stats(StateReader& r) {
  const std::vector<int64_t> v = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(v.size() == 10, "{}: cache counters: expected 10 numbers, found {}", r.what(), v.size());
  CacheStats s;
  s.lookups = v[0], s.hits = v[1], s.insertions = v[2], s.evictions = v[3], s.rejected = v[4], s.vetoed = v[5];
  s.size = v[6], s.capacity = v[7], s.key_dim = v[8], s.value_bytes = v[9];
  return s;
}

}  // namespace

void SemanticCache::save_state(StateWriter& w) const {
  w.tag("semantic_cache");
  w.str(index_->describe());
  w.i64s({key_dim_, value_dim_, opts_.capacity, n_used_, clock_});
  w.i64s(free_slots_);
  w.i64s(inserted_at_);
  w.i64s(used_at_);
  w.i64s(uses_);
  w.i64s(bools_to_i64(live_));
  std::ostringstream rng;
  rng << rng_;
  w.str(rng.str());
  write_stats(w, stats_);
  std::vector<int64_t> live_slots;
  for (int64_t s = 0; s < opts_.capacity; ++s)
    if (live_[static_cast<size_t>(s)]) live_slots.push_back(s);
  w.i64s(live_slots);
  w.tensor(live_slots.empty() ? at::Tensor() : values(at::tensor(live_slots, at::kLong), at::kCPU));
  w.i64(static_cast<int64_t>(index_log_.size()));
  for (const IndexOp& op : index_log_) {
    w.i64s(op.ids);
    w.tensor(op.keys);
  }
}

void SemanticCache::load_state(StateReader& r) {
  r.expect_tag("semantic_cache");
  const std::string desc = r.str();
  SEMSKIP_THROW_IF_NOT_MSG(desc == index_->describe(), "{}: the saved cache searched index '{}', this run's '{}'",
                           r.what(), desc, index_->describe());
  const std::vector<int64_t> dims = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(dims.size() == 5 && dims[0] == key_dim_ && dims[1] == value_dim_ &&
                               dims[2] == opts_.capacity,
                           "{}: the saved cache has other dimensions or capacity than this run's ({}, {}, {})",
                           r.what(), key_dim_, value_dim_, opts_.capacity);
  const size_t cap = static_cast<size_t>(opts_.capacity);
  std::vector<int64_t> free_slots = r.i64s(), inserted = r.i64s(), used = r.i64s(), uses = r.i64s(),
                       live = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(free_slots.size() <= cap && inserted.size() == cap && used.size() == cap &&
                               uses.size() == cap && live.size() == cap,
                           "{}: the saved cache's slot tables do not match its capacity {}", r.what(), cap);
  std::istringstream rng(r.str());
  std::mt19937_64 restored_rng;
  rng >> restored_rng;
  SEMSKIP_THROW_IF_NOT_MSG(!rng.fail(), "{}: the saved cache's admission stream is damaged", r.what());
  const CacheStats stats = read_stats(r);
  const std::vector<int64_t> live_slots = r.i64s();
  const at::Tensor live_values = r.tensor();
  SEMSKIP_THROW_IF_NOT_MSG(live_slots.empty() || (live_values.defined() && live_values.dim() == 2 &&
                                                  live_values.size(0) == static_cast<int64_t>(live_slots.size()) &&
                                                  live_values.size(1) == value_dim_ &&
                                                  live_values.scalar_type() == values_.scalar_type()),
                           "{}: the saved cache's values do not match its entries", r.what());
  std::unique_ptr<VectorIndex> index = make_index(opts_.index_descriptor, key_dim_);
  std::vector<IndexOp> log(static_cast<size_t>(r.i64()));
  for (IndexOp& op : log) {
    op.ids = r.i64s();
    op.keys = r.tensor();
    const int64_t n = static_cast<int64_t>(op.ids.size());
    if (op.keys.defined()) {
      SEMSKIP_THROW_IF_NOT_MSG(op.keys.dim() == 2 && op.keys.size(0) == n && op.keys.size(1) == key_dim_ &&
                                   op.keys.scalar_type() == at::kFloat,
                               "{}: the saved index log is damaged", r.what());
      index->add(n, op.keys.data_ptr<float>(), op.ids.data());
    } else {
      index->remove(n, op.ids.data());
    }
  }
  SEMSKIP_THROW_IF_NOT_MSG(index->size() == dims[3], "{}: the saved index log rebuilds {} entries, the cache held {}",
                           r.what(), index->size(), dims[3]);
  // Everything read and checked: only now does this cache change.
  index_ = std::move(index);
  index_log_ = std::move(log);
  n_used_ = dims[3];
  clock_ = dims[4];
  free_slots_ = std::move(free_slots);
  inserted_at_ = std::move(inserted);
  used_at_ = std::move(used);
  uses_ = std::move(uses);
  for (size_t s = 0; s < cap; ++s) live_[s] = live[s] != 0;
  rng_ = restored_rng;
  stats_ = stats;
  values_.zero_();
  if (!live_slots.empty())
    values_.index_copy_(0, at::tensor(live_slots, at::kLong).to(values_.device()), live_values.to(values_.device()));
}

}  // namespace semskip
