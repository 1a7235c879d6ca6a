// semskip parity: checks this build against reference dumps (the fixture format of
// tests/data/parity: ids_i, logits_i, resid_post_i, greedy_i, and for MoE topk_experts_i and
// router_logits_i, for the MoE layers only, in layer order), and the dense-convention FLOP
// count against reference.json when present.
// Prints one JSON object; exits 1 when any check fails.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/hf_cache.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/strings.h"
#include "comm/expert_parallel_group.h"
#include "comm/nccl_communicator.h"
#include "comm/runtime.h"
#include "drivers/command.h"
#include "metrics/flop_counter.h"
#include "model/generation.h"
#include "model/safetensors.h"
#include "model/transformer.h"

namespace semskip {

namespace {

using nlohmann::json;

struct ParityOptions {
  std::string model;
  std::string reference;
  std::string dtype = "fp32";
  std::string device = "cpu";
  std::string attn = "eager";
  double tolerance = 1e-4;
  int ep = 1;  // > 1: MoE layers expert-parallel over groups of ep ranks (under mpirun)
  std::string comm = "auto";  // the ranks' communicator when one is used: auto | mpi | nccl
  std::string decode_mode = "eager";  // how greedy_i is decoded (model/generation.h DecodeMode)
};

// ‖a − b‖ / ‖b‖ in fp64 on the host.
double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor ad = a.to(at::kCPU, at::kDouble), bd = b.to(at::kCPU, at::kDouble);
  SEMSKIP_THROW_IF_NOT_MSG(ad.sizes() == bd.sizes(), "parity: shape [{}] against reference [{}]",
                           fmt::join(ad.sizes().vec(), ", "), fmt::join(bd.sizes().vec(), ", "));
  const double denom = bd.norm().item<double>();
  const double num = (ad - bd).norm().item<double>();
  return denom > 0 ? num / denom : num;
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Tokens (over layers × positions) whose set of top-k experts differs; ours and ref int64 [L, T, k].
int64_t topk_set_mismatches(const at::Tensor& ours, const at::Tensor& ref) {
  SEMSKIP_THROW_IF_NOT_MSG(ours.sizes() == ref.sizes(), "parity: top-k experts [{}] against reference [{}]",
                           fmt::join(ours.sizes().vec(), ", "), fmt::join(ref.sizes().vec(), ", "));
  const at::Tensor a = std::get<0>(ours.to(at::kCPU).sort(-1));
  const at::Tensor b = std::get<0>(ref.to(at::kCPU).sort(-1));
  return (a != b).any(-1).sum().item<int64_t>();
}

// The indices of the model's MoE layers, in order.
std::vector<int64_t> moe_layers(const Transformer& model) {
  std::vector<int64_t> out;
  for (int64_t l = 0; l < model.n_layers(); ++l)
    if (model.layer(l).is_moe()) out.push_back(l);
  return out;
}

json check_sequence(const Transformer& model, const SafetensorsFile& ref, int i, const json* flop_ref,
                    bool flops_see_experts, double tol, bool& all_pass, ExpertParallelGroup* ep,
                    DecodeMode decode) {
  const auto pass = [&](bool ok) {
    all_pass = all_pass && ok;
    return ok;
  };
  json s;
  s["index"] = i;
  const at::Tensor ids = ref.tensor(fmt::format("ids_{}", i)).to(at::kLong).reshape({1, -1});
  const int64_t n_layers = model.n_layers();
  s["n_tokens"] = ids.size(1);

  HookSet hooks;
  std::vector<at::Tensor> resid(static_cast<size_t>(n_layers)), topk(static_cast<size_t>(n_layers)),
      router(static_cast<size_t>(n_layers));
  const auto record = [](std::vector<at::Tensor>& into) {
    return [&into](const at::Tensor& x, const HookSite& site) -> std::optional<at::Tensor> {
      into[static_cast<size_t>(site.layer)] = x[0];
      return std::nullopt;
    };
  };
  for (int64_t l = 0; l < n_layers; ++l) {
    hooks.add(l, HookPoint::resid_post, record(resid));
    hooks.add(l, HookPoint::expert_indices, record(topk));
    hooks.add(l, HookPoint::router_logits, record(router));
  }
  FlopCounter flops;
  ForwardOptions fo;
  fo.hooks = &hooks;
  fo.flops = &flops;
  fo.moe_executor = ep ? &ep->executor() : nullptr;
  const at::Tensor logits = model.forward(ids, fo)[0];

  const std::string logits_name = fmt::format("logits_{}", i);
  if (ref.has(logits_name)) {
    const double e = rel_err(logits, ref.tensor(logits_name));
    s["logits"] = {{"rel_err", e}, {"pass", pass(e <= tol)}};
  }
  const std::string resid_name = fmt::format("resid_post_{}", i);
  if (ref.has(resid_name)) {
    const at::Tensor r = ref.tensor(resid_name);  // [L, T, d]
    SEMSKIP_THROW_IF_NOT_MSG(r.dim() == 3 && r.size(0) == n_layers, "{}: {} must be [{}, T, d]", ref.path(),
                             resid_name, n_layers);
    std::vector<double> per_layer;
    for (int64_t l = 0; l < n_layers; ++l) per_layer.push_back(rel_err(resid[static_cast<size_t>(l)], r[l]));
    const double worst = *std::max_element(per_layer.begin(), per_layer.end());
    s["resid_post"] = {{"rel_err_per_layer", per_layer}, {"max_rel_err", worst}, {"pass", pass(worst <= tol)}};
  }
  // Routing is given for the MoE layers only, in layer order (a model may mix dense and MoE
  // layers: Qwen2-MoE's mlp_only_layers / decoder_sparse_step, first dense layers).
  const std::vector<int64_t> moe = moe_layers(model);
  const auto moe_stack = [&](const std::vector<at::Tensor>& per_layer, const std::string& name) {
    const at::Tensor r = ref.tensor(name);
    SEMSKIP_THROW_IF_NOT_MSG(!moe.empty(), "{}: {} is given but the model has no MoE layer", ref.path(), name);
    SEMSKIP_THROW_IF_NOT_MSG(r.dim() == 3 && r.size(0) == static_cast<int64_t>(moe.size()),
                             "{}: {} must be [{}, T, ...]: one entry per MoE layer ({}), in layer order, got [{}]",
                             ref.path(), name, moe.size(), fmt::join(moe, ", "), fmt::join(r.sizes().vec(), ", "));
    std::vector<at::Tensor> ours;
    for (int64_t l : moe) ours.push_back(per_layer[static_cast<size_t>(l)]);
    return std::make_pair(at::stack(ours), r);
  };
  const std::string topk_name = fmt::format("topk_experts_{}", i);
  if (ref.has(topk_name)) {
    const auto [ours, theirs] = moe_stack(topk, topk_name);
    const int64_t mismatches = topk_set_mismatches(ours, theirs);
    s["topk_experts"] = {{"layers", moe}, {"mismatching_tokens", mismatches}, {"pass", pass(mismatches == 0)}};
  }
  const std::string router_name = fmt::format("router_logits_{}", i);
  if (ref.has(router_name)) {
    const auto [ours, theirs] = moe_stack(router, router_name);
    const double e = rel_err(ours, theirs);
    s["router_logits"] = {{"layers", moe}, {"rel_err", e}, {"pass", pass(e <= tol)}};
  }
  const std::string greedy_name = fmt::format("greedy_{}", i);
  if (ref.has(greedy_name)) {
    const std::vector<int64_t> expected = to_vector(ref.tensor(greedy_name));
    GenerateOptions go;
    go.max_new_tokens = static_cast<int64_t>(expected.size());
    go.moe_executor = ep ? &ep->executor() : nullptr;
    go.decode = decode;
    const std::vector<int64_t> got = generate_greedy(model, {to_vector(ids)}, go).tokens.front();
    size_t prefix = 0;
    while (prefix < got.size() && prefix < expected.size() && got[prefix] == expected[prefix]) ++prefix;
    s["greedy"] = {{"tokens", got}, {"reference", expected}, {"matching_prefix", prefix},
                   {"pass", pass(got == expected)}};
  }
  if (flop_ref) {
    const int64_t expected = flop_ref->at("flop_counter_total").get<int64_t>();
    int64_t routed = flops.by_group(OpGroup::experts);
    // With --ep every rank of the group checks the same sequence: the group ran ep copies of
    // one process's routed-expert work, each rank the pairs of its own experts.
    const int64_t others = flops.total(AttnConvention::dense) - routed;
    if (ep) routed = ep->comm().allreduce(at::tensor({routed}), ReduceOp::sum).item<int64_t>() / ep->ep_size();
    const int64_t total = others + routed;
    const int64_t compared = flops_see_experts ? total : total - routed;
    s["flops"] = {{"dense_total", total},
                  {"routed_experts", routed},
                  {"compared", compared},
                  {"reference", expected},
                  {"reference_sees_routed_experts", flops_see_experts},
                  {"causal_total", flops.total(AttnConvention::causal) - flops.by_group(OpGroup::experts) + routed},
                  {"pass", pass(compared == expected)}};
  }
  return s;
}

int run_parity(const ParityOptions& o) {
  ModelOptions mo;
  mo.dtype = parse_dtype(o.dtype, "option --dtype");
  mo.device = parse_device(o.device, "option --device");
  mo.attn_impl = parse_attn_impl(o.attn, "option --attn");
  SEMSKIP_THROW_IF_NOT_MSG(o.tolerance >= 0, "option --tolerance: must be >= 0, got {}", o.tolerance);
  const DecodeMode decode = parse_decode_mode(o.decode_mode, "option --decode-mode");
  resolve_comm_kind(o.comm, have_nccl(), mo.device);  // refused before any work
  // A communicator runs the MoE layers with --ep, and with an explicit --comm (mpi or nccl) also
  // at ep 1: in a world of one every MoE layer's all-to-alls go through it (NCCL's on one GPU).
  const bool use_comm = o.ep > 1 || o.comm != "auto";
  if (use_comm) mo.device = Runtime::get().device(mo.device);  // one device per rank
  const std::string model_dir = resolve_model_arg(o.model);
  Communicator* world = use_comm ? &Runtime::get().world(o.comm, mo.device) : nullptr;
  std::unique_ptr<ExpertParallelGroup> ep;
  if (world) {
    const ModelConfig shape = ModelConfig::from_file(model_dir + "/config.json");
    if (o.ep > 1 || shape.n_experts > 0) {
      ep = std::make_unique<ExpertParallelGroup>(*world, o.ep, &shape);
      mo.experts = ep->shard(shape.n_experts);  // each rank loads only the experts it owns
    }
  }
  const Transformer model = Transformer::load(model_dir, mo);
  const SafetensorsFile ref(o.reference);

  json flop_json;
  const std::string flop_path = (std::filesystem::path(o.reference).parent_path() / "reference.json").string();
  const bool have_flops = std::filesystem::exists(flop_path);
  if (have_flops) {
    try {
      flop_json = json::parse(read_file(flop_path));
    } catch (const json::exception& e) {
      SEMSKIP_THROW_MSG("{}: not valid JSON: {}", flop_path, e.what());
    }
    SEMSKIP_THROW_IF_NOT_MSG(flop_json.contains("sequences") && flop_json["sequences"].is_array(),
                             "{}: expected a \"sequences\" list", flop_path);
  }
  const bool see_experts = have_flops ? flop_json.value("flop_counter_sees_routed_experts", true) : true;
  if (have_flops && flop_json.contains("moe_layers")) {
    // The dump names the layers its routing tensors belong to; they must be this model's.
    std::vector<int64_t> named;
    try {
      named = flop_json["moe_layers"].get<std::vector<int64_t>>();
    } catch (const json::exception&) {
      SEMSKIP_THROW_MSG("{}: \"moe_layers\" must be a list of layer indices", flop_path);
    }
    const std::vector<int64_t> ours = moe_layers(model);
    SEMSKIP_THROW_IF_NOT_MSG(named == ours, "{}: \"moe_layers\" is [{}] but the model's MoE layers are [{}]",
                             flop_path, fmt::join(named, ", "), fmt::join(ours, ", "));
  }

  json out;
  out["model"] = o.model;
  out["reference"] = o.reference;
  out["dtype"] = dtype_name(mo.dtype);
  out["device"] = mo.device.str();
  out["decode_mode"] = decode_mode_name(decode);
  out["attn"] = attn_impl_name(mo.attn_impl);
  out["tolerance"] = o.tolerance;
  out["flop_reference"] = have_flops ? json(flop_path) : json(nullptr);
  if (ep) out["ep"] = {{"size", o.ep}, {"group", ep->describe(model.config().n_experts)}};
  out["comm"] = world ? json(world->describe()) : json(nullptr);
  bool all_pass = true;
  json seqs = json::array();
  for (int i = 0; ref.has(fmt::format("ids_{}", i)); ++i) {
    const json* fr = nullptr;
    if (have_flops) {
      SEMSKIP_THROW_IF_NOT_MSG(static_cast<size_t>(i) < flop_json["sequences"].size(),
                               "{}: no entry for sequence {}", flop_path, i);
      fr = &flop_json["sequences"][static_cast<size_t>(i)];
    }
    seqs.push_back(check_sequence(model, ref, i, fr, see_experts, o.tolerance, all_pass, ep.get(), decode));
  }
  SEMSKIP_THROW_IF_NOT_MSG(!seqs.empty(), "{}: no ids_0 tensor: not a reference file", o.reference);
  out["sequences"] = seqs;
  if (ep) {
    // One verdict for the job; rank 0 speaks for it.
    all_pass = Runtime::get().world().allreduce(at::tensor({int64_t(all_pass)}), ReduceOp::min).item<int64_t>() == 1;
    if (!Runtime::get().is_root()) return all_pass ? 0 : 1;
  }
  out["pass"] = all_pass;
  std::printf("%s\n", out.dump(2).c_str());
  return all_pass ? 0 : 1;
}

}  // namespace

void add_parity_command(CLI::App& app, CommandRegistry& reg) {
  auto o = std::make_shared<ParityOptions>();
  CLI::App* sub = reg.add(app, "parity", "Check logits, residuals, greedy tokens, MoE routing and FLOPs against a reference dump",
                          [o] { return run_parity(*o); });
  sub->add_option("--model", o->model, "Hugging Face model folder")->required();
  sub->add_option("--reference", o->reference, "reference.safetensors (ids_i, logits_i, resid_post_i, greedy_i, ...)")
      ->required();
  sub->add_option("--dtype", o->dtype, "Compute dtype: fp32, bf16 or fp16")->capture_default_str();
  sub->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--attn", o->attn, "Attention implementation: eager or sdpa")->capture_default_str();
  sub->add_option("--tolerance", o->tolerance, "Largest relative error ‖a−b‖/‖b‖ accepted")->capture_default_str();
  sub->add_option("--ep", o->ep, "Run the MoE layers expert-parallel over groups of this many ranks (under mpirun)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--comm", o->comm,
                  "Communicator of the ranks: auto (NCCL on CUDA when built with it, else MPI), mpi or nccl; "
                  "mpi or nccl also run the MoE layers of a world of one through it")
      ->capture_default_str();
  sub->add_option("--decode-mode", o->decode_mode,
                  "How greedy_i is decoded: eager, fixed (fixed shapes), graph (CUDA graphs) or auto")
      ->capture_default_str();
}

}  // namespace semskip
