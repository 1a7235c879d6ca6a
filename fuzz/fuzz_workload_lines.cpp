// libFuzzer target: the workload file loaders (jsonl, ShareGPT, LMSYS, pairs, text) on
// arbitrary file contents, tokenized with the embedded tiny-dense tokenizer. The first byte
// picks the loader, the rest is the file. Every input either yields requests or is refused
// with semskip::Error naming the file; under on_bad_line=skip a malformed line never stops
// the stream. A crash, a sanitiser report or any other exception is a finding.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "workloads/workload.h"

namespace {

const char* const kKinds[] = {"jsonl", "sharegpt", "lmsys", "pairs", "text"};

struct Scratch {
  std::string path;
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/semskip_fuzz_workload_XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0) std::abort();
    ::close(fd);
    path = tmpl;
  }
  ~Scratch() { ::unlink(path.c_str()); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Scratch scratch;
  static const auto tok = std::make_shared<const semskip::Tokenizer>(
      semskip::Tokenizer::from_file(SEMSKIP_SOURCE_DIR "/models/tiny-dense/tokenizer.json"));
  if (size == 0) return 0;
  const std::string kind = kKinds[data[0] % (sizeof(kKinds) / sizeof(kKinds[0]))];
  const bool skip = (data[0] / 8) % 2 == 1;
  {
    std::ofstream out(scratch.path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), std::streamsize(size - 1));
  }
  semskip::WorkloadContext ctx;
  ctx.tokenizer = tok;
  const std::string spec_text =
      kind + ":" + scratch.path + ",max_requests=64" + (skip ? ",on_bad_line=skip" : "");
  try {
    auto w = semskip::Workload::open(semskip::WorkloadSpec::parse(spec_text), ctx);
    while (auto r = w->next())
      for (int32_t id : r->prompt_tokens)
        if (id < 0 || id >= tok->vocab_size()) std::abort();
  } catch (const semskip::Error& e) {
    // Every refusal names the file (or, for a spec error, the spec that holds its path).
    if (std::string(e.what()).find(scratch.path) == std::string::npos) {
      std::fprintf(stderr, "message without the file: %s\n", e.what());
      std::abort();
    }
  }
  return 0;
}
