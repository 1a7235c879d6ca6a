#pragma once
// The execution plan of one forward: per layer, which rows of the [B, T] batch run the block,
// which run attention but take a given value in place of the MLP / MoE, which receive a
// substituted update before the block, and what the rows that do not run leave in the KV
// cache. Transformer::forward reads it layer by layer, so a plan may be filled while the
// forward runs (a semantic-cache policy decides after its probe layer); the empty plan (no
// ExecutionPlan, or every LayerPlan default) is the full model.
//
// DESIGN. There is one implementation of attention, MLP / MoE and the KV cache: the model's.
// A LayerPlan only selects rows; DecoderLayer::forward_planned gathers the rows that run
// (index_select on the device), runs the same sub-blocks on them, and scatters the results
// back (the rows plus their update, index_copy), so executed FLOPs follow executed shapes. Attention of the gathered
// queries is one batched call over all sequences (queries scattered into their [B, T] places,
// outputs gathered back), never a loop over sequences: under the plain causal mask (the fused
// kernels) when every key of the layer is valid and visible, else under a per-layer mask. Keys of rows
// that skip a block are either computed from their substituted state (propagate, charged as
// kv_propagate) or hidden at that layer (KvCache's per-layer visibility). Padding rows
// (ForwardOptions::attention_mask false) run nothing under a plan, the head included.
//
// How the rows of a layer are executed is a choice (RowExec, ForwardOptions::row_exec); the
// same decisions give the same outputs in every mode (fp32: logits to 1e-5, the same greedy
// tokens), only the executed shapes, and so the FLOPs charged, differ:
//   gather  the rows that run, compacted (nonzero, index_select), computed, scattered back
//           (index_copy): as many shapes as there are row counts; one host read per gathering
//           (the count nonzero needs), none when the plan gives the count (LayerPlan::n_run…:
//           the rows are then ordered on the device as in bucket, without padding).
//   bucket  the same, with the count padded up to row_bucket(n, N) so that few shapes occur
//           (what a captured CUDA graph needs). The rows are ordered on the device (running
//           rows first, a cumsum, no sort), and the padding is the first rows that do not run,
//           so every index is distinct: they compute on their own state, their results are
//           dropped (at::where before the scatter-add), and their K/V writes land on slots
//           that are hidden, padding, or (kv=propagate) receive the same projection of the
//           same state a moment later. LibTorch 1.13 has no nonzero_static, so the bucket size
//           is read on the host: one read per layer for its three counts (attention, MLP,
//           propagated rows) where gather reads up to three, none when the plan gives them;
//           the counts themselves stay on the device. Padding rows are charged.
//   mask    every valid row runs every sub-block (bypassed layers too) and the results of the
//           rows that skip are dropped (at::where): the outputs of skipping at no saving, a
//           baseline. Skipping queries attend to every valid key (the full model's work);
//           running ones to the keys the plan leaves visible, as in gather. K/V of skipped
//           rows are written from their state (kv=propagate's projection) and hidden where
//           gather hides them. Every valid row is charged, so for block skips the FLOPs are
//           the full model's.
// MoE routing hooks of the plan forward see the executed rows (bucket and mask: dropped rows
// included).

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

enum class RowExec { gather, bucket, mask };

const char* row_exec_name(RowExec m);
// "gather" | "bucket" | "mask"; anything else throws naming `what` (e.g. "option --skip-exec").
RowExec parse_row_exec(const std::string& text, const std::string& what);

// Row buckets: powers of two up to kRowBucketStep, multiples of it above, never more than the
// n_rows rows of the forward (n = 0: 0). So a [B, T] forward executes at most
// log2(kRowBucketStep) + 1 + N / kRowBucketStep + 1 distinct row counts per sub-block.
constexpr int64_t kRowBucketStep = 256;
int64_t row_bucket(int64_t n, int64_t n_rows);
// Every row count row_bucket gives for a forward of n_rows rows, ascending (0 excluded).
std::vector<int64_t> row_buckets(int64_t n_rows);

