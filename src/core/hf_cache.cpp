#include "core/hf_cache.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace fs = std::filesystem;

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool plain_part(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s) {
    if (c == '/' || c == '\\' || c == '@' || c == ' ') return false;
  }
  return true;
}

}  // namespace

std::string hf_hub_cache_dir() {
  const std::string hub = env_or_empty("HF_HUB_CACHE");
  if (!hub.empty()) return hub;
  const std::string home = env_or_empty("HF_HOME");
  if (!home.empty()) return (fs::path(home) / "hub").string();
  const std::string user_home = env_or_empty("HOME");
  return (fs::path(user_home.empty() ? "/" : user_home) / ".cache" / "huggingface" / "hub").string();
}

bool looks_like_hf_id(const std::string& arg) {
  const size_t at = arg.find('@');
  const std::string repo = arg.substr(0, at);
  if (at != std::string::npos && !plain_part(arg.substr(at + 1))) return false;
  const size_t slash = repo.find('/');
  if (slash == std::string::npos) return false;
  return plain_part(repo.substr(0, slash)) && plain_part(repo.substr(slash + 1));
}

std::string resolve_hf_snapshot(const std::string& id, const std::string& cache_dir) {
  SEMSKIP_THROW_IF_NOT_MSG(looks_like_hf_id(id), "model '{}': not a Hugging Face id of the form org/name[@revision]",
                           id);
  const size_t at = id.find('@');
  const std::string repo = id.substr(0, at);
  const std::string revision = at == std::string::npos ? "main" : id.substr(at + 1);
  const size_t slash = repo.find('/');
  const fs::path repo_dir =
      fs::path(cache_dir) / ("models--" + repo.substr(0, slash) + "--" + repo.substr(slash + 1));
  const fs::path snapshots = repo_dir / "snapshots";
  const fs::path ref_file = repo_dir / "refs" / revision;
  const std::string looked = fmt::format(
      "looked in the Hugging Face cache '{}' (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) "
      "for '{}' and '{}'; nothing is downloaded: fetch it first, e.g. `huggingface-cli download {}`",
      cache_dir, ref_file.string(), snapshots.string(), repo);
  std::error_code ec;
  SEMSKIP_THROW_IF_NOT_MSG(fs::is_directory(repo_dir, ec), "model '{}': not in the local cache ({})", id, looked);
  std::string commit;
  if (fs::is_regular_file(ref_file, ec)) {
    std::ifstream in(ref_file);
    std::getline(in, commit);
    commit = trim(commit);
    SEMSKIP_THROW_IF_NOT_MSG(plain_part(commit), "model '{}': ref file '{}' does not hold a commit", id,
                             ref_file.string());
  } else {
    commit = revision;  // "@<commit>" names a snapshot folder directly
  }
  const fs::path snapshot = snapshots / commit;
  SEMSKIP_THROW_IF_NOT_MSG(fs::is_directory(snapshot, ec),
                           "model '{}': revision '{}' has no snapshot folder '{}' ({})", id, revision,
                           snapshot.string(), looked);
  SEMSKIP_THROW_IF_NOT_MSG(fs::exists(snapshot / "config.json", ec),
                           "model '{}': snapshot '{}' has no config.json (a partial download?)", id,
                           snapshot.string());
  return snapshot.string();
}

std::string resolve_model_arg(const std::string& arg) {
  std::error_code ec;
  if (arg.empty() || fs::is_directory(arg, ec) || !looks_like_hf_id(arg)) return arg;
  try {
    return resolve_hf_snapshot(arg, hf_hub_cache_dir());
  } catch (const Error& e) {
    // It may also be a mistyped relative path: say both.
    SEMSKIP_THROW_MSG("--model '{}': no such folder, and as a Hugging Face id: {}", arg, e.what());
  }
}

}  // namespace semskip
