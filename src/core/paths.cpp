#include "core/paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace fs = std::filesystem;

std::string embedded_model_dir(const std::string& name) {
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("SEMSKIP_MODELS_DIR")) tried.push_back(fs::path(env) / name);
  tried.push_back(fs::path(SEMSKIP_SOURCE_MODELS_DIR) / name);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    tried.push_back(fs::path(exe).parent_path() / ".." / "share" / "semskip" / "models" / name);
  }
  std::vector<std::string> names;
  for (const fs::path& p : tried) {
    if (fs::exists(p / "config.json")) return fs::weakly_canonical(p).string();
    names.push_back(p.string());
  }
  SEMSKIP_THROW_MSG("embedded model '{}' not found (looked in: {}); set SEMSKIP_MODELS_DIR", name,
                    join(names, ", "));
}

}  // namespace semskip
