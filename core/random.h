// Deterministic random numbers: splitmix64 streams keyed by (seed, stream id), so every parameter
// and every data window draws from its own stream and results never depend on call order.
#pragma once
#include <cmath>
#include <cstdint>

namespace rw {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Mixes several keys into one stream id.
inline uint64_t hash_keys(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0) {
  return splitmix64(splitmix64(splitmix64(splitmix64(a) ^ b) ^ c) ^ d);
}

class Rng {
 public:
  explicit Rng(uint64_t seed, uint64_t stream = 0) : state_(hash_keys(seed, stream)) {}
  uint64_t next_u64() { return splitmix64(state_++); }
  // Uniform in [0, 1) with 24 random bits, exact in float.
  float uniform() { return (next_u64() >> 40) * (1.0f / 16777216.0f); }
  // Standard normal (Box-Muller, one value per call; the second is dropped to keep streams simple).
  float normal() {
    double u1 = ((next_u64() >> 11) + 1.0) * (1.0 / 9007199254740994.0);  // (0, 1]
    double u2 = (next_u64() >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  uint64_t state_;
};

}  // namespace rw
