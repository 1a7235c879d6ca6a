#pragma once
// WorkloadSpec: the `--workload` descriptor, "<kind>[:<path>][,key=value...]", parsed in one
// place. Every option of every kind, with its default, is in one table (workload_kinds.cpp)
// that `semskip workload kinds` prints; describe() gives the canonical string with every
// option resolved, and parse(describe()) gives the same spec back (docs/conventions.md rule 9).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace semskip {

enum class BadLinePolicy { error, skip };

enum class OptionType { integer, number, boolean, text, choice };

struct WorkloadOption {
  std::string key;
  std::string default_value;
  OptionType type = OptionType::text;
  std::vector<std::string> choices;  // for OptionType::choice
  std::string help;
};

struct WorkloadKind {
  std::string name;
  std::string summary;
  bool takes_path = false;
  std::string default_sample;  // file under the samples folder used when no path is given
  std::vector<WorkloadOption> options;  // this kind's own options (the common ones apply too)
};

// Every kind, in the order `workload kinds` lists them.
const std::vector<WorkloadKind>& workload_kinds();
// Options every kind accepts: max_requests, on_bad_line, arrivals, seed, length filters.
const std::vector<WorkloadOption>& common_workload_options();
// semskip::Error listing the known kinds when `name` is not one.
const WorkloadKind& find_workload_kind(std::string_view name);

// Values set from command-line flags; they win over the same keys in the spec string.
struct WorkloadOverrides {
  std::optional<int64_t> max_requests;
  std::optional<std::string> on_bad_line;
  std::optional<std::string> arrivals;
  std::optional<uint64_t> seed;
};

class WorkloadSpec {
 public:
  // "sharegpt", "sharegpt:data/sg.json", "synthetic:templates=50,zipf=1.2",
  // "text:doc.txt,chunk=256". A path may contain ':' but not ','; "path=<p>" also works.
  // semskip::Error naming the spec and the problem (unknown kind or key, bad value).
  static WorkloadSpec parse(std::string_view text);

  const std::string& kind() const { return kind_; }
  // The file to read: the given path, or the kind's shipped sample (samples_dir()).
  // Empty for generators that read no file.
  std::string path() const;
  bool path_given() const { return !path_.empty(); }

  // Canonical form: kind:path then every option (common ones last) as key=value, in table
  // order, defaults included.
  std::string describe() const;

  // The value of a known option (its default when not given).
  const std::string& get(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_double(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  // Sets a known option, validated as parse does.
  void set(std::string_view key, const std::string& value);
  void apply(const WorkloadOverrides& o);

  // Common options, typed.
  std::optional<int64_t> max_requests() const;  // nullopt: all
  BadLinePolicy on_bad_line() const;
  uint64_t seed() const;
  // "none" | "poisson:<rate>" | "trace:<field>"
  const std::string& arrivals() const { return get("arrivals"); }
  // The JSON field of the arrival-time trace, when arrivals is "trace:<field>".
  std::optional<std::string> trace_field() const;
  // output_len: nullopt for "reference" (the reference's token count), else the number.
  std::optional<int64_t> output_len() const;

  // For messages: the string as the user wrote it.
  const std::string& text() const { return text_; }

 private:
  const WorkloadOption& option(std::string_view key) const;
  void validate(const WorkloadOption& opt, const std::string& value) const;

  std::string text_;
  std::string kind_;
  std::string path_;
  std::map<std::string, std::string, std::less<>> values_;  // every option, defaults included
};

}  // namespace semskip
