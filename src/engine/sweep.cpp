#include "engine/sweep.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "reports/table_text.h"

namespace semskip {

std::string sweep_family(const Descriptor& policy, const std::string& index) {
  std::string f = policy.name();
  if (policy.has("target")) f += ",target=" + policy.get_string("target", "");
  if (!index.empty()) f += ",index=" + index;
  return f;
}

std::vector<SweepSelection> select_configurations(const std::vector<SweepCandidate>& candidates, double target) {
  std::vector<SweepSelection> out;
  std::map<std::string, size_t> slot;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const SweepCandidate& c = candidates[i];
    auto [it, inserted] = slot.emplace(c.family, out.size());
    if (inserted) out.push_back({c.family, -1});
    SweepSelection& sel = out[it->second];
    if (c.top1 < target) continue;
    if (sel.selected < 0) {
      sel.selected = static_cast<int64_t>(i);
      continue;
    }
    const SweepCandidate& best = candidates[static_cast<size_t>(sel.selected)];
    if (c.saved_net > best.saved_net || (c.saved_net == best.saved_net && c.top1 > best.top1))
      sel.selected = static_cast<int64_t>(i);
  }
  return out;
}

void select_on_tune(SweepOutcome& out, std::vector<SweepConfiguration>& to_eval) {
  std::vector<SweepCandidate> cands;
  out.families.clear();
  for (const PolicySummary& s : out.tune) {
    out.families.push_back(sweep_family(Descriptor::parse(s.policy), s.index));
    cands.push_back({out.families.back(), s.accuracy.top1_agreement.value, s.flops_saved_net});
  }
  out.selection = select_configurations(cands, out.target_agreement);
  to_eval.clear();
  out.eval_tune_row.clear();
  for (const SweepSelection& sel : out.selection) {
    if (sel.selected < 0) continue;
    const PolicySummary& s = out.tune[static_cast<size_t>(sel.selected)];
    to_eval.push_back({s.policy, s.index});
    out.eval_tune_row.push_back(sel.selected);
  }
}

namespace {

struct SweepColumns {
  std::vector<std::string> split, family, policy, index, unit;
  std::vector<int64_t> selected, n_requests, n_units;
  std::vector<double> top1, top1_lo, top1_hi, net, net_lo, net_hi, hit, hit_lo, hit_hi, gross, kl;

  void add(const std::string& which, const std::string& fam, bool sel, const PolicySummary& s) {
    split.push_back(which);
    family.push_back(fam);
    policy.push_back(s.policy);
    index.push_back(s.index);
    unit.push_back(s.bootstrap_unit);
    selected.push_back(sel ? 1 : 0);
    n_requests.push_back(s.n_requests);
    n_units.push_back(s.n_units);
    top1.push_back(s.accuracy.top1_agreement.value);
    top1_lo.push_back(s.accuracy.top1_agreement.lo);
    top1_hi.push_back(s.accuracy.top1_agreement.hi);
    net.push_back(s.flops_saved_net);
    net_lo.push_back(s.flops_saved_net_ci.lo);
    net_hi.push_back(s.flops_saved_net_ci.hi);
    hit.push_back(s.hit_rate);
    hit_lo.push_back(s.hit_rate_ci.lo);
    hit_hi.push_back(s.hit_rate_ci.hi);
    gross.push_back(s.flops_saved_gross);
    kl.push_back(s.accuracy.kl.value);
  }
};

}  // namespace

report::Table sweep_table(const SweepOutcome& s) {
  SweepColumns c;
  std::vector<bool> chosen(s.tune.size(), false);
  for (int64_t r : s.eval_tune_row) chosen[static_cast<size_t>(r)] = true;
  for (size_t i = 0; i < s.tune.size(); ++i) c.add("tune", s.families[i], chosen[i], s.tune[i]);
  for (size_t i = 0; i < s.eval.size(); ++i)
    c.add("eval", s.families[static_cast<size_t>(s.eval_tune_row[i])], true, s.eval[i]);
  report::Table t;
  t.add("split", c.split).add("family", c.family).add("selected", c.selected).add("policy", c.policy);
  t.add("index", c.index).add("n_requests", c.n_requests).add("bootstrap_unit", c.unit).add("n_bootstrap_units", c.n_units);
  t.add("top1_agreement", c.top1).add("top1_agreement_lo", c.top1_lo).add("top1_agreement_hi", c.top1_hi);
  t.add("flops_saved_net", c.net).add("flops_saved_net_lo", c.net_lo).add("flops_saved_net_hi", c.net_hi);
  t.add("flops_saved_gross", c.gross).add("hit_rate", c.hit).add("hit_rate_lo", c.hit_lo).add("hit_rate_hi", c.hit_hi);
  t.add("kl", c.kl);
  return t;
}

