#include "reports/report_merge.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/strings.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"

namespace semskip::report {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string column_type(const Column& c) {
  if (std::holds_alternative<std::vector<int64_t>>(c.data)) return "int64";
  if (std::holds_alternative<std::vector<double>>(c.data)) return "float64";
  return "string";
}

std::vector<std::string> with_always_varying(const std::vector<std::string>& vary) {
  std::vector<std::string> out(vary);
  for (const char* k : kAlwaysVaryingKeys) out.emplace_back(k);
  return out;
}

// `source` repeated for each row, then the table's columns.
Table with_source_column(const Table& t, int64_t source, const std::string& file, const std::string& name) {
  SEMSKIP_THROW_IF_NOT_MSG(t.find("source") == nullptr,
                           "report '{}': table '{}' already has a column 'source', which merging adds", file, name);
  Table out;
  out.add("source", std::vector<int64_t>(t.n_rows(), source));
  for (const Column& c : t.columns()) {
    std::visit([&](const auto& v) { out.add(c.name, v); }, c.data);
  }
  return out;
}

template <typename T>
void append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// Rows of `b` after those of `a`; the columns were checked to match by name and type.
void append_rows(Table& a, const Table& b) {
  Table out;
  for (const Column& ca : a.columns()) {
    const Column* cb = b.find(ca.name);
    std::visit(
        [&](const auto& va) {
          auto merged = va;
          append(merged, std::get<std::decay_t<decltype(va)>>(cb->data));
          out.add(ca.name, std::move(merged));
        },
        ca.data);
  }
  a = std::move(out);
}

bool same_attrs(const std::vector<std::pair<std::string, AttrValue>>& a,
                const std::vector<std::pair<std::string, AttrValue>>& b) {
  return a == b;
}

}  // namespace

json report_config(const ReportReader& r) {
  SEMSKIP_THROW_IF_NOT_MSG(r.has_attr("config_json"), "report '{}': no root attribute 'config_json'", r.path());
  json j;
  try {
    j = json::parse(attr_to_string(r.attr("config_json")));
  } catch (const json::exception& e) {
    SEMSKIP_THROW_MSG("report '{}': root attribute 'config_json' is not JSON: {}", r.path(), e.what());
  }
  SEMSKIP_THROW_IF_NOT_MSG(j.is_object(), "report '{}': root attribute 'config_json' is not a JSON object", r.path());
  return j;
}

std::vector<std::string> config_differences(const json& a, const json& b, const std::vector<std::string>& ignore) {
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  std::vector<std::string> out;
  for (const std::string& k : keys) {
    if (std::find(ignore.begin(), ignore.end(), k) != ignore.end()) continue;
    const json va = a.contains(k) ? a[k] : json();
    const json vb = b.contains(k) ? b[k] : json();
    if (va != vb) out.push_back(k);
  }
  return out;
}

Table sources_table(const std::vector<const ReportReader*>& readers) {
  std::vector<int64_t> source, world_size;
  std::vector<std::string> file, created, command_line, revision, hosts, job, array_job, array_task, metadata, config;
  for (size_t i = 0; i < readers.size(); ++i) {
    const RunInfo info = read_run_info(*readers[i]);
    source.push_back(static_cast<int64_t>(i));
    file.push_back(fs::absolute(readers[i]->path()).lexically_normal().string());
    created.push_back(info.created_utc);
    command_line.push_back(info.command_line);
    revision.push_back(info.git_revision);
    world_size.push_back(info.world_size);
    hosts.push_back(json(info.hosts).dump());
    job.push_back(info.slurm_job_id);
    array_job.push_back(info.slurm_array_job_id);
    array_task.push_back(info.slurm_array_task_id);
    metadata.push_back(info.user_metadata_json);
    config.push_back(info.config_json);
  }
  Table t;
  t.add("source", source)
      .add("file", file)
      .add("created_utc", created)
      .add("command_line", command_line)
      .add("git_revision", revision)
      .add("world_size", world_size)
      .add("hosts", hosts)
      .add("slurm_job_id", job)
      .add("slurm_array_job_id", array_job)
      .add("slurm_array_task_id", array_task)
      .add("user_metadata", metadata)
      .add("config_json", config);
  return t;
}

