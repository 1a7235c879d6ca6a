// semskip report plot: runs scripts/plot_report.py (`all`) with the system Python on the
// given reports; it draws every figure that they allow, as PNG and SVG, into --out.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "drivers/report_verbs.h"

#ifndef SEMSKIP_SOURCE_DIR
#define SEMSKIP_SOURCE_DIR "."
#endif

namespace semskip {

namespace {

namespace fs = std::filesystem;

struct PlotOptions {
  std::vector<std::string> files;
  std::string out;
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

int run_plot(const PlotOptions& opt) {
  // The reports are checked here, so that their errors read as every other verb's.
  for (const std::string& f : opt.files) (void)open_semskip_report(f);
  const std::string python = env_or("SEMSKIP_PYTHON", "/usr/bin/python3");
  const std::string script = env_or("SEMSKIP_PLOT_SCRIPT", std::string(SEMSKIP_SOURCE_DIR) + "/scripts/plot_report.py");
  SEMSKIP_THROW_IF_NOT_MSG(::access(python.c_str(), X_OK) == 0,
                           "plotting needs Python 3 with matplotlib and h5py, and '{}' is not an executable "
                           "(set SEMSKIP_PYTHON to another interpreter)",
                           python);
  SEMSKIP_THROW_IF_NOT_MSG(fs::is_regular_file(script),
                           "plot script '{}' not found (set SEMSKIP_PLOT_SCRIPT to scripts/plot_report.py of "
                           "a semskip source tree)",
                           script);
  std::error_code ec;
  if (fs::exists(opt.out, ec)) {
    SEMSKIP_THROW_IF_NOT_MSG(fs::is_directory(opt.out, ec), "'{}' exists and is not a directory", opt.out);
  }
  std::vector<std::string> args = {python, script, "all", "--out", opt.out};
  args.insert(args.end(), opt.files.begin(), opt.files.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  SEMSKIP_THROW_IF_NOT_MSG(pid >= 0, "cannot start '{}': {}", python, std::strerror(errno));
  if (pid == 0) {
    ::execv(python.c_str(), argv.data());
    std::fprintf(stderr, "cannot run '%s': %s\n", python.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    SEMSKIP_THROW_IF_NOT_MSG(errno == EINTR, "waiting for '{}': {}", python, std::strerror(errno));
  }
  SEMSKIP_THROW_IF_NOT_MSG(WIFEXITED(status), "'{} {}' ended by signal {}", python, script,
                           WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  SEMSKIP_THROW_IF_NOT_MSG(WEXITSTATUS(status) == 0, "'{} {}' failed (exit status {})", python, script,
                           WEXITSTATUS(status));
  return 0;
}

}  // namespace

void add_report_plot_verb(CLI::App& report, CommandRegistry& verbs) {
  auto opt = std::make_shared<PlotOptions>();
  CLI::App* p = verbs.add(report, "plot",
                          "Every figure the reports allow (frontier, per-layer rates, index latency, throughput, "
                          "scaling) as PNG and SVG, drawn by scripts/plot_report.py",
                          [opt] { return run_plot(*opt); });
  p->add_option("files", opt->files, "Report files (.h5)")->required();
  p->add_option("--out", opt->out, "Directory for the figures (created if absent)")->required();
}

}  // namespace semskip
