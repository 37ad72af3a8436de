// One knob for CPU parallelism: OpenMP (our kernels) and OpenBLAS (sgemm) use the same count.
#pragma once

namespace rw {

// n <= 0 means all available cores. Returns the count in effect.
int set_cpu_threads(int n);
int cpu_threads();
// Measures single-precision GEMM throughput (GFLOP/s) with OpenBLAS on this machine; the
// denominator of MFU on the CPU. Takes about a tenth of a second.
double measure_sgemm_peak_gflops();

}  // namespace rw
