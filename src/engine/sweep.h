#pragma once
// The tune/eval protocol of `semskip run --split` / `--tune-workload` (issue: configurations
// must not be chosen on the data they are reported on). Every configuration runs on the tune
// part; per policy kind ("family": the descriptor's name, its target and the index) the
// configuration with the best net FLOPs saved among those reaching the target top-1 agreement on
// tune is selected; only the selected ones run on the eval part, and the eval figures are the
// ones reported, with the tune figures beside them (the /sweep table says which split each row
// is from). The orders study (--orders) is here too: cache policies rerun over request
// permutations, the spread of agreement, hit rate and net saving.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/run_summary.h"
#include "reports/table.h"
#include "skip/descriptor.h"

namespace semskip {

// "residual,target=mlp,index=faiss:IVF64,Flat|nprobe=8": what a configuration competes within.
std::string sweep_family(const Descriptor& policy, const std::string& index);

struct SweepCandidate {
  std::string family;
  double top1 = 0;       // top-1 agreement on tune
  double saved_net = 0;  // net FLOPs saved on tune
};

// Per family (in order of first appearance), the candidate with the largest saved_net among
// those with top1 ≥ target (ties: the higher top1, then the first); -1 where none reaches it.
struct SweepSelection {
  std::string family;
  int64_t selected = -1;  // index into the candidates
};
std::vector<SweepSelection> select_configurations(const std::vector<SweepCandidate>& candidates, double target);

struct SweepOutcome {
  double target_agreement = 0;
  std::vector<PolicySummary> tune;       // every configuration on tune
  std::vector<std::string> families;     // [tune.size()]
  std::vector<SweepSelection> selection;
  std::vector<PolicySummary> eval;       // the selected configurations on eval, in selection order
  std::vector<int64_t> eval_tune_row;    // [eval.size()]: the tune row of each eval row
  int64_t n_requests_tune = 0, n_requests_eval = 0, n_units_tune = 0, n_units_eval = 0;
};

// A configuration: a policy descriptor and its index ("" without a cache).
struct SweepConfiguration {
  std::string policy, index;
};

// The selection of `tune` rows at `target`, and the configurations to run on eval.
void select_on_tune(SweepOutcome& out, std::vector<SweepConfiguration>& to_eval);

// /sweep: one row per tune configuration and per eval row (column `split`), with `family`,
// `selected` (1 for the chosen tune rows and every eval row) and the figures with intervals.
report::Table sweep_table(const SweepOutcome& s);
// The printed form: the eval rows with the tune figures beside them, families without a
// selection named.
std::string format_sweep_text(const SweepOutcome& s);

// --orders: each cache policy's summary under each order (order 0: the workload's).
struct OrdersStudy {
  std::vector<std::string> policy, index;          // [n_policies]
  std::vector<std::vector<PolicySummary>> runs;    // [n_policies][n_orders]
};
// /orders: one row per (policy, order): top1_agreement, hit_rate, flops_saved_net.
report::Table orders_table(const OrdersStudy& s);
// min / median / max over the orders per policy.
std::string format_orders_text(const OrdersStudy& s);

}  // namespace semskip
