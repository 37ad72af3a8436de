// One knob for CPU parallelism: the OpenMP thread count. OpenBLAS runs single-threaded inside the
// OpenMP threads (core/cpu/linear.cpp), so it follows the same count.
#pragma once

namespace rw {

// n <= 0 means all available cores. Returns the count in effect.
int set_cpu_threads(int n);
int cpu_threads();
// Measures single-precision GEMM throughput (GFLOP/s) on this machine: a 1024^3 product through
// the linear kernel's OpenBLAS path on every thread. The denominator of MFU on the CPU. Takes
// about a tenth of a second.
double measure_sgemm_peak_gflops();

}  // namespace rw
