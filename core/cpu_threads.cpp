#include "core/cpu_threads.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/ops.h"

namespace rw {

int set_cpu_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  return n;
}

int cpu_threads() { return omp_get_max_threads(); }

double measure_sgemm_peak_gflops() {
  const int n = 1024;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n, 0.0f);
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {  // the first run warms caches and thread pools
    auto t0 = std::chrono::steady_clock::now();
    cpu::linear_forward(c.data(), a.data(), b.data(), n, n, n);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

}  // namespace rw
