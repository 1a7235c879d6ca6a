// Checkpoint (declared in safetensors.h): the weights of a Hugging Face model folder.

#include <algorithm>
#include <filesystem>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "metrics/finite_check.h"
#include "model/json_keys.h"
#include "model/safetensors.h"

namespace semskip {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool is_pickled_name(const std::string& n) {
  return (starts_with(n, "pytorch_model") && ends_with(n, ".bin")) || ends_with(n, ".pt") ||
         ends_with(n, ".pth") || ends_with(n, ".ckpt");
}

// Why nothing was loaded from `dir`, with what was found there.
[[noreturn]] void refuse_folder(const std::string& dir) {
  std::vector<std::string> pickled, other_safetensors;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (is_pickled_name(n))
      pickled.push_back(n);
    else if (ends_with(n, ".safetensors"))
      other_safetensors.push_back(n);
  }
  std::sort(pickled.begin(), pickled.end());
  std::sort(other_safetensors.begin(), other_safetensors.end());
  if (!pickled.empty())
    SEMSKIP_THROW_MSG(
        "{}: holds only pickled PyTorch checkpoints ({}), which semskip refuses to load: unpickling a file "
        "can "
        "execute arbitrary code. Convert them once to safetensors, from a source you trust, e.g. with "
        "transformers: python -c \"from transformers import AutoModelForCausalLM as M; "
        "M.from_pretrained('{}').save_pretrained('OUT_DIR', safe_serialization=True)\" (then copy "
        "config.json "
        "and tokenizer.json along), or for a single file: python -c \"import torch; from safetensors.torch "
        "import "
        "save_file; sd = torch.load('pytorch_model.bin', weights_only=True); save_file({{k: "
        "v.clone().contiguous() "
        "for k, v in sd.items()}}, 'model.safetensors', metadata={{'format': 'pt'}})\"",
        dir, join(pickled, ", "), dir);
  SEMSKIP_THROW_MSG(
      "{}: no model weights found: expected {} or a sharded checkpoint listed in {} "
      "(model-0000x-of-0000y.safetensors){}",
      dir, kSingleFile, kIndexFile,
      other_safetensors.empty() ? std::string()
                                : fmt::format("; found {} under other names", join(other_safetensors, ", ")));
}

}  // namespace

Checkpoint::Checkpoint(const std::string& model_dir) : dir_(model_dir) {
  std::error_code ec;
  SEMSKIP_THROW_IF_NOT_MSG(fs::is_directory(dir_, ec),
                           "{}: not a directory (expected a model folder with {} "
                           "or {})",
                           dir_, kSingleFile, kIndexFile);
  const fs::path dir(dir_);

  // The single file wins when both exist, as in transformers' from_pretrained.
  if (fs::exists(dir / kSingleFile)) {
    files_.push_back(std::make_unique<SafetensorsFile>((dir / kSingleFile).string()));
    for (const std::string& n : files_.back()->names()) where_[n] = files_.back().get();
    return;
  }
  if (!fs::exists(dir / kIndexFile)) refuse_folder(dir_);

  const std::string index_path = (dir / kIndexFile).string();
  json index;
  try {
    index = json::parse(read_file(index_path));
  } catch (const json::parse_error& e) {
    SEMSKIP_THROW_MSG("{}: malformed JSON at byte {}: {}", index_path, e.byte, e.what());
  } catch (const json::exception& e) {
    // A number too large for any type is out_of_range, not a parse error.
    SEMSKIP_THROW_MSG("{}: malformed JSON: {}", index_path, e.what());
  }
  SEMSKIP_THROW_IF_NOT_MSG(index.is_object(), "{}: must be a JSON object", index_path);
  JsonKeys keys(index, index_path);
  const json& weight_map = keys.at("weight_map");
  if (!weight_map.is_object())
    keys.fail("weight_map", "must be an object mapping tensor names to shard files");
  SEMSKIP_THROW_IF_NOT_MSG(!weight_map.empty(), "{}: key 'weight_map' lists no tensors", index_path);

  std::map<std::string, const SafetensorsFile*> by_shard;
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    if (!it.value().is_string())
      keys.fail("weight_map",
                fmt::format("entry '{}' must name a shard file, got {}", it.key(), it.value().dump()));
    const std::string shard = it.value().get<std::string>();
    // Shards are plain names beside the index; a path could point anywhere.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      keys.fail("weight_map",
                fmt::format("entry '{}' names '{}', which is not a file name in {}", it.key(), shard, dir_));
    auto found = by_shard.find(shard);
    if (found == by_shard.end()) {
      const fs::path shard_path = dir / shard;
      SEMSKIP_THROW_IF_NOT_MSG(fs::is_regular_file(shard_path, ec),
                               "{}: shard '{}' (listed for tensor '{}') does not exist in {}", index_path,
                               shard, it.key(), dir_);
      files_.push_back(std::make_unique<SafetensorsFile>(shard_path.string()));
      found = by_shard.emplace(shard, files_.back().get()).first;
    }
    SEMSKIP_THROW_IF_NOT_MSG(found->second->has(it.key()),
                             "{}: tensor '{}' is listed in shard '{}', which does not hold it", index_path,
                             it.key(), shard);
    where_[it.key()] = found->second;
  }
}

