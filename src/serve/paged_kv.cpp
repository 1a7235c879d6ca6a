#include "serve/paged_kv.h"

#include <algorithm>

#include "core/error.h"
#include "model/device_memory.h"
#include "model/transformer.h"

namespace semskip::serve {

PagedKvPool::PagedKvPool(const Transformer& model, int64_t num_blocks, int64_t block_size)
    : model_(model), n_slots_(num_blocks * block_size) {
  const ModelConfig& c = model.config();
  check_fits(model, num_blocks, block_size);
  const auto opts = at::TensorOptions().dtype(model.dtype()).device(model.device());
  for (int64_t l = 0; l < model.n_layers(); ++l) {
    k_.push_back(at::zeros({n_slots_, c.n_kv_heads, c.head_dim}, opts));
    v_.push_back(at::zeros({n_slots_, c.n_kv_heads, c.head_dim}, opts));
  }
  visible_.resize(static_cast<size_t>(model.n_layers()));
}

void PagedKvPool::check_fits(const Transformer& model, int64_t num_blocks, int64_t block_size) {
  const ModelConfig& c = model.config();
  // The pool is one sequence of its slots, in double so no product wraps.
  const MemoryBound memory = memory_bound(model.device());
  const double bytes_per_value = double(c10::elementSize(model.dtype()));
  const double need = c.kv_cache_bytes(bytes_per_value, 1, 1) * double(num_blocks) * double(block_size);
  SEMSKIP_THROW_IF_NOT_MSG(need <= memory.bytes,
                           "serve: the KV pool of {} blocks × {} slots needs about {:.1f} GiB ({}: 2 × "
                           "num_hidden_layers {} × num_key_value_heads {} × head_dim {} values of {} bytes per slot), "
                           "more than the {:.1f} GiB of {}; lower --kv-cache-memory or --num-kv-blocks (or "
                           "--max-num-seqs × --max-model-len, which size it by default)",
                           num_blocks, block_size, need / (1024.0 * 1024.0 * 1024.0), c.source, c.n_layers,
                           c.n_kv_heads, c.head_dim, bytes_per_value, memory.bytes / (1024.0 * 1024.0 * 1024.0),
                           memory.name);
}

int64_t PagedKvPool::bytes_per_block(const Transformer& model, int64_t block_size) {
  const ModelConfig& c = model.config();
  return 2 * model.n_layers() * block_size * c.n_kv_heads * c.head_dim *
         static_cast<int64_t>(c10::elementSize(model.dtype()));
}

PagedStep PagedKvPool::layout(const std::vector<PagedRow>& rows, int64_t n_step, int64_t n_past) const {
  PagedStep st;
  st.batch = static_cast<int64_t>(rows.size());
  st.n_step = n_step;
  const bool carried = n_past >= 0;  // the dense cache holds the pasts already
  if (carried) st.n_past = n_past;
  else
    for (const PagedRow& r : rows) st.n_past = std::max<int64_t>(st.n_past, static_cast<int64_t>(r.past.size()));
  const int64_t B = st.batch, P = st.n_past, S = n_step;
  std::vector<int64_t> past_src(carried ? 0 : static_cast<size_t>(B * P), 0);
  std::vector<uint8_t> past_valid(carried ? 0 : static_cast<size_t>(B * P), 0);
  std::vector<int64_t> new_flat, new_dst;
  for (int64_t b = 0; b < B; ++b) {
    const PagedRow& r = rows[static_cast<size_t>(b)];
    const int64_t pb = static_cast<int64_t>(r.past.size()), nb = static_cast<int64_t>(r.next.size());
    SEMSKIP_ASSERT(nb >= 1 && nb <= S);
    for (int64_t j = 0; j < pb && !carried; ++j) {
      const size_t at = static_cast<size_t>(b * P + P - pb + j);
      past_src[at] = r.past[static_cast<size_t>(j)];
      past_valid[at] = 1;
    }
    for (int64_t j = 0; j < nb; ++j) {
      new_flat.push_back(b * S + S - nb + j);
      new_dst.push_back(r.next[static_cast<size_t>(j)]);
    }
  }
  const at::Device dev = model_.device();
  st.new_flat = at::tensor(new_flat, at::kLong).to(dev);
  st.new_dst = at::tensor(new_dst, at::kLong).to(dev);
  if (carried) return st;
  st.past_src = at::tensor(past_src, at::kLong).to(dev);
  st.past_valid = P == 0 ? at::zeros({B, 0}, at::TensorOptions().dtype(at::kBool).device(dev))
                         : at::from_blob(past_valid.data(), {B, P}, at::kBool).to(dev, /*non_blocking=*/false, /*copy=*/true);
  return st;
}

KvCache PagedKvPool::gather(const PagedStep& st) const {
  SEMSKIP_ASSERT(st.past_src.defined());
  const ModelConfig& c = model_.config();
  const int64_t B = st.batch, P = st.n_past, H = c.n_kv_heads, hd = c.head_dim;
  KvCache kv = model_.make_kv_cache(B, P + st.n_step);
  if (P == 0) return kv;
  kv.set_valid(0, P, st.past_valid);
  const at::Tensor all_rows = visible_layers_ > 0 ? at::arange(B * P, st.past_src.options()) : at::Tensor();
  for (int64_t l = 0; l < model_.n_layers(); ++l) {
    const size_t li = static_cast<size_t>(l);
    const at::Tensor k = k_[li].index_select(0, st.past_src);  // [B·P, H, hd]
    const at::Tensor v = v_[li].index_select(0, st.past_src);
    if (!visible_[li].defined()) {
      // The cache's layout [B, H, P, hd].
      kv.append(l, k.view({B, P, H, hd}).permute({0, 2, 1, 3}), v.view({B, P, H, hd}).permute({0, 2, 1, 3}));
      continue;
    }
    // A layer with hidden keys: the same slots, with their visibility at this layer.
    kv.write_rows(l, P, all_rows, k, v);
    kv.advance(l, P, visible_[li].index_select(0, st.past_src).view({B, P}));
  }
  return kv;
}

void PagedKvPool::scatter(const KvCache& dense, const PagedStep& st) {
  const ModelConfig& c = model_.config();
  const int64_t B = st.batch, P = st.n_past, S = st.n_step, H = c.n_kv_heads, hd = c.head_dim;
  for (int64_t l = 0; l < model_.n_layers(); ++l) {
    const size_t li = static_cast<size_t>(l);
    const at::Tensor k = dense.keys(l, P + S).narrow(2, P, S).permute({0, 2, 1, 3}).reshape({B * S, H, hd});
    const at::Tensor v = dense.values(l, P + S).narrow(2, P, S).permute({0, 2, 1, 3}).reshape({B * S, H, hd});
    k_[li].index_copy_(0, st.new_dst, k.index_select(0, st.new_flat));
    v_[li].index_copy_(0, st.new_dst, v.index_select(0, st.new_flat));
    if (dense.has_hidden(l)) {
      if (!visible_[li].defined()) {
        visible_[li] = at::ones({n_slots_}, k_[li].options().dtype(at::kBool));
        ++visible_layers_;
      }
      const at::Tensor vis = dense.key_valid(l, P + S).narrow(1, P, S).reshape({B * S});
      visible_[li].index_copy_(0, st.new_dst, vis.index_select(0, st.new_flat));
    } else if (visible_[li].defined()) {
      visible_[li].index_fill_(0, st.new_dst, true);
    }
  }
}

void PagedKvPool::write_slot(const KvCache& dense, int64_t slot, const at::Tensor& dst) {
  SEMSKIP_ASSERT(slot >= 0 && slot < dense.capacity() && dst.size(0) == dense.batch());
  const int64_t cap = dense.capacity();
  for (int64_t l = 0; l < model_.n_layers(); ++l) {
    const size_t li = static_cast<size_t>(l);
    k_[li].index_copy_(0, dst, dense.keys(l, cap).select(2, slot));  // [B, H, hd]
    v_[li].index_copy_(0, dst, dense.values(l, cap).select(2, slot));
    if (visible_[li].defined()) visible_[li].index_fill_(0, dst, true);
  }
}

}  // namespace semskip::serve
