#pragma once
// `--model` as a Hugging Face id ("Qwen/Qwen2-0.5B", "Qwen/Qwen2-0.5B@v1.0", "org/name@<commit>"),
// found in the local Hugging Face hub cache only; nothing is ever downloaded.

#include <string>
#include <vector>

namespace semskip {

// The hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else $HOME/.cache/huggingface/hub.
std::string hf_hub_cache_dir();

// True when `arg` has the shape of a hub id: "<org>/<name>" with an optional "@<revision>",
// one slash, neither part empty nor "." / "..".
bool looks_like_hf_id(const std::string& arg);

// The snapshot folder of hub id `id` in `cache_dir`:
//   <cache_dir>/models--<org>--<name>/snapshots/<commit>/
// where <commit> is the content of refs/<revision> (refs/main without "@"), or the revision
// itself when it names a snapshot folder (a commit hash). semskip::Error naming the id, the
// folders and ref files looked at, and what was missing.
std::string resolve_hf_snapshot(const std::string& id, const std::string& cache_dir);

// What every `--model` goes through: an existing folder is returned as it is; otherwise an
// argument that looks like a hub id is resolved in hf_hub_cache_dir(); anything else is
// returned unchanged (the model loader then names the missing folder). An id not in the cache:
// semskip::Error saying there is no such folder either, and where the cache was searched.
std::string resolve_model_arg(const std::string& arg);

}  // namespace semskip