// The order "running rows first, then the others, each in order" along the last dimension of
// mask (bool [..., N]), computed on the device without a sort: cs is mask's inclusive cumsum
// (int64 [..., N]) and n_run its count per row of the leading dimensions (int64 [..., 1]), or
// the count itself where the host knows it. pos [..., N]: each row's place in that order;
// order [..., N]: the rows in it (order[pos[j]] = j). The gather and bucket row executions
// and the engine's all-layers ordering use this one routine.
struct RunFirstOrder {
  at::Tensor pos;
  at::Tensor order;
};
RunFirstOrder run_first_order(const at::Tensor& mask, const at::Tensor& cs, const at::Tensor& n_run);
RunFirstOrder run_first_order(const at::Tensor& mask, const at::Tensor& cs, int64_t n_run);

struct LayerPlan {
  // compute dtype [B, T, d]: added to the residual stream before the block (a cached update
  // Δ that lands a row at this layer); undefined: none.
  at::Tensor jump;
  // Known on the host: no row runs the block (a layer skipped everywhere). Nothing is
  // computed, the layer's keys of this forward are hidden, MoE collectives are left out.
  bool bypass = false;
  // bool [B, T]: rows that skip the block (identity, after the jump); undefined: none. The
  // rows that run are the valid ones not skipping.
  at::Tensor skip_block;
  // bool [B, T]: rows that run attention but take `mlp_replacement` in place of the MLP / MoE.
  at::Tensor skip_mlp;
  at::Tensor mlp_replacement;  // compute dtype [B, T, d], read at skip_mlp rows
  // On a MoE layer: skip_mlp rows skip, and the MLP output after_mlp receives is, the routed
  // term only (router and routed experts, MoeBlock::routed_term); the shared expert and its
  // gate run on every row that runs attention (target=routed). A dense layer has no routed
  // term: its plan then has no skip_mlp.
  bool routed_only = false;
  // Valid skip_block rows: K/V computed from their state (true) or hidden at this layer (false).
  bool propagate_kv = false;
  // With propagate_kv: compute dtype [B, T, d], the state the skip_block rows' K/V are computed
  // from in place of their own, uncharged (kv=exact: the full model's input of this layer);
  // undefined: their own state, charged as kv_propagate. Written after the rows that run, so
  // that under bucket a padded row's write never replaces them.
  at::Tensor kv_state;
  // With a MoeExecutor (expert parallelism): join the layer's collectives even with no rows
  // here. False only when every rank knows that no row of any rank runs the MLP.
  bool moe_collective = true;
  // Whether ExecutionPlan::after_mlp wants this layer's MLP output.
  bool want_mlp_out = false;
  // The sizes of the row sets forward_planned derives (the valid rows that run the block, the
  // valid skip_block rows, the rows that run the MLP), when the planner knows them on the host
  // (counted before the forward, one read for every layer): gather and bucket then read
  // nothing back at this layer. −1: unknown, counted here. A wrong count is a planner bug.
  int64_t n_run = -1, n_skip = -1, n_mlp_run = -1;
  // With n_run, in a forward without padding: int64 [B·T], the rows that run the block, then
  // the rows that skip it, each in order (the planner ordered every layer at once); gather
  // takes its two row sets from it. Undefined: ordered here.
  at::Tensor row_order;
};

class ExecutionPlan {
 public:
  virtual ~ExecutionPlan() = default;
  // Before block `layer`; h: the residual stream entering it, compute dtype [B, T, d].
  virtual LayerPlan layer(int64_t layer, const at::Tensor& h) = 0;
  // After the MLP of `layer` (only when LayerPlan::want_mlp_out): its output [B, T, d] (with
  // LayerPlan::routed_only the routed term without the shared expert), zero at rows that did
  // not run it.
  virtual void after_mlp(int64_t layer, const at::Tensor& mlp_out) { (void)layer, (void)mlp_out; }
  // After block `layer`; h: the residual stream leaving it, [B, T, d].
  virtual void after_layer(int64_t layer, const at::Tensor& h) { (void)layer, (void)h; }
};

}  // namespace semskip