bool Checkpoint::has(const std::string& name) const { return where_.count(name) > 0; }

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

std::vector<std::string> Checkpoint::files() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  std::sort(out.begin(), out.end());
  return out;
}

const SafetensorsFile& Checkpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  SEMSKIP_THROW_IF_NOT_MSG(it != where_.end(),
                           "tensor '{}' not found in the checkpoint in {} ({} tensors in {})", name, dir_,
                           where_.size(), join(files(), ", "));
  return *it->second;
}

namespace {

// The checks and the conversion of Checkpoint::get and get_rows: `t` is `name`'s bytes (all or
// some rows) over the mapping, `full_shape` the whole tensor's shape on disk.
at::Tensor convert_checked(const SafetensorsFile& file, const std::string& name, const at::Tensor& t,
                           const std::vector<int64_t>& full_shape, at::ScalarType dtype, at::Device device,
                           const std::vector<int64_t>& expected_shape) {
  if (!expected_shape.empty() && full_shape != expected_shape)
    SEMSKIP_THROW_MSG("{}: tensor '{}' has shape [{}], expected [{}]", file.path(), name, fmt::join(full_shape, ", "),
                      fmt::join(expected_shape, ", "));
  const bool from_float = at::isFloatingType(t.scalar_type());
  const bool to_float = at::isFloatingType(dtype);
  SEMSKIP_THROW_IF_NOT_MSG(t.scalar_type() == dtype ||
                               (from_float == to_float && t.scalar_type() != at::kBool && dtype != at::kBool),
                           "{}: tensor '{}' is stored as {} and cannot be read as {}", file.path(), name,
                           c10::toString(t.scalar_type()), c10::toString(dtype));
  // copy=true: callers get memory of their own, never the read-only mapping.
  return t.to(device, dtype, /*non_blocking=*/false, /*copy=*/true).contiguous();
}

}  // namespace

at::Tensor Checkpoint::get(const std::string& name, at::ScalarType dtype, at::Device device,
                           const std::vector<int64_t>& expected_shape) const {
  const SafetensorsFile& file = file_of(name);
  const at::Tensor t = file.tensor(name);  // the on-disk dtype, over the mapping
  return convert_checked(file, name, t, t.sizes().vec(), dtype, device, expected_shape);
}

at::Tensor Checkpoint::get_rows(const std::string& name, int64_t first, int64_t count, at::ScalarType dtype,
                                at::Device device, const std::vector<int64_t>& expected_shape) const {
  const SafetensorsFile& file = file_of(name);
  const std::vector<int64_t> full_shape = file.view(name).shape;
  // The shape first: a slice of a tensor of another shape is never read.
  if (!expected_shape.empty() && full_shape != expected_shape)
    SEMSKIP_THROW_MSG("{}: tensor '{}' has shape [{}], expected [{}]", file.path(), name, fmt::join(full_shape, ", "),
                      fmt::join(expected_shape, ", "));
  return convert_checked(file, name, file.tensor_rows(name, first, count), full_shape, dtype, device, {});
}

std::vector<NonFiniteTensor> non_finite_tensors(const Checkpoint& ckpt) {
  std::vector<NonFiniteTensor> out;
  for (const std::string& name : ckpt.names()) {
    const NonFiniteCount c = count_non_finite(ckpt.file_of(name).tensor(name));
    if (c.any()) out.push_back({name, c.n_nan, c.n_inf, c.numel});
  }
  return out;
}

}  // namespace semskip
