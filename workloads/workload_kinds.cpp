// The one table of workload kinds and their options, with defaults (docs/conventions.md rule 7).
#include "core/error.h"
#include "core/strings.h"
#include "workloads/workload_spec.h"

namespace semskip {

namespace {

using T = OptionType;

WorkloadOption chat_option(const char* dflt) {
  return {"chat", dflt, T::choice, {"auto", "plain", "chatml", "llama3"},
          "chat template: auto follows the model family (qwen2*: chatml, llama: llama3, else plain)"};
}

WorkloadOption turns_option() {
  return {"turns", "first", T::choice, {"first", "all"},
          "first: first user turn → following assistant turn; all: one request per assistant "
          "turn, the conversation so far as prompt"};
}

WorkloadOption output_len_option(const char* dflt) {
  return {"output_len", dflt, T::text, {},
          "tokens to generate: a number, or 'reference' for the reference answer's length"};
}

std::vector<WorkloadKind> make_kinds() {
  return {
      {"sharegpt",
       "ShareGPT JSON array of {id, conversations: [{from: human|gpt|system, value}]} (vLLM "
       "serving benchmark layout), streamed element by element",
       true,
       "sharegpt_sample.json",
       {chat_option("auto"), turns_option(), output_len_option("reference")}},
      {"lmsys",
       "LMSYS-Chat-1M as JSONL: {conversation: [{role, content}], model, language, turn}",
       true,
       "lmsys_sample.jsonl",
       {chat_option("auto"), turns_option(), output_len_option("reference"),
        {"language", "", T::text, {}, "keep only this language (empty: all)"},
        {"min_turns", "0", T::integer, {}, "keep conversations with at least this many turns"},
        {"max_turns", "0", T::integer, {}, "keep conversations with at most this many turns (0: any)"},
        {"model", "", T::text, {}, "keep only conversations with this model (empty: all)"}}},
      {"pairs",
       "GPTCache-style paraphrase pairs, JSONL {origin, similar}: two requests per line, one group",
       true,
       "pairs_sample.jsonl",
       {chat_option("plain"), output_len_option("0"),
        {"order", "interleaved", T::choice, {"interleaved", "origins-first"},
         "interleaved: origin then similar, line by line; origins-first: every origin, then every "
         "similar (a second pass over the file)"}}},
      {"text",
       "plain text, documents separated by blank lines, tokenized and cut into teacher-forced "
       "chunks",
       true,
       "heldout_sample.txt",
       {{"chunk", "128", T::integer, {}, "tokens per chunk"},
        {"min_chunk", "2", T::integer, {}, "a document's last, shorter chunk is kept if it has at "
                                           "least this many tokens"}}},
      {"jsonl",
       "generic JSONL {prompt, reference?, label?, choices?, id?}; with choices and label the "
       "task is scored by log-likelihood of each choice",
       true,
       "tasks_sample.jsonl",
       {chat_option("plain"), output_len_option("reference")}},
      {"vllm-random",
       "vLLM 'random': token prompts of input_len (± range_ratio) after an optional shared "
       "random prefix; prompt ids used as generated",
       false,
       "",
       {{"num", "1000", T::integer, {}, "number of requests"},
        {"input_len", "1024", T::integer, {}, "prompt tokens (after the prefix)"},
        {"output_len", "128", T::integer, {}, "tokens to generate"},
        {"range_ratio", "0", T::number, {}, "lengths drawn uniformly in [len·(1−r), len·(1+r)]"},
        {"prefix_len", "0", T::integer, {}, "random tokens shared by every prompt"}}},
      {"vllm-prefix-repetition",
       "vLLM 'prefix_repetition': num_prefixes random prefixes, each shared by num/num_prefixes "
       "prompts with their own random suffix, shuffled",
       false,
       "",
       {{"num", "1000", T::integer, {}, "number of requests (a multiple of num_prefixes is used)"},
        {"prefix_len", "256", T::integer, {}, "tokens of each shared prefix"},
        {"suffix_len", "256", T::integer, {}, "tokens of each request's own suffix"},
        {"num_prefixes", "10", T::integer, {}, "number of distinct prefixes"},
        {"output_len", "128", T::integer, {}, "tokens to generate"}}},
      {"vllm-sonnet",
       "vLLM 'sonnet': 'Pick as many lines as you can…' followed by a fixed prefix of poem lines "
       "and lines drawn at random (the shipped poem: KJV Psalms)",
       true,
       "psalms.txt",
       {chat_option("auto"),
        {"num", "1000", T::integer, {}, "number of requests"},
        {"input_len", "550", T::integer, {}, "target prompt tokens, template included"},
        {"prefix_len", "200", T::integer, {}, "target tokens of the shared prefix"},
        {"output_len", "150", T::integer, {}, "tokens to generate"}}},
      {"synthetic",
       "requests from n templates with Zipf(s) popularity, slot fillers and word-level "
       "paraphrase noise; group = template",
       false,
       "",
       {chat_option("plain"),
        {"num", "1000", T::integer, {}, "number of requests"},
        {"templates", "100", T::integer, {}, "number of templates"},
        {"zipf", "1.0", T::number, {}, "Zipf exponent s of template popularity (0: uniform)"},
        {"paraphrase", "0.0", T::number, {}, "probability that a word with synonyms is replaced"},
        {"fillers", "10", T::integer, {}, "distinct values of each free slot of a template"},
        {"output_len", "64", T::integer, {}, "tokens to generate"}}},
  };
}

}  // namespace

const std::vector<WorkloadKind>& workload_kinds() {
  static const std::vector<WorkloadKind> kinds = make_kinds();
  return kinds;
}

const std::vector<WorkloadOption>& common_workload_options() {
  static const std::vector<WorkloadOption> opts = {
      {"max_requests", "all", T::text, {}, "stop after this many requests ('all' or a number)"},
      {"on_bad_line", "error", T::choice, {"error", "skip"},
       "a malformed record stops the run (error) or is counted and skipped (skip)"},
      {"arrivals", "none", T::text, {},
       "none (all at t=0) | poisson:<requests/s> | trace:<JSON field in seconds>"},
      {"seed", "0", T::integer, {}, "seed of every random choice (generators, arrivals)"},
      {"min_prompt", "0", T::integer, {}, "drop requests with fewer prompt tokens (0: off)"},
      {"max_prompt", "0", T::integer, {}, "drop requests with more prompt tokens (0: off)"},
      {"min_output", "0", T::integer, {}, "drop requests with fewer output tokens (0: off)"},
      {"max_total", "0", T::integer, {}, "drop requests with more prompt+output tokens (0: off)"},
  };
  return opts;
}

const WorkloadKind& find_workload_kind(std::string_view name) {
  std::vector<std::string> names;
  for (const WorkloadKind& k : workload_kinds()) {
    if (k.name == name) return k;
    names.push_back(k.name);
  }
  SEMSKIP_THROW_MSG("unknown workload kind '{}' (known: {})", name, join(names, ", "));
}

}  // namespace semskip
