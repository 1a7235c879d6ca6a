#include "metrics/flop_counter.h"

#include <algorithm>

#include "core/error.h"
#include "metrics/flop_formulas.h"

namespace semskip {

const char* op_group_name(OpGroup g) {
  switch (g) {
    case OpGroup::attn_proj: return "attn_proj";
    case OpGroup::attn_products: return "attn_products";
    case OpGroup::rotary: return "rotary";
    case OpGroup::mlp: return "mlp";
    case OpGroup::router: return "router";
    case OpGroup::experts: return "experts";
    case OpGroup::shared_expert: return "shared_expert";
    case OpGroup::lm_head: return "lm_head";
    case OpGroup::key_proj: return "key_proj";
    case OpGroup::lookup: return "lookup";
    case OpGroup::kv_propagate: return "kv_propagate";
    case OpGroup::insert: return "insert";
    case OpGroup::train: return "train";
    case OpGroup::correction: return "correction";
    case OpGroup::kCount: break;
  }
  SEMSKIP_ASSERT(false);
}

bool is_overhead(OpGroup g) {
  return g == OpGroup::key_proj || g == OpGroup::lookup || g == OpGroup::kv_propagate || g == OpGroup::insert ||
         g == OpGroup::train || g == OpGroup::correction;
}

namespace {
constexpr size_t kAttnProducts = static_cast<size_t>(OpGroup::attn_products);
}  // namespace

void FlopCounter::add(int layer, OpGroup group, int64_t flops) {
  SEMSKIP_ASSERT(group != OpGroup::kCount && flops >= 0 && layer >= kNoLayer);
  auto& row = causal_.try_emplace(layer, Row{}).first->second;
  row[static_cast<size_t>(group)] += flops;
  // Recorded without a pair count, attention products mean the same under both conventions.
  if (group == OpGroup::attn_products) attn_dense_[layer] += flops;
}

void FlopCounter::add_matmul(int layer, OpGroup group, int64_t m, int64_t n, int64_t k) {
  add(layer, group, flops::matmul(m, n, k));
}

void FlopCounter::add_attention(int layer, int64_t n_heads, int64_t head_dim,
                                int64_t pairs_dense, int64_t pairs_causal) {
  SEMSKIP_ASSERT(pairs_causal <= pairs_dense && pairs_causal >= 0 && layer >= kNoLayer);
  auto& row = causal_.try_emplace(layer, Row{}).first->second;
  row[kAttnProducts] += flops::attention_products(n_heads, head_dim, pairs_causal);
  attn_dense_[layer] += flops::attention_products(n_heads, head_dim, pairs_dense);
}

int64_t FlopCounter::by_layer(int layer, AttnConvention conv) const {
  int64_t sum = 0;
  auto it = causal_.find(layer);
  if (it != causal_.end()) {
    for (size_t g = 0; g < it->second.size(); ++g) {
      if (g == kAttnProducts && conv == AttnConvention::dense) continue;
      sum += it->second[g];
    }
  }
  if (conv == AttnConvention::dense) {
    auto d = attn_dense_.find(layer);
    if (d != attn_dense_.end()) sum += d->second;
  }
  return sum;
}

int64_t FlopCounter::by_layer_overhead(int layer) const {
  int64_t sum = 0;
  auto it = causal_.find(layer);
  if (it == causal_.end()) return 0;
  for (size_t g = 0; g < it->second.size(); ++g)
    if (is_overhead(static_cast<OpGroup>(g))) sum += it->second[g];
  return sum;
}

int64_t FlopCounter::by_layer_model(int layer, AttnConvention conv) const {
  return by_layer(layer, conv) - by_layer_overhead(layer);
}

int64_t FlopCounter::by_group(OpGroup g, AttnConvention conv) const {
  SEMSKIP_ASSERT(g != OpGroup::kCount);
  int64_t sum = 0;
  if (g == OpGroup::attn_products && conv == AttnConvention::dense) {
    for (const auto& [layer, v] : attn_dense_) sum += v;
    return sum;
  }
  for (const auto& [layer, row] : causal_) sum += row[static_cast<size_t>(g)];
  return sum;
}

int64_t FlopCounter::total_overhead() const {
  int64_t sum = 0;
  for (size_t g = 0; g < static_cast<size_t>(OpGroup::kCount); ++g) {
    if (is_overhead(static_cast<OpGroup>(g))) sum += by_group(static_cast<OpGroup>(g));
  }
  return sum;
}

int64_t FlopCounter::total_model(AttnConvention conv) const {
  int64_t sum = 0;
  for (size_t g = 0; g < static_cast<size_t>(OpGroup::kCount); ++g) {
    if (!is_overhead(static_cast<OpGroup>(g))) sum += by_group(static_cast<OpGroup>(g), conv);
  }
  return sum;
}

int64_t FlopCounter::total(AttnConvention conv) const { return total_model(conv) + total_overhead(); }

int FlopCounter::n_layers_seen() const {
  int n = 0;
  for (const auto& [layer, row] : causal_) n = std::max(n, layer + 1);
  for (const auto& [layer, v] : attn_dense_) n = std::max(n, layer + 1);
  return n;
}

void FlopCounter::merge(const FlopCounter& other) {
  for (const auto& [layer, row] : other.causal_) {
    auto& mine = causal_.try_emplace(layer, Row{}).first->second;
    for (size_t g = 0; g < row.size(); ++g) mine[g] += row[g];
  }
  for (const auto& [layer, v] : other.attn_dense_) attn_dense_[layer] += v;
}

void FlopCounter::reset() {
  causal_.clear();
  attn_dense_.clear();
}

// Layout: the number of causal rows, each as its layer and kCount group counts, then the
// number of dense attention entries, each as its layer and count.
std::vector<int64_t> FlopCounter::to_flat() const {
  std::vector<int64_t> out{static_cast<int64_t>(causal_.size())};
  for (const auto& [layer, row] : causal_) {
    out.push_back(layer);
    out.insert(out.end(), row.begin(), row.end());
  }
  out.push_back(static_cast<int64_t>(attn_dense_.size()));
  for (const auto& [layer, v] : attn_dense_) {
    out.push_back(layer);
    out.push_back(v);
  }
  return out;
}

FlopCounter FlopCounter::from_flat(const std::vector<int64_t>& flat) {
  FlopCounter c;
  const size_t width = std::tuple_size<Row>::value;
  size_t i = 0;
  auto next = [&]() {
    SEMSKIP_THROW_IF_NOT_MSG(i < flat.size(), "FLOP counts: the saved list ends early ({} numbers)", flat.size());
    return flat[i++];
  };
  const int64_t n_rows = next();
  for (int64_t r = 0; r < n_rows; ++r) {
    const int layer = static_cast<int>(next());
    Row row{};
    for (size_t g = 0; g < width; ++g) row[g] = next();
    c.causal_[layer] = row;
  }
  const int64_t n_dense = next();
  for (int64_t r = 0; r < n_dense; ++r) {
    const int layer = static_cast<int>(next());
    c.attn_dense_[layer] = next();
  }
  SEMSKIP_THROW_IF_NOT_MSG(i == flat.size(), "FLOP counts: {} numbers left over in the saved list", flat.size() - i);
  return c;
}

}  // namespace semskip
