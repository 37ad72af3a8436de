// Every exchange packs several tensors into one alltoallv: the message to rank j holds, tensor by
// tensor, head slice j of each of this rank's tokens; what arrives from rank i is rank i's tokens of
// this rank's head slice, written to their global positions (zigzag or contiguous) so that the
// kernel sees the sequence in order and the causal mask needs no offsets. lse, whose heads come
// before its tokens, travels transposed to [tokens, heads] like the others.
#include "dist/ulysses_attention.h"

#include <climits>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "dist/zigzag.h"

namespace rw {
namespace {

using Floats = std::vector<float>;

// One tensor of an exchange: its token-sharded side [B, T/P, row] and head-sharded side
// [B, T, row/P], `row` being its heads times head_dim; the exchange reads one side, writes the other.
struct ToHeads {
  const float* local;
  float* full;
  size_t row;
};
struct ToTokens {
  float* local;
  const float* full;
  size_t row;
};

class Exchange {
 public:
  Exchange(const cpu::AttentionShape& s, Communicator& cp)
      : cp_(cp), P_(cp.size()), B_(s.B), local_T_(s.Tq), causal_(s.causal) {
    RW_CHECK(s.Tq == s.Tk && s.q_offset == 0 && s.k_offset == 0,
             "Ulysses attention takes the local length as Tq = Tk and zero offsets (got Tq %d, Tk %d, offsets %d, %d)",
             s.Tq, s.Tk, s.q_offset, s.k_offset);
    RW_CHECK(!causal_ || local_T_ % 2 == 0, "local length %d is not a whole number of zigzag chunks", local_T_);
    check_ulysses(s.H, s.KH, P_);
  }
  int full_T() const { return local_T_ * P_; }

  // Token-sharded to head-sharded: fills every part's `full` from its `local`.
  void to_heads(const std::vector<ToHeads>& parts) {
    const size_t per_rank = floats_per_rank(parts);
    Floats send(per_rank * P_), recv(per_rank * P_);
    for (int j = 0; j < P_; ++j) {
      float* dst = send.data() + j * per_rank;
      for (const auto& p : parts) {
        const size_t slice = p.row / P_;
        for (size_t n = 0; n < rows(); ++n, dst += slice)
          std::memcpy(dst, p.local + n * p.row + j * slice, slice * sizeof(float));
      }
    }
    alltoall(send, recv, per_rank);
    for (int i = 0; i < P_; ++i) {
      const float* src = recv.data() + i * per_rank;
      for (const auto& p : parts) {
        const size_t slice = p.row / P_;
        for (size_t n = 0; n < rows(); ++n, src += slice)
          std::memcpy(p.full + global_row(i, n) * slice, src, slice * sizeof(float));
      }
    }
  }

  // Head-sharded to token-sharded: fills (or, with accumulate, adds into) every part's `local`.
  void to_tokens(const std::vector<ToTokens>& parts, bool accumulate) {
    const size_t per_rank = floats_per_rank(parts);
    Floats send(per_rank * P_), recv(per_rank * P_);
    for (int i = 0; i < P_; ++i) {
      float* dst = send.data() + i * per_rank;
      for (const auto& p : parts) {
        const size_t slice = p.row / P_;
        for (size_t n = 0; n < rows(); ++n, dst += slice)
          std::memcpy(dst, p.full + global_row(i, n) * slice, slice * sizeof(float));
      }
    }
    alltoall(send, recv, per_rank);
    for (int j = 0; j < P_; ++j) {
      const float* src = recv.data() + j * per_rank;
      for (const auto& p : parts) {
        const size_t slice = p.row / P_;
        for (size_t n = 0; n < rows(); ++n, src += slice) {
          float* d = p.local + n * p.row + j * slice;
          if (accumulate)
            for (size_t e = 0; e < slice; ++e) d[e] += src[e];
          else
            std::memcpy(d, src, slice * sizeof(float));
        }
      }
    }
  }

 private:
  size_t rows() const { return static_cast<size_t>(B_) * local_T_; }
  template <class Parts>
  size_t floats_per_rank(const Parts& parts) const {
    size_t n = 0;
    for (const auto& p : parts) n += rows() * (p.row / P_);
    return n;
  }
  // Row (b, global token) of the full sequence for local row n = (b, t) of rank `rank`.
  size_t global_row(int rank, size_t n) const {
    const size_t b = n / local_T_;
    const int t = static_cast<int>(n % local_T_);
    int pos;
    if (causal_) {
      const int len = local_T_ / 2;
      pos = zigzag_chunks(P_, rank)[t / len] * len + t % len;
    } else {
      pos = rank * local_T_ + t;
    }
    return b * full_T() + pos;
  }
  void alltoall(const Floats& send, Floats& recv, size_t per_rank) {
    RW_CHECK(per_rank <= INT_MAX, "Ulysses exchange of %zu floats per rank exceeds MPI's int count", per_rank);
    const std::vector<int> counts(P_, static_cast<int>(per_rank));
    cp_.alltoallv(send.data(), counts.data(), recv.data(), counts.data());
  }

