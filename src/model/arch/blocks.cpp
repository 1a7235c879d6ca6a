#include "model/arch/blocks.h"

#include <fmt/format.h>

#include "core/error.h"

namespace semskip::arch {

Linear linear(WeightSource& w, const std::string& prefix, int64_t out, int64_t in, bool bias) {
  Linear l;
  l.weight = w.get(prefix + ".weight", {out, in}, WeightInit::normal);
  if (bias) l.bias = w.get(prefix + ".bias", {out}, WeightInit::zeros);
  return l;
}

RmsNorm rms_norm(WeightSource& w, const std::string& name, int64_t d, double eps) {
  return RmsNorm{w.get(name + ".weight", {d}, WeightInit::ones), eps};
}

Attention attention(WeightSource& w, const std::string& prefix, const ModelConfig& c, bool qkv_bias,
                    bool o_bias, AttnImpl impl) {
  Attention a;
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim;
  a.impl = impl;
  const int64_t d = c.hidden_size, q_width = c.n_heads * c.head_dim, kv_width = c.n_kv_heads * c.head_dim;
  a.q_proj = linear(w, prefix + ".q_proj", q_width, d, qkv_bias);
  a.k_proj = linear(w, prefix + ".k_proj", kv_width, d, qkv_bias);
  a.v_proj = linear(w, prefix + ".v_proj", kv_width, d, qkv_bias);
  a.o_proj = linear(w, prefix + ".o_proj", d, q_width, o_bias);
  a.fuse_projections();
  return a;
}

SwiGluMlp swiglu(WeightSource& w, const std::string& prefix, int64_t d, int64_t intermediate, bool bias,
                 const char* gate, const char* up, const char* down) {
  SwiGluMlp m;
  m.gate_proj = linear(w, prefix + "." + gate, intermediate, d, bias);
  m.up_proj = linear(w, prefix + "." + up, intermediate, d, bias);
  m.down_proj = linear(w, prefix + "." + down, d, intermediate, bias);
  m.fuse_projections();
  return m;
}

std::vector<SwiGluMlp> routed_experts(WeightSource& w, const std::string& prefix, int64_t n_experts, int64_t d,
                                      int64_t width, const ExpertShard& held, const char* gate, const char* up,
                                      const char* down) {
  const int64_t first = held.all() ? 0 : held.first, count = held.all() ? n_experts : held.count;
  SEMSKIP_THROW_IF_NOT_MSG(first >= 0 && count >= 0 && first + count <= n_experts,
                           "{}: the experts held, [{}, {}), are not among the layer's {} experts", prefix, first,
                           first + count, n_experts);
  std::vector<SwiGluMlp> experts(static_cast<size_t>(n_experts));
  if (!w.has(prefix + ".gate_up_proj")) {
    for (int64_t e = 0; e < n_experts; ++e) {
      const std::string p = fmt::format("{}.{}", prefix, e);
      if (e >= first && e < first + count) {
        experts[static_cast<size_t>(e)] = swiglu(w, p, d, width, false, gate, up, down);
      } else {
        for (const char* part : {gate, up, down}) w.leave(fmt::format("{}.{}.weight", p, part));
      }
    }
    return experts;
  }
  if (count == 0) return experts;
  // compute dtype [count, 2·width, d] and [count, d, width]: the held rows only.
  const at::Tensor gate_up = w.get_rows(prefix + ".gate_up_proj", {n_experts, 2 * width, d}, first, count,
                                        WeightInit::normal);
  const at::Tensor down_w = w.get_rows(prefix + ".down_proj", {n_experts, d, width}, first, count, WeightInit::normal);
  for (int64_t i = 0; i < count; ++i) {
    SwiGluMlp m;
    m.gate_proj.weight = gate_up[i].narrow(0, 0, width);
    m.up_proj.weight = gate_up[i].narrow(0, width, width);
    m.down_proj.weight = down_w[i].contiguous();
    m.fuse_projections();  // a [2·width, d] stack of its own; the slice read above is released
    experts[static_cast<size_t>(first + i)] = std::move(m);
  }
  return experts;
}

std::string layer_prefix(int64_t layer) { return fmt::format("model.layers.{}", layer); }

DecoderLayer decoder_layer(WeightSource& w, const ModelConfig& c, int64_t layer, Attention attn) {
  DecoderLayer l;
  l.index = layer;
  const std::string p = layer_prefix(layer);
  l.input_norm = rms_norm(w, p + ".input_layernorm", c.hidden_size, c.rms_norm_eps);
  l.attention = std::move(attn);
  l.post_attention_norm = rms_norm(w, p + ".post_attention_layernorm", c.hidden_size, c.rms_norm_eps);
  return l;
}

}  // namespace semskip::arch
