// Times the CUDA blockwise attention, causal, forward and forward+backward, with CUDA events after
// a warm-up, and prints one line per sequence length that bench/attention_torch.py reads:
//   ringwise T=<T> B=<B> H=<H> KH=<KH> D=<D> fwd_ms=<ms> bwd_ms=<ms> fwd_tflops=<x> fwdbwd_tflops=<x>
// FLOPs follow the FlashAttention convention: forward 4*B*H*T*T*D, halved when causal; backward
// 2.5 times the forward.
//
// usage: attention_cuda_bench [--B 1] [--H 16] [--KH 16] [--D 128] [--iters 3] T [T ...]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"
#include "core/random.h"

namespace {

float* device_random(size_t n, uint64_t seed) {
  rw::Rng rng(seed);
  std::vector<float> host(n);
  for (float& x : host) x = rng.normal();
  float* dev = nullptr;
  RW_CUDA_CHECK(cudaMalloc(&dev, n * sizeof(float)));
  RW_CUDA_CHECK(cudaMemcpy(dev, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  return dev;
}

float* device_zeros(size_t n) {
  float* dev = nullptr;
  RW_CUDA_CHECK(cudaMalloc(&dev, n * sizeof(float)));
  RW_CUDA_CHECK(cudaMemset(dev, 0, n * sizeof(float)));
  return dev;
}

// Mean milliseconds of `iters` calls of fn after one warm-up call.
template <class Fn>
float time_ms(int iters, Fn fn) {
  fn();
  cudaEvent_t start, stop;
  RW_CUDA_CHECK(cudaEventCreate(&start));
  RW_CUDA_CHECK(cudaEventCreate(&stop));
  RW_CUDA_CHECK(cudaEventRecord(start));
  for (int i = 0; i < iters; ++i) fn();
  RW_CUDA_CHECK(cudaEventRecord(stop));
  RW_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  RW_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  RW_CUDA_CHECK(cudaEventDestroy(start));
  RW_CUDA_CHECK(cudaEventDestroy(stop));
  return ms / iters;
}

void bench(rw::cuda::AttentionShape s, int iters) {
  const size_t nq = size_t(s.B) * s.Tq * s.H * s.D, nk = size_t(s.B) * s.Tk * s.KH * s.D;
  float *q = device_random(nq, 1), *k = device_random(nk, 2), *v = device_random(nk, 3), *dout = device_random(nq, 4);
  float *out = device_zeros(nq), *lse = device_zeros(size_t(s.B) * s.H * s.Tq);
  float *dq = device_zeros(nq), *dk = device_zeros(nk), *dv = device_zeros(nk);
  const float fwd = time_ms(iters, [&] { rw::cuda::attention_forward(out, lse, q, k, v, s); });
  const float bwd = time_ms(iters, [&] { rw::cuda::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, s); });
  const double flops = 4.0 * s.B * s.H * double(s.Tq) * s.Tk * s.D * (s.causal ? 0.5 : 1.0);
  std::printf("ringwise T=%d B=%d H=%d KH=%d D=%d fwd_ms=%.3f bwd_ms=%.3f fwd_tflops=%.3f fwdbwd_tflops=%.3f\n", s.Tq,
              s.B, s.H, s.KH, s.D, fwd, bwd, flops / (fwd * 1e9), 3.5 * flops / ((fwd + bwd) * 1e9));
  std::fflush(stdout);
  for (float* p : {q, k, v, dout, out, lse, dq, dk, dv}) RW_CUDA_CHECK(cudaFree(p));
}

}  // namespace

int main(int argc, char** argv) {
  rw::cuda::AttentionShape s;
  s.B = 1, s.H = 16, s.KH = 16, s.D = 128, s.causal = true;
  int iters = 3;
  std::vector<int> lengths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int* flag = a == "--B" ? &s.B : a == "--H" ? &s.H : a == "--KH" ? &s.KH : a == "--D" ? &s.D
                                  : a == "--iters" ? &iters : nullptr;
    if (flag && i + 1 < argc) {
      *flag = std::atoi(argv[++i]);
    } else if (!a.empty() && a[0] != '-') {
      lengths.push_back(std::atoi(a.c_str()));
    } else {
      std::fprintf(stderr, "usage: %s [--B n] [--H n] [--KH n] [--D n] [--iters n] T [T ...]\n", argv[0]);
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ringwise: error: no CUDA device\n");
    return 2;
  }
  try {
    for (int T : lengths) {
      s.Tq = s.Tk = T;
      bench(s, iters);
    }
  } catch (const rw::UserError& e) {
    std::fprintf(stderr, "ringwise: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
