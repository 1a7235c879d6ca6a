#include "reports/run_info.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>

#include <hdf5.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "core/version.h"
#include "reports/hdf5_call.h"
#include "reports/report_reader.h"
#include "reports/report_writer.h"

namespace semskip::report {

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string this_host() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

// The arguments of this process as the kernel recorded them, NUL-separated.
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) return {};
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

// Lists travel as JSON arrays of strings inside one string attribute, so every root attribute
// stays a scalar that h5py gives back as one str.
std::string to_json_array(const std::vector<std::string>& items) {
  return nlohmann::json(items).dump();
}

std::vector<std::string> from_json_array(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    SEMSKIP_THROW_MSG("{}: expected a JSON array of strings, got '{}' ({})", what, text, e.what());
  }
}

std::string to_json_int_array(const std::vector<int64_t>& items) { return nlohmann::json(items).dump(); }

std::vector<int64_t> from_json_int_array(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text).get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    SEMSKIP_THROW_MSG("{}: expected a JSON array of integers, got '{}' ({})", what, text, e.what());
  }
}

template <typename T>
T get_attr(const ReportReader& reader, const char* name) {
  AttrValue v = reader.attr(name);
  const T* p = std::get_if<T>(&v);
  SEMSKIP_THROW_IF_NOT_MSG(p != nullptr, "report '{}': root attribute '{}' has the wrong type", reader.path(),
                           name);
  return *p;
}

}  // namespace

std::string format_command_line(const std::vector<std::string>& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) out += ' ';
    const std::string& a = args[i];
    bool plain = !a.empty();
    for (char c : a) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      std::string_view("-_./=:,+@%").find(c) != std::string_view::npos;
      plain = plain && ok;
    }
    if (plain) {
      out += a;
      continue;
    }
    // Single quotes keep everything literal; an embedded quote is closed, escaped, reopened.
    out += '\'';
    for (char c : a) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (!starts_with(line, "model name")) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos) return trim(line.substr(colon + 1));
  }
  return "unknown";
}

std::string hdf5_library_version() {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return "unknown";
  return fmt::format("{}.{}.{}", major, minor, release);
}

std::string parse_user_metadata(const std::vector<std::string>& entries) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const std::string& e : entries) {
    const size_t eq = e.find('=');
    SEMSKIP_THROW_IF_NOT_MSG(eq != std::string::npos, "--metadata '{}': expected key=value", e);
    const std::string key = e.substr(0, eq);
    bool ok = !key.empty();
    for (char c : key) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.');
    }
    SEMSKIP_THROW_IF_NOT_MSG(ok, "--metadata '{}': the key must be non-empty letters, digits, '_', '-' or '.'", e);
    SEMSKIP_THROW_IF_NOT_MSG(!out.contains(key), "--metadata '{}': key '{}' given twice", e, key);
    const std::string value = e.substr(eq + 1);
    const std::string problem = detail::utf8_problem(value);
    SEMSKIP_THROW_IF_NOT_MSG(problem.empty(), "--metadata '{}': {}", e, problem);
    out[key] = value;
  }
  return out.dump();
}

RunInfo collect_run_info() {
  RunInfo info;
  info.semskip_version = version();
  info.git_revision = semskip::git_revision();
  info.created_utc = utc_now_iso8601();
  info.command_line = format_command_line(own_arguments());
  info.world_size = 1;
  info.hosts = {this_host()};
  info.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  info.slurm_array_job_id = env_or_empty("SLURM_ARRAY_JOB_ID");
  info.slurm_array_task_id = env_or_empty("SLURM_ARRAY_TASK_ID");
  info.hdf5_version = hdf5_library_version();
  info.cpu_model = cpu_model_name();
  return info;
}

