#include "engine/run_config.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/hf_cache.h"
#include "core/error.h"
#include "core/paths.h"
#include "core/strings.h"
#include "engine/run_requests.h"
#include "model/model_config.h"
#include "model/model_options.h"

namespace semskip {

std::vector<std::string> RunConfig::default_policies() {
  // Two baselines, the residual cache replacing whole blocks, and the configuration of the
  // measured frontier (bench/results/stage1.md): MLPs replaced, PCA keys, a bounded cache.
  return {
      "static:k=1",
      "random:rate=0.1",
      "residual:p=2,r=7,tau=0.95",
      "residual:p=2,r=8,tau=0.98,target=mlp,proj=pca,kdim=64,cap=8192",
  };
}

void RunConfig::validate() const {
  SEMSKIP_THROW_IF_NOT_MSG(chunk >= 2, "--chunk must be ≥ 2, got {}", chunk);
  SEMSKIP_THROW_IF_NOT_MSG(max_requests >= 0, "--max-requests must be ≥ 0, got {}", max_requests);
  SEMSKIP_THROW_IF_NOT_MSG(calib_requests >= 0, "--calib-requests must be ≥ 0, got {}", calib_requests);
  SEMSKIP_THROW_IF_NOT_MSG(batch >= 1, "--batch must be ≥ 1, got {}", batch);
  SEMSKIP_THROW_IF_NOT_MSG(max_new_tokens >= 0, "--max-new-tokens must be ≥ 0, got {}", max_new_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(max_model_len >= 0, "--max-model-len must be ≥ 0, got {}", max_model_len);
  SEMSKIP_THROW_IF_NOT_MSG(capacity >= 1, "--capacity must be ≥ 1, got {}", capacity);
  SEMSKIP_THROW_IF_NOT_MSG(bootstrap >= 1, "--bootstrap must be ≥ 1, got {}", bootstrap);
  SEMSKIP_THROW_IF_NOT_MSG(threads >= 0, "--threads must be ≥ 0, got {}", threads);
  SEMSKIP_THROW_IF_NOT_MSG(ep >= 1, "--ep must be ≥ 1, got {}", ep);
  SEMSKIP_THROW_IF_NOT_MSG(comm == "auto" || comm == "mpi" || comm == "nccl",
                           "--comm: expected auto, mpi or nccl, got '{}'", comm);
  SEMSKIP_THROW_IF_NOT_MSG(shard_of >= 0, "--shard-of must be ≥ 0, got {}", shard_of);
  SEMSKIP_THROW_IF_NOT_MSG(shard_of > 0 || shard_index == 0, "--shard-index needs --shard-of");
  SEMSKIP_THROW_IF_NOT_MSG(shard_of == 0 || (shard_index >= 0 && shard_index < shard_of),
                           "--shard-index must be in 0..{} (--shard-of {}), got {}", shard_of - 1, shard_of,
                           shard_index);
  SEMSKIP_THROW_IF_NOT_MSG(split.empty() || tune_workload.empty(),
                           "--split and --tune-workload both name a tune part; give one");
  SEMSKIP_THROW_IF_NOT_MSG(target_agreement >= 0 && target_agreement <= 1,
                           "--target-agreement must be in [0, 1], got {}", target_agreement);
  SEMSKIP_THROW_IF_NOT_MSG(orders >= 1, "--orders must be ≥ 1, got {}", orders);
  if (!split.empty()) parse_split_fraction(split);
}

namespace {

std::string flag_of(const std::string& key) {
  std::string f = "--" + key;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}

std::string text_of(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// The options as JSON, keys of run_option_table().
nlohmann::json config_json(const RunConfig& c) {
  return {
      {"model", c.model},
      {"random_init", c.random_init},
      {"dtype", c.dtype},
      {"device", c.device},
      {"workload", c.workload},
      {"chunk", c.chunk},
      {"max_requests", c.max_requests},
      {"calib_requests", c.calib_requests},
      {"batch", c.batch},
      {"max_new_tokens", c.max_new_tokens},
      {"max_model_len", c.max_model_len},
      {"policies", c.policies},
      {"indexes", c.indexes},
      {"capacity", c.capacity},
      {"bootstrap", c.bootstrap},
      {"seed", c.seed},
      {"threads", c.threads},
      {"report", c.report},
      {"json", c.json},
      {"cache_mode", c.cache_mode},
      {"sync", c.sync},
      {"skip_exec", c.skip_exec},
      {"ep", c.ep},
      {"comm", c.comm},
      {"shard", c.shard},
      {"shard_of", c.shard_of},
      {"shard_index", c.shard_index},
      {"split", c.split},
      {"tune_workload", c.tune_workload},
      {"target_agreement", c.target_agreement},
      {"orders", c.orders},
  };
}

}  // namespace

const std::vector<RunOptionInfo>& run_option_table() {
  static const std::vector<RunOptionInfo> table = [] {
    const nlohmann::json d = config_json(RunConfig{});
    struct Row {
      const char* key;
      const char* help;
    };
    const std::vector<Row> rows = {
        {"model", "Hugging Face model folder (empty: the embedded tiny-dense)"},
        {"random_init", "random weights of the config's shape"},
        {"dtype", "compute dtype: fp32 | bf16 | fp16"},
        {"device", "cpu | cuda | cuda:N"},
        {"workload", "workload spec (empty: text, the shipped held-out sample); see `semskip workload kinds`"},
        {"chunk", "tokens per teacher-forced chunk of text workloads"},
        {"max_requests", "requests evaluated (0: all)"},
        {"calib_requests", "leading requests used only to calibrate (static:k, PCA keys)"},
        {"batch", "sequences per micro-batch step"},
        {"max_new_tokens", "greedy tokens generated per request and compared (0: teacher-forced only)"},
        {"max_model_len", "positions a request may use, prompt plus output (0: the model's "
                          "max_position_embeddings; above it positions past training are extrapolated)"},
        {"policies", "skip policy descriptor, repeatable; rows are keyed by its canonical form. target=block|mlp|routed "
                     "(static, random, residual, cascade): the whole block, the MLP / MoE block, or a MoE layer's router and "
                     "routed experts only (attention and the shared expert run; dense layers are not skipped, and a "
                     "policy whose layers are all dense is refused). cascade:p=1+7,r=7+9,tau=0.985+0.95[,…]: residual "
                     "caches on ordered, non-overlapping segments, each with its own probe, resume, threshold and "
                     "cache (other residual keys: one value, or one per segment joined by '+')"},
        {"indexes", "index descriptor of cache policies, repeatable"},
        {"capacity", "cache capacity in entries (policy key cap= overrides)"},
        {"bootstrap", "bootstrap resamples for 95% intervals"},
        {"seed", "seed of random policies, projections and bootstrap"},
        {"threads", "CPU threads (0: OMP_NUM_THREADS or all cores)"},
        {"report", "HDF5 report path ('' for none)"},
        {"json", "print the result table as JSON (one object per policy row) instead of text"},
        {"cache_mode", "semantic cache over the ranks: local (each rank its own) | replicated (every rank all "
                       "entries) | sharded (1/n of the entries each)"},
        {"sync", "when cache hits are applied: token (each its own) | batch:<f> (a micro-batch's hits iff ≥ f "
                 "of its lookups hit) | global[:<f>] (all ranks or none, on the job's hits; f 0.5) | "
                 "global:group[:<f>] (the same per expert-parallel group, --ep)"},
        {"skip_exec", "how the rows of a layer that run are executed: gather (compacted) | bucket (compacted and "
                      "padded to power-of-two counts, then multiples of 256, as captured graphs need) | mask (every "
                      "row runs, the skipping ones dropped: the same tokens at no saving, a baseline)"},
        {"ep", "expert-parallel group size: MoE experts split over groups of this many consecutive ranks"},
        {"comm", "communicator of the ranks: auto (NCCL on CUDA devices when built with it, else MPI) | mpi | "
                 "nccl (CUDA builds and devices only); mpi or nccl also run the MoE layers at --ep 1 through "
                 "the communicator"},
        {"shard", "how requests are split over ranks: round-robin | contiguous | balanced"},
        {"shard_of", "single process: run one shard of this many, as that rank of an mpirun would (0: all)"},
        {"shard_index", "the shard --shard-of runs"},
        {"split", "tune/eval split by documents (conversations for chat sets): F or tune=F, the fraction that "
                  "tunes ('' for none); a sweep: every policy runs on tune, the best net saving at "
                  "--target-agreement per policy kind is reported on eval"},
        {"tune_workload", "workload spec of the tune part of a sweep instead of --split (the workload is all eval)"},
        {"target_agreement", "sweep: least top-1 agreement on tune for a configuration to be selected"},
        {"orders", "cache policies rerun over this many request orders (seeded; order 0 the workload's), "
                   "spread of agreement, hit rate and net saving reported"},
    };
    SEMSKIP_ASSERT(rows.size() == d.size());
    std::vector<RunOptionInfo> out;
    for (const Row& r : rows) {
      RunOptionInfo info;
      info.key = r.key;
      info.flag = flag_of(r.key);
      if (info.key == "policies") info.flag = "--policy";  // repeatable: one descriptor per flag
      if (info.key == "indexes") info.flag = "--index";
      info.help = r.help;
      const nlohmann::json& v = d.at(r.key);
      info.is_flag = v.is_boolean();
      info.is_list = v.is_array();
      if (info.key == "policies") info.default_text = join(RunConfig::default_policies(), " ");
      else if (info.key == "indexes") info.default_text = kDefaultIndexDescriptor;
      else if (!info.is_flag) info.default_text = text_of(v);
      out.push_back(info);
    }
    return out;
  }();
  return table;
}

const RunOptionInfo* find_run_option(const std::string& key) {
  std::string k = key;
  std::replace(k.begin(), k.end(), '-', '_');
  for (const RunOptionInfo& info : run_option_table()) {
    std::string flag = info.flag.substr(2);
    std::replace(flag.begin(), flag.end(), '-', '_');
    if (info.key == k || flag == k) return &info;
  }
  return nullptr;
}

RunPlan RunPlan::resolve(RunConfig cfg) {
  cfg.validate();
  RunPlan p;
  p.model = cfg.model.empty() ? embedded_model_dir(kDefaultModel) : resolve_model_arg(cfg.model);
  p.random_init = cfg.random_init;
  p.dtype = parse_dtype(cfg.dtype, "--dtype");
  p.device = parse_device(cfg.device, "--device");
  // Plain "cuda" stays without an index: each rank takes its own GPU (Runtime::device).
  if (cfg.device == "cuda") p.device = at::Device(at::kCUDA);
  std::string spec = cfg.workload.empty() ? "text" : cfg.workload;
  const std::string kind = spec.substr(0, spec.find_first_of(":,"));
  if (kind == "text" && spec.find("chunk=") == std::string::npos) spec += ",chunk=" + std::to_string(cfg.chunk);
  p.workload = WorkloadSpec::parse(spec);
  p.chunk = cfg.chunk;
  p.max_requests = cfg.max_requests;
  p.calib_requests = cfg.calib_requests;
  p.batch = cfg.batch;
  p.max_new_tokens = cfg.max_new_tokens;
  p.max_model_len = cfg.max_model_len;
  for (const std::string& d : cfg.policies.empty() ? RunConfig::default_policies() : cfg.policies)
    p.policies.push_back(Descriptor::parse(d));
  p.indexes = cfg.indexes.empty() ? std::vector<std::string>{kDefaultIndexDescriptor} : cfg.indexes;
  p.capacity = cfg.capacity;
  p.bootstrap = cfg.bootstrap;
  p.seed = cfg.seed;
  p.threads = cfg.threads;
  p.report = cfg.report;
  p.json = cfg.json;
  p.cache_mode = parse_cache_mode(cfg.cache_mode, "--cache-mode");
  p.sync = SyncRule::parse(cfg.sync, "--sync");
  p.row_exec = parse_row_exec(cfg.skip_exec, "option --skip-exec");
  p.ep = cfg.ep;
  p.comm = cfg.comm;
  p.shard = parse_shard_strategy(cfg.shard);
  p.shard_of = cfg.shard_of;
  p.shard_index = cfg.shard_index;
  if (!cfg.split.empty()) p.split_fraction = parse_split_fraction(cfg.split);
  if (!cfg.tune_workload.empty()) p.tune_workload = WorkloadSpec::parse(cfg.tune_workload).describe();
  p.target_agreement = cfg.target_agreement;
  p.orders = cfg.orders;
  return p;
}

RunConfig RunPlan::to_config() const {
  RunConfig c;
  c.model = model;
  c.random_init = random_init;
  c.dtype = dtype_name(dtype);
  c.device = device.str();
  c.workload = workload.describe();
  c.chunk = chunk;
  c.max_requests = max_requests;
  c.calib_requests = calib_requests;
  c.batch = batch;
  c.max_new_tokens = max_new_tokens;
  c.max_model_len = max_model_len;
  for (const Descriptor& d : policies) c.policies.push_back(d.text());
  c.indexes = indexes;
  c.capacity = capacity;
  c.bootstrap = bootstrap;
  c.seed = seed;
  c.threads = threads;
  c.report = report;
  c.json = json;
  c.cache_mode = cache_mode_name(cache_mode);
  c.sync = sync.describe();
  c.skip_exec = row_exec_name(row_exec);
  c.ep = ep;
  c.comm = comm;
  c.shard = shard_strategy_name(shard);
  c.shard_of = shard_of;
  c.shard_index = shard_index;
  c.split = split_fraction > 0 ? fmt::format("tune={}", split_fraction) : "";
  c.tune_workload = tune_workload;
  c.target_agreement = target_agreement;
  c.orders = orders;
  return c;
}

nlohmann::json RunPlan::to_json() const { return config_json(to_config()); }

RunPlan RunPlan::from_json(const nlohmann::json& j) {
  RunConfig c;
  j.at("model").get_to(c.model);
  j.at("random_init").get_to(c.random_init);
  j.at("dtype").get_to(c.dtype);
  j.at("device").get_to(c.device);
  j.at("workload").get_to(c.workload);
  j.at("chunk").get_to(c.chunk);
  j.at("max_requests").get_to(c.max_requests);
  j.at("calib_requests").get_to(c.calib_requests);
  j.at("batch").get_to(c.batch);
  j.at("max_new_tokens").get_to(c.max_new_tokens);
  c.max_model_len = j.value("max_model_len", int64_t{0});  // reports written before the option lack it
  j.at("policies").get_to(c.policies);
  j.at("indexes").get_to(c.indexes);
  j.at("capacity").get_to(c.capacity);
  j.at("bootstrap").get_to(c.bootstrap);
  j.at("seed").get_to(c.seed);
  j.at("threads").get_to(c.threads);
  j.at("report").get_to(c.report);
  j.at("json").get_to(c.json);
  j.at("cache_mode").get_to(c.cache_mode);
  j.at("sync").get_to(c.sync);
  c.skip_exec = j.value("skip_exec", std::string("gather"));  // reports written before the option lack it
  j.at("ep").get_to(c.ep);
  c.comm = j.value("comm", std::string("auto"));  // reports written before the option lack it
  j.at("shard").get_to(c.shard);
  j.at("shard_of").get_to(c.shard_of);
  j.at("shard_index").get_to(c.shard_index);
  // Reports written before the tune/eval protocol lack these keys.
  c.split = j.value("split", std::string());
  c.tune_workload = j.value("tune_workload", std::string());
  c.target_agreement = j.value("target_agreement", 0.90);
  c.orders = j.value("orders", int64_t{1});
  return resolve(c);
}

PolicyEnv model_policy_env(const ModelConfig& mc) {
  PolicyEnv env;
  env.n_layers = mc.n_layers;
  env.hidden = mc.hidden_size;
  env.moe_layers = mc.moe_layers();
  return env;
}

PolicyEnv RunPlan::policy_env(const ModelConfig& mc, at::Device device) const {
  PolicyEnv env = model_policy_env(mc);
  env.capacity = capacity;
  env.device = device;
  env.seed = seed;
  env.sync = sync;
  return env;
}

ModelOptions RunPlan::model_options(at::Device device) const {
  ModelOptions mo;
  mo.dtype = dtype;
  mo.device = device;
  mo.random_init = random_init;
  mo.seed = seed;
  mo.max_model_len = max_model_len;
  return mo;
}

}  // namespace semskip
