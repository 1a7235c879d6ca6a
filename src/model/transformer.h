#pragma once
// A decoder-only transformer (llama, qwen2, qwen2_moe, mixtral, olmoe) with TransformerLens-style
// forward semantics:
//   forward(ids [B, T])                                  -> logits [B, T, V]
//   forward(resid, {.start_at_layer = s})                -> runs blocks [s, L), then norm + head
//   forward(ids or resid, {.stop_at_layer = e})          -> residual stream after block e - 1
//   forward(ids, {.plan = p})                            -> the same model under an execution
//                                                           plan (model/layer_plan.h): skipping
// This forward is the only implementation of the model: the full model, greedy generation and
// every skipping run (SkipEngine fills a plan from its policy) go through it, so an
// optimisation of attention, MLP / MoE or the KV cache is made once.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/decoder_layer.h"
#include "model/hooks.h"
#include "model/kv_cache.h"
#include "model/layer_plan.h"
#include "model/layers/linear.h"
#include "model/layers/rms_norm.h"
#include "model/layers/rotary.h"
#include "model/model_config.h"
#include "model/model_options.h"
#include "model/weights.h"

namespace semskip {

struct ForwardOptions {
  // Set: the input is the residual stream entering this block, compute dtype [B, T, d].
  std::optional<int64_t> start_at_layer;
  // Set: run blocks [start, stop) and return the residual stream (no final norm, no head);
  // negative values count from the end (-1: all blocks but the last).
  std::optional<int64_t> stop_at_layer;
  KvCache* kv_cache = nullptr;    // appended to; null: attention over this input only
  const HookSet* hooks = nullptr;
  FlopCounter* flops = nullptr;   // receives every executed op's FLOPs when given
  MoeExecutor* moe_executor = nullptr;  // set: MoE routed experts run through it (expert parallelism)
  at::Tensor positions;           // int64 [B, T] RoPE positions; undefined: derived (see make_context)
  at::Tensor attention_mask;      // bool [B, T], false on (left) padding; undefined: all tokens valid
  bool last_token_logits = false; // head on the last position only: logits [B, 1, V]
  // Set: which rows run which block, read before each block (model/layer_plan.h); padding
  // rows then run nothing and get zero logits. Null: every row runs every block.
  ExecutionPlan* plan = nullptr;
  // Under a plan: how the rows of a layer that run are executed (model/layer_plan.h); the
  // outputs are the same in every mode, the executed shapes and FLOPs are not.
  RowExec row_exec = RowExec::gather;
};

class Transformer {
 public:
  // A Hugging Face model folder: config.json plus safetensors weights, or with
  // options.random_init config.json alone.
  static Transformer load(const std::string& model_dir, const ModelOptions& options);
  // Any architecture from a config and a weight source (checkpoint, random or meta).
  static Transformer build(const ModelConfig& config, WeightSource& weights, const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  at::ScalarType dtype() const { return scalar_type(options_.dtype); }
  at::Device device() const { return options_.device; }
  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
  // The RoPE positions a forward may use, [0, limit): max_position_embeddings, or
  // ModelOptions::max_model_len when that is set.
  int64_t position_limit() const;
  const DecoderLayer& layer(int64_t l) const;
  const std::vector<DecoderLayer>& layers() const { return layers_; }
  const Rotary& rotary() const { return rotary_; }
  const at::Tensor& embed_tokens() const { return embed_tokens_; }  // compute dtype [V, d]
  const RmsNorm& norm() const { return norm_; }
  const Linear& lm_head_linear() const { return lm_head_; }

  // ids int64 [B, T] (any device) -> residual stream entering block 0 [B, T, d].
  at::Tensor embed(const at::Tensor& ids) const;
  // resid [B, T, d] -> normalised [B, T, d] (model.norm).
  at::Tensor final_norm(const at::Tensor& resid) const;
  // x [B, T, d] -> logits [B, T, V] (tied to the embedding when the config says so).
  at::Tensor lm_head(const at::Tensor& x, FlopCounter* flops = nullptr) const;

  // The state shared by the layers of one forward of B × T new tokens starting at block
  // `first_layer`: RoPE table, attention mask and the options' cache, hooks and counter.
  // Positions, unless given: with a cache, continue each sequence after its valid slots; the
  // new tokens' attention_mask (when given) is recorded in the cache and padding gets no
  // position advance. Records the rotary FLOPs (once per call).
  LayerContext make_context(int64_t batch, int64_t n_tokens, int64_t first_layer, const ForwardOptions& o) const;

  at::Tensor forward(const at::Tensor& input, const ForwardOptions& o = {}) const;

  // A cache for B sequences with room for `capacity` slots, preallocated (it grows only when
  // a forward goes past it). Refused first, as check_kv_cache_fits says, when it cannot fit.
  KvCache make_kv_cache(int64_t batch, int64_t capacity) const;
  // semskip::Error naming what to lower (batch, context, config.json's KV fields) when a dense
  // cache of `batch` × `capacity` slots would exceed the memory of the model's device
  // (ModelConfig::check_kv_cache_fits); drivers call it before building a batch's inputs.
  void check_kv_cache_fits(int64_t batch, int64_t capacity) const;

  int64_t n_params() const;         // tied embeddings counted once
  int64_t n_params_active() const;  // per token: only top_k routed experts of each MoE layer

 private:
  ModelConfig config_;
  ModelOptions options_;
  at::Tensor embed_tokens_;         // compute dtype [V, d]
  std::vector<DecoderLayer> layers_;
  RmsNorm norm_;
  Linear lm_head_;                  // weight [V, d], the embedding itself when tied
  Rotary rotary_;
};

}  // namespace semskip
