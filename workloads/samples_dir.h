#pragma once
// Where the shipped sample workloads live (the defaults of `--workload <kind>`).

#include <string>

namespace semskip {

// $SEMSKIP_SAMPLES_DIR if set, else the source tree's workloads/samples, else
// <executable>/../share/semskip/workloads/samples. semskip::Error listing the places tried
// when none exists.
std::string samples_dir();
// samples_dir()/name.
std::string sample_path(const std::string& name);

}  // namespace semskip
