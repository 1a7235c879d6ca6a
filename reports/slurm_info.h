#pragma once
// The SLURM allocation a command ran in, as root attributes beside the ids write_run_info
// records (slurm_job_id, slurm_array_job_id, slurm_array_task_id): partition, node and task
// counts, CPUs and GPUs per task, the node list, how often the job was requeued. Only the
// variables SLURM set are written, so a report made outside SLURM has none of them
// (reports/SCHEMA.md, "Under SLURM").

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace semskip::report {

class ReportWriter;

// (attribute name, value) of every SLURM variable of this process's environment that the
// report records, in a fixed order; integers where SLURM gives a count. Empty outside SLURM.
std::vector<std::pair<std::string, std::variant<int64_t, std::string>>> slurm_allocation_attrs();

// Writes slurm_allocation_attrs() as root attributes.
void write_slurm_allocation(ReportWriter& writer);

}  // namespace semskip::report
