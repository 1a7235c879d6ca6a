// semskip env: the environment a run would record (versions, CPU, threads, GPUs, host, SLURM
// ids), as text or JSON, for bug reports.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "drivers/command.h"
#include "drivers/report_flags.h"

namespace semskip {

void add_env_command(CLI::App& app, CommandRegistry& reg) {
  auto json_out = std::make_shared<bool>(false);
  CLI::App* cmd = reg.add(app, "env", "library versions, CPU, threads, GPUs and host of this process (for bug reports)",
                          [json_out] {
                            const nlohmann::ordered_json j = environment_json(collect_environment(visible_gpus()));
                            if (*json_out) {
                              fmt::print("{}\n", j.dump(2));
                              return 0;
                            }
                            for (const auto& [key, value] : j.items()) {
                              const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
                              fmt::print("{}\n", text.empty() ? key : fmt::format("{:<20} {}", key, text));
                            }
                            return 0;
                          });
  cmd->add_flag("--json", *json_out, "print one JSON object instead of text");
}

}  // namespace semskip
