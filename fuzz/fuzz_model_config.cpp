// libFuzzer target: config.json parsing (ModelConfig::from_json) on arbitrary bytes. Text
// that is not JSON is left to nlohmann's parser; JSON is either accepted as a model shape or
// refused with semskip::Error naming the file. A JSON type error escaping as
// nlohmann::json::exception (an unnamed "type must be number"), a crash or a sanitiser
// report is a finding.

#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const semskip::ModelConfig c = semskip::ModelConfig::from_json(j, "config.json");
    if (c.n_layers < 1 || c.hidden_size < 1 || c.vocab_size < 1) std::abort();  // accepted a shape that cannot run
  } catch (const semskip::Error& e) {
    if (std::string(e.what()).find("config.json") == std::string::npos) std::abort();
  }
  return 0;
}
