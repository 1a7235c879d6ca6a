#pragma once
// Where the embedded default models live.

#include <string>

namespace semskip {

// Folder of embedded model `name` ("tiny-dense", "tiny-moe"): $SEMSKIP_MODELS_DIR/<name> if
// set, else the source tree's models/<name>, else <executable>/../share/semskip/models/<name>.
// semskip::Error listing the places tried when none exists.
std::string embedded_model_dir(const std::string& name);

// The default model of every command that needs one.
inline constexpr const char* kDefaultModel = "tiny-dense";

}  // namespace semskip
