#pragma once
// The KV cache of a skipping run is the model's own (model/kv_cache.h): its per-layer
// visibility holds the keys that kv=mask hides. The name stays for the engine's callers.

#include "model/kv_cache.h"

namespace semskip {

using SkipKvCache = KvCache;

}  // namespace semskip
