#include "model/decoder_layer.h"

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>

#include "core/error.h"

namespace semskip {

namespace {

// a ∧ ¬b over bool tensors where undefined means "all" for a and "none" for b.
at::Tensor and_not(const at::Tensor& a, const at::Tensor& b, int64_t n, const at::TensorOptions& bool_opts) {
  if (!b.defined()) return a.defined() ? a : at::ones({n}, bool_opts);
  const at::Tensor not_b = b.logical_not();
  return a.defined() ? a.logical_and(not_b) : not_b;
}

at::Tensor rows_of(const at::Tensor& mask) { return mask.nonzero().squeeze(1); }  // int64 [n]

// gather: the rows `rows` int64 [n] of N, or all of them (rows undefined or n = N, which
// nonzero lists in order).
RowSet gather_set(const at::Tensor& rows, int64_t N) {
  RowSet s;
  s.n = rows.defined() ? rows.size(0) : N;
  if (s.n != N || N == 0) s.rows = rows;
  return s;
}

// bucket: the n rows of mask bool [N] (cs: its inclusive cumsum, on the device) padded to
// row_bucket(n, N) with the first rows not in it; order and padding stay on the device.
RowSet bucket_set(const at::Tensor& mask, const at::Tensor& cs, int64_t n, int64_t N) {
  RowSet s;
  s.n = row_bucket(n, N);
  const auto long_opts = cs.options();
  if (s.n == 0) {
    s.rows = at::empty({0}, long_opts);
    return s;
  }
  if (s.n == N) {  // every row, in order: nothing to gather
    if (n < N) s.keep = mask;
    return s;
  }
  const at::Tensor n_dev = cs.narrow(0, N - 1, 1);  // int64 [1]
  const RunFirstOrder o = run_first_order(mask, cs, n_dev);
  s.rows = o.order.narrow(0, 0, s.n);
  s.keep = at::arange(s.n, long_opts) < n_dev;
  s.member = o.pos < s.n;
  return s;
}

// gather with the count n known on the host: the rows of mask bool [N] and of its complement,
// each in order, from one ordering (the n rows of the mask first, then the others, as
// bucket_set orders them, without padding); `order` int64 [N] when the planner made it, else
// computed here on the device. Nothing is read back.
std::pair<RowSet, RowSet> exact_split(const at::Tensor& mask, int64_t n, int64_t N, at::Tensor order = {}) {
  SEMSKIP_ASSERT(n >= 0 && n <= N);
  RowSet in, out;
  in.n = n;
  out.n = N - n;
  const auto long_opts = mask.options().dtype(at::kLong);
  if (n == N || n == 0) {
    (n == N ? out : in).rows = at::empty({0}, long_opts);  // the other one: every row, in order
    return {in, out};
  }
  if (!order.defined()) order = run_first_order(mask, mask.to(at::kLong).cumsum(0), n).order;
  in.rows = order.narrow(0, 0, n);
  out.rows = order.narrow(0, n, N - n);
  return {in, out};
}

// The first set of exact_split: the rows of the mask alone.
RowSet exact_set(const at::Tensor& mask, int64_t n, int64_t N) { return exact_split(mask, n, N).first; }

// x [N, d] -> the executed rows [n, d].
at::Tensor gather_rows(const at::Tensor& x, const RowSet& s) { return s.rows.defined() ? x.index_select(0, s.rows) : x; }

// base [N, d] plus the kept rows of y [n, d] at their rows (dropped rows add nothing).
// base_rows [n, d]: base at the set's rows, gathered before; the sums are written back with
// index_copy (a set's rows are distinct, so no atomics: index_add's bf16 atomic adds were the
// slowest kernel of a planned layer on the GPU), the same values as index_add.
at::Tensor scatter_add(const at::Tensor& base, const RowSet& s, const at::Tensor& y, const at::Tensor& base_rows) {
  if (!s.rows.defined()) {
    const at::Tensor kept = s.keep.defined() ? at::where(s.keep.unsqueeze(1), y, at::zeros({}, y.options())) : y;
    return base + kept;
  }
  const at::Tensor sum = base_rows + y;
  return base.index_copy(0, s.rows, s.keep.defined() ? at::where(s.keep.unsqueeze(1), sum, base_rows) : sum);
}

// The kept rows of y [n, d] at their rows of a zero [N, d].
at::Tensor scatter_rows(int64_t N, const RowSet& s, const at::Tensor& y) {
  const at::Tensor kept = s.keep.defined() ? at::where(s.keep.unsqueeze(1), y, at::zeros({}, y.options())) : y;
  return s.rows.defined() ? at::zeros({N, y.size(1)}, y.options()).index_copy_(0, s.rows, kept) : kept;
}

// The flat row indices of a set, int64 [n] (like: a tensor on the device of the batch).
at::Tensor row_index(const RowSet& s, int64_t N, const at::Tensor& like) {
  return s.rows.defined() ? s.rows : at::arange(N, like.options().dtype(at::kLong));
}

// The cos / signed sin of a set's rows of a [B, T] table, as a [1, n] table (the plain sin,
// which applying RoPE does not read, is left out).
RopeTable rope_of(const RopeTable& t, const RowSet& s) {
  const auto pick = [&](const at::Tensor& x) {
    const at::Tensor flat = x.reshape({-1, x.size(-1)});
    return (s.rows.defined() ? flat.index_select(0, s.rows) : flat).unsqueeze(0);
  };
  return RopeTable{pick(t.cos), at::Tensor(), pick(t.sin_signed)};
}

void charge_pairs(const AttentionMask& mask, const Attention& attn, int layer, const LayerContext& ctx) {
  if (!mask.pairs_pending.defined()) return;
  SEMSKIP_ASSERT(ctx.pending_pairs != nullptr);
  ctx.pending_pairs->push_back(PendingPairs{layer, attn.n_heads, attn.head_dim, mask.pairs_dense, mask.pairs_pending});
}

}  // namespace

AttentionMask DecoderLayer::layer_mask(int64_t batch, int64_t n_tokens, const LayerContext& ctx,
                                       const at::Tensor& counted, int64_t n_counted) const {
  const int64_t start = ctx.first_slot, n_keys = start + n_tokens;
  const at::Tensor key_valid = ctx.kv_cache->key_valid(index, n_keys);
  const at::Tensor q_slots = at::arange(start, n_keys, key_valid.options().dtype(at::kLong));
  return AttentionMask::from_slots(q_slots, key_valid, batch, n_keys, attention.q_proj.weight.scalar_type(),
                                   /*count_pairs=*/ctx.flops != nullptr, counted, n_counted,
                                   /*defer_pairs=*/ctx.pending_pairs != nullptr);
}

at::Tensor DecoderLayer::attention_block(const at::Tensor& resid, const LayerContext& ctx) const {
  const int layer = static_cast<int>(index);
  Qkv qkv = attention.project_qkv(input_norm.forward(resid), ctx.rope, ctx.flops, layer);
  if (ctx.fixed_slot.defined()) {
    KvCache& cache = *ctx.kv_cache;
    cache.write_slot(index, ctx.fixed_slot, qkv.k, qkv.v);
    const int64_t cap = cache.capacity();
    const at::Tensor o = attention.attend(qkv.q, cache.keys(index, cap), cache.values(index, cap), ctx.mask);
    return attention.project_out(o);
  }
  if (ctx.kv_cache) std::tie(qkv.k, qkv.v) = ctx.kv_cache->append(index, qkv.k, qkv.v);
  // Keys hidden at this layer by an earlier planned forward: the layer needs its own mask.
  if (ctx.kv_cache && ctx.kv_cache->has_hidden(index)) {
    const AttentionMask mask = layer_mask(resid.size(0), resid.size(1), ctx, {}, -1);
    charge_pairs(mask, attention, layer, ctx);
    return attention.project_out(attention.attend(qkv.q, qkv.k, qkv.v, mask, ctx.flops, layer), ctx.flops, layer);
  }
  const at::Tensor o = attention.attend(qkv.q, qkv.k, qkv.v, ctx.mask, ctx.flops, layer);
  return attention.project_out(o, ctx.flops, layer);
}

at::Tensor DecoderLayer::mlp_block(const at::Tensor& resid_mid, const LayerContext& ctx, bool with_shared) const {
  const int layer = static_cast<int>(index);
  const at::Tensor x = post_attention_norm.forward(resid_mid);
  if (mlp) return mlp->forward(x, ctx.flops, layer, OpGroup::mlp);
  SEMSKIP_ASSERT(moe.has_value());
  const int64_t batch = x.size(0), n_tokens = x.size(1), d = x.size(2);
  const at::Tensor flat = x.reshape({batch * n_tokens, d});
  if (ctx.fixed_slot.defined()) {
    SEMSKIP_ASSERT(with_shared);
    return moe->forward_fixed(flat, moe->route(flat)).view({batch, n_tokens, d});
  }
  // A rank without rows still joins an expert-parallel layer's all-to-alls; it routes nothing.
  const Routing routing = flat.size(0) > 0 ? moe->route(flat, ctx.flops, layer) : Routing{};
  if (ctx.hooks && !ctx.hooks->empty() && flat.size(0) > 0) {
    apply_hook(ctx.hooks, index, HookPoint::router_logits, routing.router_logits.view({batch, n_tokens, -1}));
    apply_hook(ctx.hooks, index, HookPoint::expert_indices, routing.topk_ids.view({batch, n_tokens, -1}));
    apply_hook(ctx.hooks, index, HookPoint::expert_weights, routing.topk_weights.view({batch, n_tokens, -1}));
  }
  at::Tensor y = ctx.moe_executor ? ctx.moe_executor->routed_term(*moe, flat, routing, ctx.flops, layer)
                                  : moe->routed_term(flat, routing, ctx.flops, layer);
  if (with_shared && moe->shared && flat.size(0) > 0) y = y + moe->shared_expert(flat, ctx.flops, layer);
  return y.view({batch, n_tokens, d});
}

at::Tensor DecoderLayer::shared_block(const at::Tensor& resid_mid, const LayerContext& ctx) const {
  SEMSKIP_ASSERT(moe.has_value() && moe->shared.has_value());
  return moe->shared_expert(post_attention_norm.forward(resid_mid), ctx.flops, static_cast<int>(index));
}

at::Tensor DecoderLayer::forward(const at::Tensor& resid, const LayerContext& ctx) const {
  const HookSet* hooks = ctx.hooks && !ctx.hooks->empty() ? ctx.hooks : nullptr;
  const at::Tensor resid_pre = apply_hook(hooks, index, HookPoint::resid_pre, resid);
  const at::Tensor attn_out = apply_hook(hooks, index, HookPoint::attn_out, attention_block(resid_pre, ctx));
  const at::Tensor resid_mid = apply_hook(hooks, index, HookPoint::resid_mid, resid_pre + attn_out);
  const at::Tensor mlp_out = apply_hook(hooks, index, HookPoint::mlp_out, mlp_block(resid_mid, ctx));
  return apply_hook(hooks, index, HookPoint::resid_post, resid_mid + mlp_out);
}

AttentionMask DecoderLayer::mixed_mask(int64_t batch, int64_t n_tokens, const LayerContext& ctx, const at::Tensor& kept,
                                       const at::Tensor& counted, int64_t n_counted) const {
  const int64_t start = ctx.first_slot, n_keys = start + n_tokens;
  const at::Tensor layer_kv = ctx.kv_cache->key_valid(index, n_keys);  // bool [B, Tk]
  const at::Tensor full_kv = ctx.kv_cache->key_valid(n_keys);          // bool [B, Tk]
  const auto long_opts = layer_kv.options().dtype(at::kLong);
  const at::Tensor slots = at::arange(start, n_keys, long_opts).unsqueeze(-1);  // [T, 1]
  const at::Tensor keys = at::arange(n_keys, long_opts);                       // [Tk]
  const at::Tensor key_ok = at::where(kept.unsqueeze(-1), layer_kv.unsqueeze(1), full_kv.unsqueeze(1));  // [B, T, Tk]
  const at::Tensor allowed = (keys <= slots).unsqueeze(0).logical_and(key_ok).logical_or((keys == slots).unsqueeze(0));
  AttentionMask m;
  m.kind = AttentionMask::Kind::explicit_;
  m.n_queries = n_tokens;
  m.n_keys = n_keys;
  m.pairs_dense = (counted.defined() ? n_counted : batch * n_tokens) * n_keys;
  if (ctx.flops) {
    const at::Tensor pairs = counted.defined() ? allowed.logical_and(counted.unsqueeze(-1)).sum() : allowed.sum();
    if (ctx.pending_pairs) m.pairs_pending = pairs;
    else m.pairs_causal = pairs.item<int64_t>();
  }
  const auto opts = long_opts.dtype(attention.q_proj.weight.scalar_type());
  m.additive = at::where(allowed, at::zeros({}, opts), at::full({}, -std::numeric_limits<double>::infinity(), opts))
                   .unsqueeze(1);  // [B, 1, T, Tk]
  return m;
}

at::Tensor DecoderLayer::attention_rows(const at::Tensor& h_flat, const at::Tensor& h_run, const RowSet& run, const RowSet& prop,
                                        const at::Tensor& kv_src, const at::Tensor& visible, int64_t batch,
                                        int64_t n_tokens, const LayerContext& ctx, bool shared_ok,
                                        const at::Tensor& kept) const {
  const int layer = static_cast<int>(index);
  KvCache& kv = *ctx.kv_cache;
  const Attention& a = attention;
  const int64_t n = run.n, m = prop.n, N = batch * n_tokens;
  const auto write_propagated = [&] {
    if (m == 0) return;
    // Keys and values only, from the rows' own (substituted) state, or from kv_src uncharged.
    FlopCounter* f = kv_src.defined() ? nullptr : ctx.flops;
    const at::Tensor x = input_norm.forward(gather_rows(kv_src.defined() ? kv_src : h_flat, prop)).unsqueeze(0);  // [1, m, d]
    const at::Tensor k = a.k_proj.forward(x, f, layer, OpGroup::kv_propagate).view({1, m, a.n_kv_heads, a.head_dim});
    const at::Tensor v = a.v_proj.forward(x, f, layer, OpGroup::kv_propagate).view({m, a.n_kv_heads, a.head_dim});
    kv.write_rows(index, n_tokens, row_index(prop, N, h_flat), Rotary::apply_tokens_first(k, rope_of(ctx.rope, prop))[0], v);
  };
  if (!kv_src.defined()) write_propagated();
  at::Tensor q;  // [n, n_heads, head_dim]
  if (n > 0) {
    const at::Tensor x = input_norm.forward(h_run).unsqueeze(0);  // [1, n, d]
    const Qkv qkv = a.project_qkv(x, rope_of(ctx.rope, run), ctx.flops, layer);
    kv.write_rows(index, n_tokens, row_index(run, N, h_flat), qkv.k[0].transpose(0, 1), qkv.v[0].transpose(0, 1));
    q = qkv.q[0].transpose(0, 1);
  }
  if (kv_src.defined()) write_propagated();
  kv.advance(index, n_tokens, visible);
  if (n == 0) return {};
  // Every sequence's queries in one call: scattered into their [B, T] places, the rows that
  // do not run computed (they see their own slot, so stay finite) and dropped.
  at::Tensor q_dense = q.contiguous();
  if (run.rows.defined()) {
    q_dense = at::zeros({N, a.n_heads, a.head_dim}, q.options());
    q_dense.index_copy_(0, run.rows, q);
  }
  const at::Tensor q4 = q_dense.view({batch, n_tokens, a.n_heads, a.head_dim}).transpose(1, 2);
  const at::Tensor counted = run.member.defined() ? run.member.view({batch, n_tokens}) : at::Tensor();
  const int64_t n_counted = run.member.defined() ? n : -1;
  AttentionMask mask;
  // Every key of the layer valid and visible (no padding, none hidden): the plain causal
  // mask, so the fused causal kernels run; only its pair count follows the executed rows.
  const bool all_keys = !kv.has_padding() && !kv.has_hidden(index) && !visible.defined();
  if (all_keys) {
    mask = AttentionMask::causal_counted(batch, n_tokens, ctx.first_slot + n_tokens, counted, n_counted,
                                         /*count_pairs=*/ctx.flops != nullptr,
                                         /*defer_pairs=*/ctx.pending_pairs != nullptr);
  } else if (kept.defined() && kv.has_hidden(index)) {
    mask = mixed_mask(batch, n_tokens, ctx, kept.view({batch, n_tokens}), counted, n_counted);
  } else {
    // A layer whose keys are all the valid ones shares the padding mask of the forward's other
    // such layers (same queries, same keys); hidden keys or skipped queries need their own.
    const bool shared = shared_ok && !visible.defined() && m == 0 && !kv.has_hidden(index);
    if (shared && !ctx.valid_mask) ctx.valid_mask = layer_mask(batch, n_tokens, ctx, counted, n_counted);
    mask = shared ? *ctx.valid_mask : layer_mask(batch, n_tokens, ctx, counted, n_counted);
  }
  charge_pairs(mask, a, layer, ctx);
  const int64_t n_keys = mask.n_keys;
  const at::Tensor o = a.attend(q4, kv.keys(index, n_keys), kv.values(index, n_keys), mask, ctx.flops, layer);
  return a.project_out(gather_rows(o.reshape({N, -1}), run), ctx.flops, layer);  // [n, d]
}

at::Tensor DecoderLayer::forward_planned(const at::Tensor& resid, const LayerContext& ctx, const LayerPlan& plan,
                                         ExecutionPlan* callbacks) const {
  SEMSKIP_ASSERT(ctx.kv_cache != nullptr);
  const HookSet* hooks = ctx.hooks && !ctx.hooks->empty() ? ctx.hooks : nullptr;
  const at::Tensor h = apply_hook(hooks, index, HookPoint::resid_pre, plan.jump.defined() ? resid + plan.jump : resid);
  const int64_t batch = h.size(0), n_tokens = h.size(1), d = h.size(2), N = batch * n_tokens;
  const auto bool_opts = h.options().dtype(at::kBool);
  const bool want_out = plan.want_mlp_out && callbacks;
  const RowExec mode = ctx.row_exec;
  if (plan.bypass && mode != RowExec::mask) {
    ctx.kv_cache->advance(index, n_tokens, at::zeros({batch, n_tokens}, bool_opts));
    if (want_out) callbacks->after_mlp(index, at::zeros_like(h));
    return apply_hook(hooks, index, HookPoint::resid_post, h);
  }
  const at::Tensor valid = ctx.valid.defined() ? ctx.valid.reshape({N}) : at::Tensor();
  at::Tensor skip = plan.skip_block.defined()
                        ? (valid.defined() ? plan.skip_block.reshape({N}).logical_and(valid) : plan.skip_block.reshape({N}))
                        : at::Tensor();
  // mask: a bypassed layer is computed for every valid row and dropped, its keys hidden.
  if (plan.bypass) skip = valid.defined() ? valid : at::ones({N}, bool_opts);
  const bool propagate = plan.propagate_kv && skip.defined() && !plan.bypass;
  // Only padding left out: the same rows at every such layer, found once per forward.
  const bool padding_only = !skip.defined();
  // The valid rows, int64 [n], found once per forward (nonzero reads their count).
  const auto valid_rows = [&]() -> const at::Tensor& {
    if (!ctx.valid_rows.defined()) ctx.valid_rows = rows_of(valid);
    return ctx.valid_rows;
  };

  // Which rows run attention and the MLP; undefined: every row.
  const at::Tensor run = valid.defined() || skip.defined() ? and_not(valid, skip, N, bool_opts) : at::Tensor();
  const at::Tensor skip_mlp = plan.skip_mlp.defined()
                                  ? (run.defined() ? plan.skip_mlp.reshape({N}).logical_and(run) : plan.skip_mlp.reshape({N}))
                                  : at::Tensor();
  const at::Tensor mlp_run = run.defined() || skip_mlp.defined() ? and_not(run, skip_mlp, N, bool_opts) : at::Tensor();

  // The executed row sets of this layer: attention, propagated K/V, MLP.
  RowSet attn_set, prop_set, mlp_set;
  prop_set.rows = at::empty({0}, h.options().dtype(at::kLong));
  if (mode == RowExec::gather) {
    // A count the plan gives orders the rows on the device; else nonzero reads it.
    const auto rows_for = [&](const at::Tensor& mk, int64_t n) {
      return n >= 0 ? exact_set(mk, n, N) : gather_set(rows_of(mk), N);
    };
    if (run.defined()) {
      if (padding_only && !ctx.valid_rows.defined() && plan.n_run >= 0) {
        const RowSet e = exact_set(valid, plan.n_run, N);
        ctx.valid_rows = e.rows.defined() ? e.rows : at::arange(N, h.options().dtype(at::kLong));
      }
      if (padding_only) {
        attn_set = gather_set(valid_rows(), N);
      } else if (!valid.defined() && plan.n_run >= 0 && (propagate || plan.row_order.defined())) {
        // No padding: the propagated rows are exactly the others, from the same ordering.
        RowSet others;
        std::tie(attn_set, others) = exact_split(run, plan.n_run, N, plan.row_order);
        if (propagate) prop_set = others;
      } else {
        attn_set = rows_for(run, plan.n_run);
        if (propagate) prop_set = rows_for(skip, plan.n_skip);
      }
      attn_set.member = run;
    }
    // Without MLP skips the MLP runs on the attention's rows (no second nonzero).
    if (mlp_run.defined()) mlp_set = !skip_mlp.defined() ? attn_set : rows_for(mlp_run, plan.n_mlp_run);
  } else if (mode == RowExec::bucket) {
    // One host read for the counts of every set this layer still needs.
    const bool attn_cached = padding_only && ctx.valid_bucket.has_value();
    const bool mlp_same = mlp_run.defined() && !skip_mlp.defined();
    std::vector<at::Tensor> masks;
    std::vector<int64_t> counts;  // −1: not given by the plan
    if (run.defined() && !attn_cached) masks.push_back(run), counts.push_back(plan.n_run);
    if (propagate) masks.push_back(skip), counts.push_back(plan.n_skip);
    if (mlp_run.defined() && !mlp_same) masks.push_back(mlp_run), counts.push_back(plan.n_mlp_run);
    std::vector<at::Tensor> cums;
    if (!masks.empty() && N > 0) {
      std::vector<at::Tensor> last;
      for (const at::Tensor& mk : masks) {
        cums.push_back(mk.to(at::kLong).cumsum(0));
        last.push_back(cums.back().narrow(0, N - 1, 1));
      }
      if (std::find(counts.begin(), counts.end(), int64_t{-1}) != counts.end()) {
        const at::Tensor host = at::cat(last).to(at::kCPU);
        for (size_t i = 0; i < masks.size(); ++i) counts[i] = host[static_cast<int64_t>(i)].item<int64_t>();
      }
    }
    size_t next = 0;
    const auto take = [&]() {
      const size_t i = next++;
      return N > 0 ? bucket_set(masks[i], cums[i], counts[i], N) : gather_set(at::empty({0}, h.options().dtype(at::kLong)), 0);
    };
    if (run.defined()) {
      if (attn_cached) attn_set = *ctx.valid_bucket;
      else attn_set = take();
      if (padding_only && !ctx.valid_bucket) ctx.valid_bucket = attn_set;
    }
    if (propagate) prop_set = take();
    if (mlp_run.defined()) mlp_set = mlp_same ? attn_set : take();
  } else {
    // mask: every valid row; the rows that skip are dropped.
    if (run.defined()) {
      attn_set = valid.defined() ? gather_set(valid_rows(), N) : gather_set(at::Tensor(), N);
      attn_set.member = valid;
      attn_set.keep = attn_set.rows.defined() ? run.index_select(0, attn_set.rows) : run;
    }
    // Given K/V states (kv=exact) replace what the skipping rows wrote from their own state.
    if (propagate && plan.kv_state.defined()) prop_set = gather_set(rows_of(skip), N);
    if (mlp_run.defined()) {
      mlp_set = valid.defined() ? gather_set(valid_rows(), N) : gather_set(at::Tensor(), N);
      mlp_set.keep = mlp_set.rows.defined() ? mlp_run.index_select(0, mlp_set.rows) : mlp_run;
    }
  }

  // Attention: every row at once when all run, else the executed rows.
  at::Tensor mid;  // [N, d]
  if (!run.defined()) {
    mid = (h + attention_block(h, ctx)).reshape({N, d});
  } else {
    const at::Tensor h_flat = h.reshape({N, d});
    // kv=mask: of this forward's slots, only the rows that ran have keys at this layer.
    const at::Tensor visible = skip.defined() && !propagate ? run.view({batch, n_tokens}) : at::Tensor();
    const bool shared = mode == RowExec::mask || padding_only;
    const at::Tensor kept = mode == RowExec::mask && skip.defined() ? run : at::Tensor();
    // kv=exact: the skipping rows' K/V from the given states, every other row's from its own
    // (so that a padded row of a bucket writes what it would anyway).
    const at::Tensor kv_src =
        propagate && plan.kv_state.defined()
            ? at::where(skip.unsqueeze(1), plan.kv_state.reshape({N, d}), h_flat)
            : at::Tensor();
    const at::Tensor h_run = attn_set.n > 0 ? gather_rows(h_flat, attn_set) : at::Tensor();  // [n, d]
    const at::Tensor out =
        attention_rows(h_flat, h_run, attn_set, prop_set, kv_src, visible, batch, n_tokens, ctx, shared, kept);
    mid = out.defined() ? scatter_add(h_flat, attn_set, out, h_run) : h_flat;
  }

  // plan.routed_only on a MoE layer with a shared expert: the routed term runs on the MLP rows
  // and is what after_mlp receives; the shared expert runs apart, on every row that runs
  // attention (skip_mlp rows included). A dense layer has no routed term to skip.
  SEMSKIP_ASSERT(!plan.routed_only || is_moe() || !skip_mlp.defined());
  const bool shared_apart = plan.routed_only && is_moe() && moe->shared.has_value();
  // MLP / MoE: all rows, or the executed rows.
  at::Tensor post;
  if (!mlp_run.defined()) {
    const at::Tensor y = mlp_block(mid.view({batch, n_tokens, d}), ctx, !shared_apart);  // [B, T, d]
    if (want_out) callbacks->after_mlp(index, y);
    post = mid + y.reshape({N, d});
  } else {
    const int64_t n = mlp_set.n;
    at::Tensor y;  // [n, d]
    // Expert parallelism: this rank joins the layer's collectives even with no rows (under
    // mask every rank runs every layer, so all join).
    const bool collective = is_moe() && ctx.moe_executor && (plan.moe_collective || mode == RowExec::mask);
    post = mid;
    if (n > 0 || collective) {
      const at::Tensor mid_rows = gather_rows(mid, mlp_set);  // [n, d]
      y = mlp_block(mid_rows.unsqueeze(0), ctx, !shared_apart)[0];
      post = scatter_add(mid, mlp_set, y, mid_rows);
    }
    if (skip_mlp.defined() && plan.mlp_replacement.defined())
      post = post + at::where(skip_mlp.unsqueeze(1), plan.mlp_replacement.reshape({N, d}), at::zeros({}, h.options()));
    if (want_out) {
      const at::Tensor full = y.defined() && n > 0 ? scatter_rows(N, mlp_set, y) : at::zeros({N, d}, h.options());
      callbacks->after_mlp(index, full.view({batch, n_tokens, d}));
    }
  }
  if (shared_apart) {
    if (!run.defined()) {
      post = post + shared_block(mid.view({batch, n_tokens, d}), ctx).reshape({N, d});
    } else if (attn_set.n > 0) {
      const at::Tensor mid_rows = gather_rows(mid, attn_set);  // [n, d]
      post = scatter_add(post, attn_set, shared_block(mid_rows.unsqueeze(0), ctx)[0], gather_rows(post, attn_set));
    }
  }
  return apply_hook(hooks, index, HookPoint::resid_post, post.view({batch, n_tokens, d}));
}

int64_t DecoderLayer::n_params() const {
  return input_norm.weight.numel() + attention.n_params() + post_attention_norm.weight.numel() +
         (mlp ? mlp->n_params() : moe->n_params());
}

int64_t DecoderLayer::n_params_active() const {
  return n_params() - (moe ? moe->n_params() - moe->n_params_active() : 0);
}

}  // namespace semskip
