#pragma once

namespace semskip {

// semskip's release version ("0.1.0").
const char* version();
// Short git revision of the build's source tree, "-dirty" when it had uncommitted changes.
const char* git_revision();

}  // namespace semskip
