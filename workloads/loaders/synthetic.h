#pragma once
// The synthetic generator's parts that tests and tools check against their analytic meaning.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "workloads/rng.h"

namespace semskip {

// Popularity of template k (0-based rank): (k+1)^-s / Σ_j (j+1)^-s. s = 0 is uniform.
std::vector<double> zipf_probabilities(int64_t n, double s);

// The built-in vocabulary of the synthetic generator: sentence patterns with slots, topics
// and openers that make templates distinct, free-slot values, and synonym groups.
class SyntheticVocabulary {
 public:
  static const SyntheticVocabulary& get();

  // Distinct templates the vocabulary can make (patterns × topics × openers).
  int64_t max_templates() const;
  // Values each free slot has; `fillers` may not exceed it.
  int64_t max_fillers() const;
  // The prompt of template t with free-slot choices filler[s] in [0, fillers) for each slot
  // the pattern has, in order of appearance; exactly reproducible.
  std::string render(int64_t t, int64_t fillers, Rng& rng) const;
  // Replaces each word that has synonyms, with probability p, by another of its group
  // (capitalisation and trailing punctuation kept).
  std::string paraphrase(const std::string& text, double p, Rng& rng) const;
  // A reference answer for template t (a few generic sentences, seeded).
  std::string answer(int64_t t, Rng& rng) const;
  // Number of words in `text` that have synonyms.
  int64_t n_paraphrasable(const std::string& text) const;

 private:
  SyntheticVocabulary();
  ~SyntheticVocabulary();
  struct Data;
  std::unique_ptr<const Data> data_;
};

}  // namespace semskip
