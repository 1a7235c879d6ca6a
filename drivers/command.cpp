#include "drivers/command.h"

namespace semskip {

CLI::App* CommandRegistry::add(CLI::App& app, const std::string& name,
                               const std::string& description, CommandFn run) {
  CLI::App* sub = app.add_subcommand(name, description);
  fns_[sub] = std::move(run);
  return sub;
}

const CommandFn* CommandRegistry::selected(const CLI::App& app) const {
  for (const CLI::App* sub : app.get_subcommands()) {
    auto it = fns_.find(sub);
    if (it != fns_.end()) return &it->second;
  }
  return nullptr;
}

}  // namespace semskip
