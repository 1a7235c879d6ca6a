#pragma once
// Request: one unit of work that the engine runs — a prompt to prefill, optionally a number
// of tokens to generate, and what to compare the result with.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace semskip {

struct Request {
  // 0-based position in the workload stream (after filters and --max-requests), unique in a
  // workload; shards keep the global id so per-rank records can be merged.
  int64_t id = -1;
  std::string source_id;  // the record's own id when the format has one ("id" in ShareGPT)

  std::vector<int32_t> prompt_tokens;  // [n_tokens_prompt], the chat template already applied
  std::string prompt_text;             // the text that was tokenized (empty for token-only input)

  // Reference continuation (the dataset's answer); empty when the workload has none.
  std::vector<int32_t> reference_tokens;  // [n_tokens_reference]
  std::string reference_text;

  // Multiple-choice task: the model's log-likelihood of each choice after the prompt is
  // scored; `label` is the index of the correct one.
  std::vector<std::string> choices;
  std::optional<int32_t> label;

  // Tokens to generate after the prompt; 0 means the prompt is only scored (teacher-forced).
  int64_t n_tokens_output = 0;
  // Seconds from the start of the run at which the request arrives (serving studies);
  // 0 for every request of an offline workload.
  double arrival_s = 0.0;
  // Requests of one group mean the same thing (a paraphrase pair, a synthetic template):
  // a cache hit between members of a group is a correct hit. -1: no group.
  int64_t group = -1;
  // The unit the request belongs to, "<unit>:<name>": "document:<k>" (the k-th blank-line
  // separated document of a text workload), "conversation:<file:line>" (the chat record whose
  // turns it continues); empty: the request is its own unit. Requests of one unit are
  // correlated: bootstrap intervals and the tune/eval split draw whole units.
  std::string document;

  // Where the request came from, for messages: file and 1-based line (0 for generators).
  std::string source_file;
  int64_t source_line = 0;

  int64_t n_tokens_prompt() const { return static_cast<int64_t>(prompt_tokens.size()); }
  // "file:line", or the generator's name.
  std::string where() const {
    return source_line > 0 ? source_file + ":" + std::to_string(source_line) : source_file;
  }
};

}  // namespace semskip
