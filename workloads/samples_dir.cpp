#include "workloads/samples_dir.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace fs = std::filesystem;

std::string samples_dir() {
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("SEMSKIP_SAMPLES_DIR")) tried.emplace_back(env);
  tried.emplace_back(SEMSKIP_SOURCE_SAMPLES_DIR);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    tried.push_back(fs::path(exe).parent_path() / ".." / "share" / "semskip" / "workloads" /
                    "samples");
  }
  std::vector<std::string> names;
  for (const fs::path& p : tried) {
    if (fs::is_directory(p)) return fs::weakly_canonical(p).string();
    names.push_back(p.string());
  }
  SEMSKIP_THROW_MSG("sample workloads not found (looked in: {}); set SEMSKIP_SAMPLES_DIR",
                    join(names, ", "));
}

std::string sample_path(const std::string& name) { return (fs::path(samples_dir()) / name).string(); }

}  // namespace semskip
