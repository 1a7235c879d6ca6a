#pragma once
// Every `semskip <name>` subcommand is one file drivers/cmd_<name>.cpp with one add_*
// function: it declares the subcommand's options on `app` and registers what runs it.

#include <functional>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace semskip {

using CommandFn = std::function<int()>;

class CommandRegistry {
 public:
  // Creates subcommand `name` on app; `run` is called after a successful parse.
  CLI::App* add(CLI::App& app, const std::string& name, const std::string& description,
                CommandFn run);
  // The function of the subcommand that was parsed (nullptr if none).
  const CommandFn* selected(const CLI::App& app) const;

 private:
  std::map<const CLI::App*, CommandFn> fns_;
};

void add_info_command(CLI::App& app, CommandRegistry& reg);
void add_generate_command(CLI::App& app, CommandRegistry& reg);
void add_parity_command(CLI::App& app, CommandRegistry& reg);
void add_tokenize_command(CLI::App& app, CommandRegistry& reg);
void add_index_bench_command(CLI::App& app, CommandRegistry& reg);
void add_report_command(CLI::App& app, CommandRegistry& reg);
void add_workload_command(CLI::App& app, CommandRegistry& reg);
void add_run_command(CLI::App& app, CommandRegistry& reg);
void add_env_command(CLI::App& app, CommandRegistry& reg);
void add_serve_bench_command(CLI::App& app, CommandRegistry& reg);

}  // namespace semskip
