// Every CUDA kernel in core/cuda/ops.h against its CPU twin in core/ops.h (itself tested against
// naive references) on the same random inputs. Gradient buffers start non-zero on both sides, so a
// kernel that assigns instead of accumulating fails. Skipped, with the reason, without a GPU.
//
// Tolerances (|gpu - cpu| <= atol + rtol * |cpu|), per op:
//   copies and rotations (embedding forward, add, rope): 1e-6 relative (the same float formulas);
//   swiglu (expf against the CPU's fast_exp), row reductions (rmsnorm, cross-entropy), adamw and
//     the embedding backward (atomics): 1e-5;
//   fp32 linear (cuBLAS vs OpenBLAS, sums of up to 256 terms): 1e-4;
//   bf16 linear against the CPU on the same bf16-rounded operands: 1e-2 (the output's bf16
//     rounding, 2^-8, dominates);
//   attention forward/backward (online softmax, different tiling): 2e-4;
//   sum_squares (both in double): 1e-12.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/cuda/ops.h"
#include "core/ops.h"
#include "core/random.h"
#include "tests/cuda_test_support.h"

namespace rw {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;
using test::DeviceVec;

Floats randn(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  Floats x(n);
  for (float& v : x) v = scale * rng.normal();
  return x;
}

void expect_close(const Floats& gpu, const Floats& cpu, double rtol, double atol, const char* what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  size_t bad = 0, worst = 0;
  double worst_excess = 0.0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const bool both_inf = std::isinf(cpu[i]) && gpu[i] == cpu[i];
    const double excess = std::fabs(double(gpu[i]) - cpu[i]) - (atol + rtol * std::fabs(cpu[i]));
    if (!both_inf && !(excess <= 0.0)) {
      if (bad++ == 0 || excess > worst_excess) worst = i, worst_excess = excess;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << cpu.size() << " elements off; worst at " << worst
                     << ": gpu " << gpu[worst] << " cpu " << cpu[worst];
}

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_cuda_device()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(CudaKernels, Embedding) {
  const int N = 37, C = 96, V = 11;  // V < N: rows share tokens, the backward must sum them
  Ints tokens(N);
  for (int n = 0; n < N; ++n) tokens[n] = (n * 7) % V;
  const Floats wte = randn(size_t(V) * C, 1), dout = randn(size_t(N) * C, 2);
  Floats out(size_t(N) * C), dwte = randn(size_t(V) * C, 3);
  DeviceVec<int32_t> d_tokens(tokens);
  DeviceVec<float> d_wte(wte), d_out(out), d_dout(dout), d_dwte(dwte);
  cpu::embedding_forward(out.data(), tokens.data(), wte.data(), N, C);
  cuda::embedding_forward(d_out.get(), d_tokens.get(), d_wte.get(), N, C);
  expect_close(d_out.host(), out, 1e-6, 0, "embedding forward");
  cpu::embedding_backward(dwte.data(), dout.data(), tokens.data(), N, C);
  cuda::embedding_backward(d_dwte.get(), d_dout.get(), d_tokens.get(), N, C);
  expect_close(d_dwte.host(), dwte, 1e-5, 1e-6, "embedding backward");
}

TEST_F(CudaKernels, RmsNorm) {
  const int N = 19, C = 300;
  const Floats inp = randn(size_t(N) * C, 4, 2.0f), weight = randn(C, 5), dout = randn(size_t(N) * C, 6);
  Floats out(size_t(N) * C), rstd(N), dinp = randn(size_t(N) * C, 7), dweight = randn(C, 8);
  DeviceVec<float> d_inp(inp), d_weight(weight), d_dout(dout), d_out(out), d_rstd(rstd), d_dinp(dinp),
      d_dweight(dweight);
  cpu::rmsnorm_forward(out.data(), rstd.data(), inp.data(), weight.data(), N, C, 1e-5f);
  cuda::rmsnorm_forward(d_out.get(), d_rstd.get(), d_inp.get(), d_weight.get(), N, C, 1e-5f);
  expect_close(d_out.host(), out, 1e-5, 1e-6, "rmsnorm out");
  expect_close(d_rstd.host(), rstd, 1e-5, 0, "rmsnorm rstd");
  cpu::rmsnorm_backward(dinp.data(), dweight.data(), dout.data(), inp.data(), weight.data(), rstd.data(), N, C);
  cuda::rmsnorm_backward(d_dinp.get(), d_dweight.get(), d_dout.get(), d_inp.get(), d_weight.get(), d_rstd.get(), N,
                         C);
  expect_close(d_dinp.host(), dinp, 1e-5, 1e-5, "rmsnorm dinp");
  expect_close(d_dweight.host(), dweight, 1e-5, 1e-5, "rmsnorm dweight");
}

TEST_F(CudaKernels, LinearFp32) {
  const int N = 45, IC = 256, OC = 72;
  const Floats inp = randn(size_t(N) * IC, 9), weight = randn(size_t(OC) * IC, 10, 0.1f),
               dout = randn(size_t(N) * OC, 11);
  Floats out(size_t(N) * OC), dinp = randn(size_t(N) * IC, 12), dweight = randn(size_t(OC) * IC, 13);
  DeviceVec<float> d_inp(inp), d_weight(weight), d_dout(dout), d_out(out), d_dinp(dinp), d_dweight(dweight);
  cpu::linear_forward(out.data(), inp.data(), weight.data(), N, IC, OC);
  cuda::linear_forward(d_out.get(), d_inp.get(), d_weight.get(), N, IC, OC);
  expect_close(d_out.host(), out, 1e-4, 1e-4, "linear out");
  cpu::linear_backward(dinp.data(), dweight.data(), dout.data(), inp.data(), weight.data(), N, IC, OC);
  cuda::linear_backward(d_dinp.get(), d_dweight.get(), d_dout.get(), d_inp.get(), d_weight.get(), N, IC, OC);
  expect_close(d_dinp.host(), dinp, 1e-4, 1e-4, "linear dinp");
  expect_close(d_dweight.host(), dweight, 1e-4, 1e-4, "linear dweight");
}

TEST_F(CudaKernels, LinearBf16) {
  const int N = 33, IC = 128, OC = 40;
  Floats inp = randn(size_t(N) * IC, 14), weight = randn(size_t(OC) * IC, 15, 0.1f);
  std::vector<bf16> inp16, weight16, out16(size_t(N) * OC);
  for (float& x : inp) inp16.push_back(float_to_bf16(x)), x = bf16_to_float(inp16.back());
  for (float& x : weight) weight16.push_back(float_to_bf16(x)), x = bf16_to_float(weight16.back());
  Floats out(size_t(N) * OC);
  cpu::linear_forward(out.data(), inp.data(), weight.data(), N, IC, OC);
  DeviceVec<bf16> d_inp(inp16), d_weight(weight16), d_out(out16);
  cuda::linear_forward_bf16(d_out.get(), d_inp.get(), d_weight.get(), N, IC, OC);
  Floats gpu;
  for (bf16 h : d_out.host()) gpu.push_back(bf16_to_float(h));
  expect_close(gpu, out, 1e-2, 1e-3, "bf16 linear out");
}

TEST_F(CudaKernels, Rope) {
  const int max_pos = 64, D = 32, N = 10, nh = 3;
  Floats cos_t(size_t(max_pos) * D / 2), sin_t(cos_t.size());
  cpu::rope_table(cos_t.data(), sin_t.data(), max_pos, D, 10000.0f);
  DeviceVec<float> d_cos(cos_t), d_sin(sin_t);
  cuda::rope_table(d_cos.get(), d_sin.get(), max_pos, D, 10000.0f);
  expect_close(d_cos.host(), cos_t, 1e-6, 1e-7, "rope cos table");
  expect_close(d_sin.host(), sin_t, 1e-6, 1e-7, "rope sin table");
  Ints pos(N);
  for (int n = 0; n < N; ++n) pos[n] = (n * 13) % max_pos;  // non-contiguous, as context parallelism hands in
  const Floats inp = randn(size_t(N) * nh * D, 16), dout = randn(inp.size(), 17);
  Floats out(inp.size()), dinp = randn(inp.size(), 18);
  DeviceVec<int32_t> d_pos(pos);
  DeviceVec<float> d_inp(inp), d_dout(dout), d_out(out), d_dinp(dinp);
  cpu::rope_forward(out.data(), inp.data(), cos_t.data(), sin_t.data(), pos.data(), N, nh, D);
  cuda::rope_forward(d_out.get(), d_inp.get(), d_cos.get(), d_sin.get(), d_pos.get(), N, nh, D);
  expect_close(d_out.host(), out, 1e-6, 1e-6, "rope forward");
  cpu::rope_backward(dinp.data(), dout.data(), cos_t.data(), sin_t.data(), pos.data(), N, nh, D);
  cuda::rope_backward(d_dinp.get(), d_dout.get(), d_cos.get(), d_sin.get(), d_pos.get(), N, nh, D);
  expect_close(d_dinp.host(), dinp, 1e-6, 1e-6, "rope backward");
}

TEST_F(CudaKernels, SwiGluAndAdd) {
  const size_t n = 5000;
  const Floats gate = randn(n, 19, 3.0f), up = randn(n, 20), dout = randn(n, 21);
  Floats out(n), dgate = randn(n, 22), dup = randn(n, 23), sum(n);
  DeviceVec<float> d_gate(gate), d_up(up), d_dout(dout), d_out(out), d_dgate(dgate), d_dup(dup), d_sum(sum);
  cpu::swiglu_forward(out.data(), gate.data(), up.data(), n);
  cuda::swiglu_forward(d_out.get(), d_gate.get(), d_up.get(), n);
  expect_close(d_out.host(), out, 1e-5, 1e-6, "swiglu forward");
  cpu::swiglu_backward(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), n);
  cuda::swiglu_backward(d_dgate.get(), d_dup.get(), d_dout.get(), d_gate.get(), d_up.get(), n);
  expect_close(d_dgate.host(), dgate, 1e-5, 1e-6, "swiglu dgate");
  expect_close(d_dup.host(), dup, 1e-5, 1e-6, "swiglu dup");
  cpu::add_forward(sum.data(), gate.data(), up.data(), n);
  cuda::add_forward(d_sum.get(), d_gate.get(), d_up.get(), n);
  expect_close(d_sum.host(), sum, 1e-6, 0, "add");
}

TEST_F(CudaKernels, CrossEntropy) {
  const int N = 13, V = 1000;
  const Floats logits = randn(size_t(N) * V, 24, 3.0f);
  Ints targets(N);
  for (int n = 0; n < N; ++n) targets[n] = n % 4 == 3 ? -1 : (n * 71) % V;  // every 4th row ignored
  Floats loss(N), lse(N), dlogits = randn(logits.size(), 25);
  DeviceVec<float> d_logits(logits), d_loss(loss), d_lse(lse), d_dlogits(dlogits);
  DeviceVec<int32_t> d_targets(targets);
  cpu::cross_entropy_forward(loss.data(), lse.data(), logits.data(), targets.data(), N, V);
  cuda::cross_entropy_forward(d_loss.get(), d_lse.get(), d_logits.get(), d_targets.get(), N, V);
  expect_close(d_loss.host(), loss, 1e-5, 1e-5, "cross-entropy loss");
  expect_close(d_lse.host(), lse, 1e-5, 1e-5, "cross-entropy lse");
  cpu::cross_entropy_backward(dlogits.data(), logits.data(), lse.data(), targets.data(), 0.1f, N, V);
  cuda::cross_entropy_backward(d_dlogits.get(), d_logits.get(), d_lse.get(), d_targets.get(), 0.1f, N, V);
  expect_close(d_dlogits.host(), dlogits, 1e-5, 1e-6, "cross-entropy dlogits");
}

TEST_F(CudaKernels, AdamWAndSumSquares) {
  const size_t n = 70000;  // more than one sum_squares chunk
  Floats param = randn(n, 26), m = randn(n, 27, 0.1f), v = randn(n, 28, 0.1f);
  for (float& x : v) x = x * x;
  const Floats grad = randn(n, 29);
  DeviceVec<float> d_param(param), d_grad(grad), d_m(m), d_v(v);
  cpu::AdamWParams p;
  p.lr = 1e-3f;
  cpu::adamw_update(param.data(), grad.data(), m.data(), v.data(), n, p, 0.5f, 3);
  cuda::adamw_update(d_param.get(), d_grad.get(), d_m.get(), d_v.get(), n, p, 0.5f, 3);
  expect_close(d_param.host(), param, 1e-5, 1e-6, "adamw param");
  expect_close(d_m.host(), m, 1e-5, 1e-7, "adamw m");
  expect_close(d_v.host(), v, 1e-5, 1e-7, "adamw v");
  const double cpu_ss = cpu::sum_squares(grad.data(), n), gpu_ss = cuda::sum_squares(d_grad.get(), n);
  EXPECT_NEAR(gpu_ss, cpu_ss, 1e-12 * cpu_ss);
}

struct AttentionCase {
  const char* name;
  cpu::AttentionShape s;
};

// GQA, offsets (context-parallel blocks), rows that see no key, ragged tile edges, D up to 128.
std::vector<AttentionCase> attention_cases() {
  auto make = [](const char* name, int B, int Tq, int Tk, int H, int KH, int D, int qo, int ko, bool causal) {
    cpu::AttentionShape s;
    s.B = B, s.Tq = Tq, s.Tk = Tk, s.H = H, s.KH = KH, s.D = D, s.q_offset = qo, s.k_offset = ko;
    s.causal = causal;
    return AttentionCase{name, s};
  };
  return {make("causal GQA", 2, 70, 70, 4, 2, 32, 0, 0, true),
          make("non-causal", 1, 33, 90, 2, 1, 16, 0, 0, false),
          make("offsets, diagonal block", 1, 40, 40, 2, 2, 64, 40, 40, true),
          make("offsets, keys partly in the future", 1, 50, 48, 3, 1, 24, 10, 30, true),
          make("head dim 128", 1, 65, 65, 2, 1, 128, 0, 0, true)};
}

TEST_F(CudaKernels, Attention) {
  for (const AttentionCase& c : attention_cases()) {
    SCOPED_TRACE(c.name);
    const cpu::AttentionShape& s = c.s;
    const size_t nq = size_t(s.B) * s.Tq * s.H * s.D, nk = size_t(s.B) * s.Tk * s.KH * s.D;
    const size_t nl = size_t(s.B) * s.H * s.Tq;
    const Floats q = randn(nq, 30), k = randn(nk, 31), v = randn(nk, 32), dout = randn(nq, 33);
    Floats out(nq), lse(nl), dq = randn(nq, 34), dk = randn(nk, 35), dv = randn(nk, 36);
    DeviceVec<float> d_q(q), d_k(k), d_v(v), d_dout(dout), d_out(out), d_lse(lse), d_dq(dq), d_dk(dk), d_dv(dv);
    cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
    cuda::attention_forward(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(), s);
    expect_close(d_out.host(), out, 2e-4, 2e-5, "attention out");
    expect_close(d_lse.host(), lse, 2e-4, 2e-5, "attention lse");
    cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), out.data(),
                            lse.data(), s);
    cuda::attention_backward(d_dq.get(), d_dk.get(), d_dv.get(), d_dout.get(), d_q.get(), d_k.get(), d_v.get(),
                             d_out.get(), d_lse.get(), s);
    expect_close(d_dq.host(), dq, 2e-4, 2e-4, "attention dq");
    expect_close(d_dk.host(), dk, 2e-4, 2e-4, "attention dk");
    expect_close(d_dv.host(), dv, 2e-4, 2e-4, "attention dv");
  }
}

TEST_F(CudaKernels, AttentionMerge) {
  const int B = 2, Tq = 9, H = 3, D = 8;
  const size_t n = size_t(B) * Tq * H * D, nl = size_t(B) * H * Tq;
  Floats out = randn(n, 37), out_b = randn(n, 38), lse = randn(nl, 39), lse_b = randn(nl, 40);
  lse[1] = -INFINITY;    // the running result saw no key yet
  lse_b[2] = -INFINITY;  // the partial saw none: the running result must stay as it is
  DeviceVec<float> d_out(out), d_out_b(out_b), d_lse(lse), d_lse_b(lse_b);
  cpu::attention_merge(out.data(), lse.data(), out_b.data(), lse_b.data(), B, Tq, H, D);
  cuda::attention_merge(d_out.get(), d_lse.get(), d_out_b.get(), d_lse_b.get(), B, Tq, H, D);
  expect_close(d_out.host(), out, 1e-5, 1e-6, "merged out");
  expect_close(d_lse.host(), lse, 1e-5, 1e-6, "merged lse");
}

}  // namespace
}  // namespace rw
