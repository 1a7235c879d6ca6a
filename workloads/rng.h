#pragma once
// Deterministic random numbers for the generators. The standard library's distributions are
// implementation-defined, so the same seed would give other workloads on other compilers;
// these are written out so that a seed names one workload everywhere.

#include <cmath>
#include <cstdint>

namespace semskip {

// SplitMix64 step: a good 64-bit mixer, used to seed and to derive independent streams.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman & Vigna).
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& w : s_) w = splitmix64(sm);
  }
  // An independent stream for item `stream` of a generator seeded with `seed`: lets a
  // generator make request k without making requests 0..k-1 first.
  static Rng for_stream(uint64_t seed, uint64_t stream) {
    uint64_t sm = stream ^ 0xA0761D6478BD642FULL;
    return Rng(seed ^ splitmix64(sm));
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform integer in [0, n), n > 0, without modulo bias (rejection).
  uint64_t below(uint64_t n) {
    const uint64_t limit = (~uint64_t{0}) - ((~uint64_t{0}) % n + 1) % n;
    uint64_t x = next_u64();
    while (x > limit) x = next_u64();
    return x % n;
  }
  // Uniform integer in [lo, hi], lo <= hi.
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Exponential with the given rate (mean 1/rate).
  double exponential(double rate) { return -std::log1p(-uniform()) / rate; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace semskip
