// How far a computed tensor is from its reference, for the equivalence tests of every layer.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

namespace rw::test {

// max |got - want| / max |want|: the error relative to the tensor's scale (absolute when the
// reference is all zeros).
inline double relative_error(const float* got, const float* want, size_t n) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  return scale > 0 ? err / scale : err;
}

}  // namespace rw::test
