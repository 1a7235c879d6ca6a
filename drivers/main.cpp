// semskip: one binary, one subcommand per experiment or tool.
#include <cstdio>
#include <exception>

#include "core/error.h"
#include "core/version.h"
#include "comm/failure.h"
#include "drivers/command.h"

int main(int argc, char** argv) {
  using namespace semskip;
  CLI::App app{"semskip — semantic-cache layer skipping: what it saves, what it costs"};
  app.set_version_flag("--version", std::string(version()) + " (" + git_revision() + ")");
  app.require_subcommand(1);
  // Global: `semskip --log-level debug run ...` or `semskip run ... --log-level debug`.
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace|debug|info|warn|error|critical|off; debug also logs where each error was raised "
                 "(default: $SEMSKIP_LOG_LEVEL, else warn)");
  app.fallthrough();
  CommandRegistry reg;
  // One line per subcommand; each lives in drivers/cmd_<name>.cpp.
  // SEMSKIP-COMMANDS-BEGIN
  add_tokenize_command(app, reg);
  add_report_command(app, reg);
  add_workload_command(app, reg);
  add_info_command(app, reg);
  add_generate_command(app, reg);
  add_parity_command(app, reg);
  add_run_command(app, reg);
  add_index_bench_command(app, reg);
  add_env_command(app, reg);
  add_serve_bench_command(app, reg);
  // SEMSKIP-COMMANDS-END
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (log_level.empty()) {
      set_log_level_from_env();
    } else {
      set_log_level(log_level);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "semskip: error: %s\n", e.what());
    return 2;
  }
  const CommandFn* fn = reg.selected(app);
  if (!fn) return app.exit(CLI::CallForHelp());
  try {
    return (*fn)();
  } catch (const std::exception& e) {
    // Names the rank and ends every rank of an MPI job (MPI_Abort), so none waits forever.
    return handle_command_failure(app.get_subcommands().front()->get_name(), e);
  }
}
