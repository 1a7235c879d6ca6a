// Encode throughput of the byte-level BPE tokenizer (MB/s of UTF-8 input, tokens/s).
//   bench_tokenizer [--text_file=PATH] [--tokenizer=tokenizer.json] [Google Benchmark flags]
// Default text: the texts of tests/data/tokenizers/qwen2style/cases.jsonl; default tokenizer:
// the embedded default model's. "cold" starts every repetition with an empty piece cache (the
// first pass over a text), "warm" reuses one tokenizer (a long-running server).
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "core/paths.h"
#include "core/strings.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string g_text;
std::string g_tokenizer;

std::string default_text() {
  std::ifstream in(std::string(SEMSKIP_SOURCE_DIR) + "/tests/data/tokenizers/qwen2style/cases.jsonl");
  std::string text, line;
  while (std::getline(in, line)) {
    if (!line.empty()) text += nlohmann::json::parse(line).at("text").get<std::string>() + "\n\n";
  }
  return text;
}

void report(benchmark::State& state, size_t n_tokens) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_text.size()));
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n_tokens), benchmark::Counter::kIsRate);
  state.counters["n_tokens"] = static_cast<double>(n_tokens);
}

void BM_TokenizerEncodeCold(benchmark::State& state) {
  size_t n_tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto tok = semskip::Tokenizer::from_file(g_tokenizer);
    state.ResumeTiming();
    const std::vector<int32_t> ids = tok.encode(g_text);
    benchmark::DoNotOptimize(ids.data());
    n_tokens = ids.size();
  }
  report(state, n_tokens);
}

void BM_TokenizerEncodeWarm(benchmark::State& state) {
  const auto tok = semskip::Tokenizer::from_file(g_tokenizer);
  benchmark::DoNotOptimize(tok.encode(g_text).data());  // fills the piece cache, untimed
  size_t n_tokens = 0;
  for (auto _ : state) {
    const std::vector<int32_t> ids = tok.encode(g_text);
    benchmark::DoNotOptimize(ids.data());
    n_tokens = ids.size();
  }
  report(state, n_tokens);
}

BENCHMARK(BM_TokenizerEncodeCold)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TokenizerEncodeWarm)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  std::string text_file;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--text_file=", 12) == 0) {
      text_file = argv[i] + 12;
    } else if (std::strncmp(argv[i], "--tokenizer=", 12) == 0) {
      g_tokenizer = argv[i] + 12;
    } else {
      rest.push_back(argv[i]);
    }
  }
  g_text = text_file.empty() ? default_text() : semskip::read_file(text_file);
  if (g_tokenizer.empty()) g_tokenizer = semskip::embedded_model_dir(semskip::kDefaultModel) + "/tokenizer.json";
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::AddCustomContext("text_bytes", std::to_string(g_text.size()));
  benchmark::AddCustomContext("tokenizer", g_tokenizer);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