namespace {
std::string pct_ci(const Interval& i) { return fmt::format("{:.1f}% [{:.1f}, {:.1f}]", 100 * i.value, 100 * i.lo, 100 * i.hi); }
}  // namespace

std::string format_sweep_text(const SweepOutcome& s) {
  using report::TextColumn;
  TextColumn policy{"policy (selected on tune)", false, {}}, index{"index", false, {}},
      net{"eval saved_net [95% CI]", true, {}}, top1{"eval top1_agree [95% CI]", true, {}},
      tnet{"tune saved_net", true, {}}, ttop1{"tune top1_agree", true, {}};
  for (size_t i = 0; i < s.eval.size(); ++i) {
    const PolicySummary& e = s.eval[i];
    const PolicySummary& t = s.tune[static_cast<size_t>(s.eval_tune_row[i])];
    policy.cells.push_back(e.policy);
    index.cells.push_back(e.index.empty() ? "-" : e.index);
    net.cells.push_back(pct_ci(e.flops_saved_net_ci));
    top1.cells.push_back(pct_ci(e.accuracy.top1_agreement));
    tnet.cells.push_back(fmt::format("{:.1f}%", 100 * t.flops_saved_net));
    ttop1.cells.push_back(fmt::format("{:.1f}%", 100 * t.accuracy.top1_agreement.value));
  }
  std::string out = fmt::format("sweep: {} configurations on tune ({} requests, {} units), selected at ≥ {:.1f}% "
                                "top-1 agreement on tune, reported on eval ({} requests, {} units)\n",
                                s.tune.size(), s.n_requests_tune, s.n_units_tune, 100 * s.target_agreement,
                                s.n_requests_eval, s.n_units_eval);
  if (!s.eval.empty()) out += report::render_text({policy, index, net, top1, tnet, ttop1});
  for (const SweepSelection& sel : s.selection)
    if (sel.selected < 0)
      out += fmt::format("{}: no configuration reached {:.1f}% top-1 agreement on tune\n", sel.family,
                         100 * s.target_agreement);
  return out;
}

report::Table orders_table(const OrdersStudy& s) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> order;
  std::vector<double> top1, hit, net;
  for (size_t p = 0; p < s.runs.size(); ++p) {
    for (size_t k = 0; k < s.runs[p].size(); ++k) {
      const PolicySummary& r = s.runs[p][k];
      policy.push_back(s.policy[p]);
      index.push_back(s.index[p]);
      order.push_back(static_cast<int64_t>(k));
      top1.push_back(r.accuracy.top1_agreement.value);
      hit.push_back(r.hit_rate);
      net.push_back(r.flops_saved_net);
    }
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("order", order);
  t.add("top1_agreement", top1).add("hit_rate", hit).add("flops_saved_net", net);
  return t;
}

std::string format_orders_text(const OrdersStudy& s) {
  using report::TextColumn;
  TextColumn policy{"policy", false, {}}, top1{"top1_agree min/median/max", true, {}},
      hit{"hit_rate min/median/max", true, {}}, net{"saved_net min/median/max", true, {}};
  auto spread = [](std::vector<double> v) {
    SEMSKIP_ASSERT(!v.empty());
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    const double med = n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return fmt::format("{:.1f}/{:.1f}/{:.1f}%", 100 * v.front(), 100 * med, 100 * v.back());
  };
  size_t n_orders = 0;
  for (size_t p = 0; p < s.runs.size(); ++p) {
    std::vector<double> a, h, n;
    for (const PolicySummary& r : s.runs[p]) {
      a.push_back(r.accuracy.top1_agreement.value);
      h.push_back(r.hit_rate);
      n.push_back(r.flops_saved_net);
    }
    n_orders = s.runs[p].size();
    policy.cells.push_back(s.policy[p]);
    top1.cells.push_back(spread(a));
    hit.cells.push_back(spread(h));
    net.cells.push_back(spread(n));
  }
  if (s.runs.empty()) return "orders: no cache policy to rerun\n";
  return fmt::format("over {} request orders (order 0: the workload's):\n", n_orders) +
         report::render_text({policy, top1, hit, net});
}

}  // namespace semskip
