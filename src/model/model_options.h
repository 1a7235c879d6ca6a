#pragma once
// Run-time choices for building a model (docs/conventions.md rule 7: not part of ModelConfig, which is
// the shape read from config.json).

#include <cstdint>
#include <string>

#include <ATen/ATen.h>
#include <torch/version.h>

#include "core/dtype.h"

namespace semskip {

// How Attention::attend computes softmax(QKᵀ/√d + mask)·V.
enum class AttnImpl {
  eager,  // explicit matmuls, fp32 softmax: the Hugging Face "eager" reference
  sdpa,   // at::scaled_dot_product_attention (fused kernels where the build has them)
};

// LibTorch 2.x fuses attention (flash / memory-efficient kernels on CPU and CUDA); 1.13's
// sdpa is the same math as eager on CPU, and measured no faster there.
#if TORCH_VERSION_MAJOR >= 2
inline constexpr AttnImpl kDefaultAttnImpl = AttnImpl::sdpa;
#else
inline constexpr AttnImpl kDefaultAttnImpl = AttnImpl::eager;
#endif

AttnImpl parse_attn_impl(const std::string& s, const std::string& what);
const char* attn_impl_name(AttnImpl a);

// The routed experts of every MoE layer that this process holds: [first, first + count);
// count < 0 means all of them. With expert parallelism (--ep) each rank holds only the experts
// it owns (comm/expert_partition.h); the others are never read from the checkpoint and stay
// empty (undefined weights) in MoeBlock::experts.
struct ExpertShard {
  int64_t first = 0;
  int64_t count = -1;

  bool all() const { return count < 0; }
  bool holds(int64_t expert) const { return all() || (expert >= first && expert < first + count); }
};

struct ModelOptions {
  DType dtype = DType::fp32;          // compute dtype of weights, activations and KV cache
  at::Device device = at::kCPU;
  AttnImpl attn_impl = kDefaultAttnImpl;
  bool random_init = false;           // weights drawn from N(0, init_std) instead of the checkpoint
  uint64_t seed = 0;                  // random_init only
  double init_std = -1.0;             // random_init only; < 0: config's initializer_range or 0.02
  // Positions a forward may use: [0, max_model_len). Past the config's limit RoPE extrapolates
  // beyond what the model was trained on, so Transformer refuses such positions unless this
  // raises the limit (with a warning at build time).
  int64_t max_model_len = 0;  // 0: config.max_position_embeddings
  ExpertShard experts;        // routed experts held (all unless expert-parallel)
};

at::ScalarType scalar_type(DType d);
// "cpu" | "cuda" | "cuda:N"; semskip::Error naming `what` otherwise, or when CUDA is asked
// for and this build or machine has none.
at::Device parse_device(const std::string& s, const std::string& what);

}  // namespace semskip