void check_mergeable(const std::vector<const ReportReader*>& readers, const std::vector<std::string>& vary) {
  SEMSKIP_THROW_IF_NOT_MSG(readers.size() >= 2, "merging needs at least two reports, got {}", readers.size());
  const ReportReader& first = *readers[0];
  const RunInfo info0 = read_run_info(first);
  const json config0 = report_config(first);
  const std::string command0 = first.has_attr("command") ? attr_to_string(first.attr("command")) : "";
  const std::vector<std::string> ignore = with_always_varying(vary);
  std::set<std::string> paths;
  std::map<std::string, std::string> seen_configs;  // config without the always-varying keys -> file
  for (const ReportReader* r : readers) {
    const std::string canonical = fs::weakly_canonical(r->path()).string();
    SEMSKIP_THROW_IF_NOT_MSG(paths.insert(canonical).second, "report '{}' is given twice", r->path());
    const RunInfo info = read_run_info(*r);
    auto same = [&](const std::string& field, const std::string& a, const std::string& b) {
      SEMSKIP_THROW_IF_NOT_MSG(a == b, "report '{}': root attribute '{}' is '{}', but '{}' of '{}' (reports of one "
                               "experiment come from one build)", r->path(), field, b, a, first.path());
    };
    same(kSchemaVersionAttr, std::to_string(info0.schema_version), std::to_string(info.schema_version));
    same("semskip_version", info0.semskip_version, info.semskip_version);
    same("git_revision", info0.git_revision, info.git_revision);
    const std::string command = r->has_attr("command") ? attr_to_string(r->attr("command")) : "";
    SEMSKIP_THROW_IF_NOT_MSG(command == command0, "report '{}': root attribute 'command' is '{}', but '{}' of '{}'",
                             r->path(), command, command0, first.path());
    const json config = report_config(*r);
    const std::vector<std::string> diff = config_differences(config0, config, ignore);
    SEMSKIP_THROW_IF_NOT_MSG(diff.empty(),
                             "report '{}': its configuration differs from '{}' in {} (declare the keys that the "
                             "experiment varies with --vary KEY)",
                             r->path(), first.path(), join(diff, ", "));
    SEMSKIP_THROW_IF_NOT_MSG(!r->has_attr("merged_sources"),
                             "report '{}' is itself a merged report; merge its sources instead", r->path());
    // Another shard is another part of the experiment; only the output path and format may differ.
    json key = config;
    key.erase("report");
    key.erase("json");
    const std::string text = key.dump() + "|" + std::to_string(info.world_size);
    const auto [it, fresh] = seen_configs.emplace(text, r->path());
    SEMSKIP_THROW_IF_NOT_MSG(fresh, "reports '{}' and '{}' ran the same configuration: merging both would count "
                             "their requests twice", it->second, r->path());
  }
  // Shards of one run must all be there, each once.
  const int64_t shard_of = config0.value("shard_of", int64_t{0});
  if (shard_of > 0 && std::find(vary.begin(), vary.end(), "shard_of") == vary.end()) {
    std::map<json, std::vector<int64_t>> shards;  // the configuration apart from the shard -> its shard indices
    for (const ReportReader* r : readers) {
      json c = report_config(*r);
      const int64_t index = c.value("shard_index", int64_t{0});
      for (const char* k : kAlwaysVaryingKeys) c.erase(k);
      shards[c].push_back(index);
    }
    for (auto& [c, indices] : shards) {
      std::sort(indices.begin(), indices.end());
      std::vector<std::string> missing;
      for (int64_t s = 0; s < shard_of; ++s) {
        if (!std::binary_search(indices.begin(), indices.end(), s)) missing.push_back(std::to_string(s));
      }
      SEMSKIP_THROW_IF_NOT_MSG(missing.empty(), "the reports hold shards of --shard-of {}, but shard {} {} missing "
                               "(policies {})", shard_of, join(missing, ", "), missing.size() == 1 ? "is" : "are",
                               c.value("policies", json::array()).dump());
    }
  }
  // The same tables, with the same columns, everywhere.
  std::vector<ObjectInfo> objects0;
  for (const ObjectInfo& o : first.list()) {
    if (o.kind != ObjectKind::group) objects0.push_back(o);
  }
  for (const ReportReader* r : readers) {
    std::vector<std::string> names, names0;
    for (const ObjectInfo& o : r->list()) {
      if (o.kind == ObjectKind::group) continue;
      SEMSKIP_THROW_IF_NOT_MSG(o.kind == ObjectKind::table, "report '{}': '{}' is an array; merging joins tables only",
                               r->path(), o.path);
      names.push_back(o.path);
    }
    for (const ObjectInfo& o : objects0) names0.push_back(o.path);
    SEMSKIP_THROW_IF_NOT_MSG(names == names0, "report '{}' has the tables [{}], but '{}' has [{}]", r->path(),
                             join(names, ", "), first.path(), join(names0, ", "));
  }
  for (const ObjectInfo& o : objects0) {
    const Table t0 = first.read_table(o.path);
    for (const ReportReader* r : readers) {
      const Table t = r->read_table(o.path);
      std::vector<std::string> cols, cols0;
      for (const Column& c : t.columns()) cols.push_back(c.name + ":" + column_type(c));
      for (const Column& c : t0.columns()) cols0.push_back(c.name + ":" + column_type(c));
      SEMSKIP_THROW_IF_NOT_MSG(cols == cols0, "report '{}': table '{}' has the columns [{}], but '{}' has [{}]",
                               r->path(), o.path, join(cols, ", "), first.path(), join(cols0, ", "));
    }
  }
}