void write_run_info(ReportWriter& writer, const RunInfo& info) {
  try {
    const nlohmann::json parsed = nlohmann::json::parse(info.config_json);
    (void)parsed;
  } catch (const nlohmann::json::exception& e) {
    SEMSKIP_THROW_MSG("report '{}': config_json is not valid JSON: {}", writer.path(), e.what());
  }
  try {
    SEMSKIP_THROW_IF_NOT_MSG(nlohmann::json::parse(info.user_metadata_json).is_object(), "not an object");
  } catch (const std::exception& e) {
    SEMSKIP_THROW_MSG("report '{}': user_metadata is not a JSON object: {}", writer.path(), e.what());
  }
  SEMSKIP_THROW_IF_NOT_MSG(info.gpu_memory_bytes.size() == info.gpus.size(),
                           "report '{}': {} GPU memory sizes for {} GPUs", writer.path(),
                           info.gpu_memory_bytes.size(), info.gpus.size());
  SEMSKIP_THROW_IF_NOT_MSG(info.world_size >= 1, "report '{}': world_size must be at least 1, got {}",
                           writer.path(), info.world_size);
  writer.set_attr(kSchemaVersionAttr, info.schema_version);
  writer.set_attr("semskip_version", info.semskip_version);
  writer.set_attr("git_revision", info.git_revision);
  writer.set_attr("created_utc", info.created_utc);
  writer.set_attr("command_line", info.command_line);
  writer.set_attr("config_json", info.config_json);
  writer.set_attr("world_size", info.world_size);
  writer.set_attr("hosts", to_json_array(info.hosts));
  writer.set_attr("gpus", to_json_array(info.gpus));
  writer.set_attr("slurm_job_id", info.slurm_job_id);
  writer.set_attr("slurm_array_job_id", info.slurm_array_job_id);
  writer.set_attr("slurm_array_task_id", info.slurm_array_task_id);
  writer.set_attr("torch_version", info.torch_version);
  writer.set_attr("faiss_version", info.faiss_version);
  writer.set_attr("mpi_version", info.mpi_version);
  writer.set_attr("hdf5_version", info.hdf5_version);
  writer.set_attr("cuda_version", info.cuda_version);
  writer.set_attr("nccl_version", info.nccl_version);
  writer.set_attr("cpu_model", info.cpu_model);
  writer.set_attr("torch_threads", info.torch_threads);
  writer.set_attr("omp_threads", info.omp_threads);
  writer.set_attr("gpu_memory_bytes", to_json_int_array(info.gpu_memory_bytes));
  writer.set_attr("user_metadata", info.user_metadata_json);
}

void check_report_complete(const ReportReader& reader) {
  const std::string status =
      reader.has_attr(kStatusAttr) ? attr_to_string(reader.attr(kStatusAttr)) : std::string("(missing)");
  SEMSKIP_THROW_IF_NOT_MSG(status == kStatusComplete,
                           "report '{}' is incomplete: root attribute '{}' is '{}', not '{}' (the run that wrote "
                           "it stopped before finishing)",
                           reader.path(), kStatusAttr, status, kStatusComplete);
}

RunInfo read_run_info(const ReportReader& reader) {
  SEMSKIP_THROW_IF_NOT_MSG(reader.has_attr(kSchemaVersionAttr),
                           "'{}' is not a semskip report (no root attribute '{}')", reader.path(),
                           kSchemaVersionAttr);
  check_report_complete(reader);
  RunInfo info;
  info.schema_version = get_attr<int64_t>(reader, kSchemaVersionAttr);
  info.semskip_version = get_attr<std::string>(reader, "semskip_version");
  info.git_revision = get_attr<std::string>(reader, "git_revision");
  info.created_utc = get_attr<std::string>(reader, "created_utc");
  info.command_line = get_attr<std::string>(reader, "command_line");
  info.config_json = get_attr<std::string>(reader, "config_json");
  info.world_size = get_attr<int64_t>(reader, "world_size");
  const std::string where = fmt::format("report '{}': root attribute", reader.path());
  info.hosts = from_json_array(get_attr<std::string>(reader, "hosts"), where + " 'hosts'");
  info.gpus = from_json_array(get_attr<std::string>(reader, "gpus"), where + " 'gpus'");
  info.slurm_job_id = get_attr<std::string>(reader, "slurm_job_id");
  info.slurm_array_job_id = get_attr<std::string>(reader, "slurm_array_job_id");
  info.slurm_array_task_id = get_attr<std::string>(reader, "slurm_array_task_id");
  info.torch_version = get_attr<std::string>(reader, "torch_version");
  info.faiss_version = get_attr<std::string>(reader, "faiss_version");
  info.mpi_version = get_attr<std::string>(reader, "mpi_version");
  info.hdf5_version = get_attr<std::string>(reader, "hdf5_version");
  info.cuda_version = get_attr<std::string>(reader, "cuda_version");
  info.nccl_version = get_attr<std::string>(reader, "nccl_version");
  info.cpu_model = get_attr<std::string>(reader, "cpu_model");
  info.torch_threads = get_attr<int64_t>(reader, "torch_threads");
  info.omp_threads = get_attr<int64_t>(reader, "omp_threads");
  info.gpu_memory_bytes =
      from_json_int_array(get_attr<std::string>(reader, "gpu_memory_bytes"), where + " 'gpu_memory_bytes'");
  info.user_metadata_json = get_attr<std::string>(reader, "user_metadata");
  return info;
}

}  // namespace semskip::report