  Communicator& cp_;
  int P_, B_, local_T_;
  bool causal_;
};

// [B, m, n] -> [B, n, m].
Floats transposed(const float* x, size_t B, size_t m, size_t n) {
  Floats y(B * m * n);
  for (size_t b = 0; b < B; ++b)
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j) y[(b * n + j) * m + i] = x[(b * m + i) * n + j];
  return y;
}

// The kernel's shape on the whole sequence for this rank's heads.
cpu::AttentionShape head_shard_shape(const cpu::AttentionShape& s, int P) {
  cpu::AttentionShape f = s;
  f.Tq = f.Tk = s.Tq * P;
  f.H = s.H / P;
  f.KH = s.KH / P;
  return f;
}

}  // namespace

void check_ulysses(int heads, int kv_heads, int cp) {
  RW_USER_CHECK(cp >= 1 && heads % cp == 0 && kv_heads % cp == 0,
                "--cp-algo ulysses gives each of the --cp %d ranks a share of the heads: --heads %d and --kv-heads %d "
                "must both be multiples of --cp",
                cp, heads, kv_heads);
}

void ulysses_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                               const cpu::AttentionShape& s, Communicator& cp) {
  const int P = cp.size();
  if (P == 1) return cpu::attention_forward(out, lse, q, k, v, s);
  Exchange ex(s, cp);
  const cpu::AttentionShape f = head_shard_shape(s, P);
  const size_t qrow = static_cast<size_t>(s.H) * s.D, kvrow = static_cast<size_t>(s.KH) * s.D;
  const size_t rows = static_cast<size_t>(s.B) * f.Tq;
  Floats fq(rows * qrow / P), fk(rows * kvrow / P), fv(rows * kvrow / P);
  ex.to_heads({{q, fq.data(), qrow}, {k, fk.data(), kvrow}, {v, fv.data(), kvrow}});
  Floats fout(fq.size()), flse(static_cast<size_t>(s.B) * f.H * f.Tq);
  cpu::attention_forward(fout.data(), flse.data(), fq.data(), fk.data(), fv.data(), f);
  const Floats flse_t = transposed(flse.data(), s.B, f.H, f.Tq);
  Floats lse_t(static_cast<size_t>(s.B) * s.Tq * s.H);
  ex.to_tokens({{out, fout.data(), qrow}, {lse_t.data(), flse_t.data(), static_cast<size_t>(s.H)}}, false);
  const Floats back = transposed(lse_t.data(), s.B, s.Tq, s.H);
  std::memcpy(lse, back.data(), back.size() * sizeof(float));
}

void ulysses_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                                const float* v, const float* out, const float* lse, const cpu::AttentionShape& s,
                                Communicator& cp) {
  const int P = cp.size();
  if (P == 1) return cpu::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, s);
  Exchange ex(s, cp);
  const cpu::AttentionShape f = head_shard_shape(s, P);
  const size_t qrow = static_cast<size_t>(s.H) * s.D, kvrow = static_cast<size_t>(s.KH) * s.D;
  const size_t rows = static_cast<size_t>(s.B) * f.Tq, H = static_cast<size_t>(s.H);
  Floats fq(rows * qrow / P), fk(rows * kvrow / P), fv(rows * kvrow / P), fout(fq.size()), fdout(fq.size());
  const Floats lse_t = transposed(lse, s.B, H, s.Tq);
  Floats flse_t(rows * H / P);
  ex.to_heads({{q, fq.data(), qrow},
               {k, fk.data(), kvrow},
               {v, fv.data(), kvrow},
               {out, fout.data(), qrow},
               {dout, fdout.data(), qrow},
               {lse_t.data(), flse_t.data(), H}});
  const Floats flse = transposed(flse_t.data(), s.B, f.Tq, f.H);
  Floats fdq(fq.size(), 0.0f), fdk(fk.size(), 0.0f), fdv(fv.size(), 0.0f);
  cpu::attention_backward(fdq.data(), fdk.data(), fdv.data(), fdout.data(), fq.data(), fk.data(), fv.data(),
                          fout.data(), flse.data(), f);
  ex.to_tokens({{dq, fdq.data(), qrow}, {dk, fdk.data(), kvrow}, {dv, fdv.data(), kvrow}}, true);
}

}  // namespace rw