void merge_reports(const MergeOptions& options) {
  check_report_path(options.output, options.force);
  std::vector<std::unique_ptr<ReportReader>> owned;
  std::vector<const ReportReader*> readers;
  const std::string out_canonical = fs::weakly_canonical(options.output).string();
  for (const std::string& path : options.inputs) {
    SEMSKIP_THROW_IF_NOT_MSG(fs::weakly_canonical(path).string() != out_canonical,
                             "report '{}' is both a source and the output", path);
    owned.push_back(std::make_unique<ReportReader>(path));
    readers.push_back(owned.back().get());
  }
  check_mergeable(readers, options.vary);

  const ReportReader& first = *readers[0];
  RunInfo merged = read_run_info(first);
  const RunInfo here = collect_run_info();
  merged.created_utc = here.created_utc;
  merged.command_line = here.command_line;
  json common = report_config(first);
  std::vector<std::string> varied;
  for (const ReportReader* r : readers) {
    for (const std::string& k : config_differences(common, report_config(*r), {})) {
      if (std::find(varied.begin(), varied.end(), k) == varied.end()) varied.push_back(k);
    }
  }
  std::sort(varied.begin(), varied.end());
  for (const std::string& k : varied) common.erase(k);
  merged.config_json = common.dump();
  merged.world_size = 0;
  merged.hosts.clear();
  merged.gpus.clear();
  merged.gpu_memory_bytes.clear();
  for (const ReportReader* r : readers) {
    const RunInfo info = read_run_info(*r);
    merged.world_size += info.world_size;
    append(merged.hosts, info.hosts);
    append(merged.gpus, info.gpus);
    append(merged.gpu_memory_bytes, info.gpu_memory_bytes);
  }

  ReportWriter writer(fs::absolute(options.output).string());
  // The first source's own attributes (command, model_type, ...) first, then the run info over them.
  for (const auto& [name, value] : first.attrs()) {
    if (name != kStatusAttr) writer.set_attr(name, value);
  }
  write_run_info(writer, merged);
  writer.set_attr("merged_sources", static_cast<int64_t>(readers.size()));
  writer.set_attr("merged_varied_keys", json(varied).dump());
  writer.write_table("/sources", sources_table(readers));
  for (const ObjectInfo& o : first.list()) {
    if (o.kind != ObjectKind::table) continue;
    Table all = with_source_column(first.read_table(o.path), 0, first.path(), o.path);
    for (size_t i = 1; i < readers.size(); ++i) {
      append_rows(all, with_source_column(readers[i]->read_table(o.path), static_cast<int64_t>(i),
                                          readers[i]->path(), o.path));
    }
    writer.write_table(o.path, all);
    // A table's attributes describe the merged table only where every source agrees on them.
    const auto attrs0 = first.attrs(o.path);
    bool agree = true;
    for (const ReportReader* r : readers) agree = agree && same_attrs(attrs0, r->attrs(o.path));
    if (agree) {
      for (const auto& [name, value] : attrs0) writer.set_attr(name, value, o.path);
    }
  }
  writer.commit();
}

}  // namespace semskip::report
