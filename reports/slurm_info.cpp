#include "reports/slurm_info.h"

#include <cstdlib>
#include <string>

#include "reports/report_writer.h"

namespace semskip::report {

namespace {

struct SlurmVar {
  const char* attr;
  const char* env;
  bool count;  // an integer; SLURM writes counts of heterogeneous steps as "2(x3)", kept as text then
};

// The settings a user chooses with sbatch options, so a report says what it ran on.
constexpr SlurmVar kVars[] = {
    {"slurm_job_name", "SLURM_JOB_NAME", false},
    {"slurm_partition", "SLURM_JOB_PARTITION", false},
    {"slurm_account", "SLURM_JOB_ACCOUNT", false},
    {"slurm_nnodes", "SLURM_JOB_NUM_NODES", true},
    {"slurm_nodelist", "SLURM_JOB_NODELIST", false},
    {"slurm_ntasks", "SLURM_NTASKS", true},
    {"slurm_ntasks_per_node", "SLURM_NTASKS_PER_NODE", true},
    {"slurm_cpus_per_task", "SLURM_CPUS_PER_TASK", true},
    {"slurm_gpus_per_task", "SLURM_GPUS_PER_TASK", false},
    {"slurm_restart_count", "SLURM_RESTART_COUNT", true},
};

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::variant<int64_t, std::string>>> slurm_allocation_attrs() {
  std::vector<std::pair<std::string, std::variant<int64_t, std::string>>> out;
  if (std::getenv("SLURM_JOB_ID") == nullptr) return out;
  for (const SlurmVar& v : kVars) {
    const char* value = std::getenv(v.env);
    if (value == nullptr) continue;
    const std::string text(value);
    if (v.count && all_digits(text)) {
      out.emplace_back(v.attr, static_cast<int64_t>(std::stoll(text)));
    } else {
      out.emplace_back(v.attr, text);
    }
  }
  return out;
}

void write_slurm_allocation(ReportWriter& writer) {
  for (const auto& [name, value] : slurm_allocation_attrs()) {
    if (const int64_t* i = std::get_if<int64_t>(&value)) {
      writer.set_attr(name, AttrValue(*i));
    } else {
      writer.set_attr(name, AttrValue(std::get<std::string>(value)));
    }
  }
}

}  // namespace semskip::report
