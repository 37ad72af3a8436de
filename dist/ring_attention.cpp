// Each rank works on chunk-major copies of its tensors ([chunk][B, c, ...] instead of
// [B, chunks * c, ...]), so every chunk is one contiguous tensor the kernel takes as is and one
// K/V message holds all of a rank's chunks. The kernel is called on every (query chunk, key chunk)
// pair that the mask does not hide entirely, with the chunks' global positions as offsets: that
// is the DESIGN schedule (step 0 both local chunks causally, then either both query chunks
// against src's first chunk or the second query chunk against both of src's), two chunk pairs of
// work on every step.
//
// Open MPI moves data on CPU ranks only inside MPI calls, so a pending transfer is either polled
// between kernel calls, each on a slice of a few query tiles of one batch row, or waited on by a
// thread of its own (RingProgress).
#include "dist/ring_attention.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "core/check.h"
#include "dist/zigzag.h"

namespace rw {
namespace {

using Floats = std::vector<float>;
using Clock = std::chrono::steady_clock;

constexpr int kKvTag = 0x5241;   // K/V blocks going round the ring
constexpr int kDkvTag = 0x5242;  // dK/dV accumulators going round with them

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// How the sequence is cut among the ranks: each holds `count` chunks of `len` tokens.
struct Layout {
  int P, count, len;
  bool zigzag;
  // Global chunk index of local chunk i on `rank` (in units of len tokens).
  int chunk_id(int rank, int i) const { return zigzag ? zigzag_chunks(P, rank)[i] : rank; }
};

Layout make_layout(const cpu::AttentionShape& s, int P) {
  RW_CHECK(s.Tq == s.Tk && s.q_offset == 0 && s.k_offset == 0,
           "ring attention takes the local length as Tq = Tk and zero offsets (got Tq %d, Tk %d, offsets %d, %d)",
           s.Tq, s.Tk, s.q_offset, s.k_offset);
  const int count = s.causal ? 2 : 1;
  RW_CHECK(s.Tq % count == 0, "local length %d is not a whole number of zigzag chunks", s.Tq);
  return {P, count, s.Tq / count, s.causal};
}

// [B, count * len, row] -> [count][B, len, row], and back (adding, for gradients, or assigning).
void split_chunks(float* dst, const float* src, size_t B, int count, size_t len_row) {
  for (size_t b = 0; b < B; ++b)
    for (int i = 0; i < count; ++i)
      std::memcpy(dst + (i * B + b) * len_row, src + (b * count + i) * len_row, len_row * sizeof(float));
}
void join_chunks(float* dst, const float* src, size_t B, int count, size_t len_row, bool accumulate) {
  for (size_t b = 0; b < B; ++b)
    for (int i = 0; i < count; ++i) {
      float* d = dst + (b * count + i) * len_row;
      const float* c = src + (i * B + b) * len_row;
      if (accumulate)
        for (size_t e = 0; e < len_row; ++e) d[e] += c[e];
      else
        std::memcpy(d, c, len_row * sizeof(float));
    }
}

// One rank's tensors cut into chunk-major form, with the sizes the loops need.
struct Chunked {
  const cpu::AttentionShape& s;
  Layout L;
  size_t q_chunk, kv_chunk, lse_chunk;  // elements per chunk of q/out, of k/v, of lse
  Chunked(const cpu::AttentionShape& shape, int P)
      : s(shape),
        L(make_layout(shape, P)),
        q_chunk(static_cast<size_t>(s.B) * L.len * s.H * s.D),
        kv_chunk(static_cast<size_t>(s.B) * L.len * s.KH * s.D),
        lse_chunk(static_cast<size_t>(s.B) * s.H * L.len) {}
  Floats split_q(const float* x) const { return split(x, s.B, static_cast<size_t>(L.len) * s.H * s.D); }
  Floats split_lse(const float* x) const { return split(x, static_cast<size_t>(s.B) * s.H, L.len); }
  // K and V of all local chunks in one buffer (one message per step): [k chunks..., v chunks...].
  Floats pack_kv(const float* k, const float* v) const {
    Floats kv = split(k, s.B, static_cast<size_t>(L.len) * s.KH * s.D);
    Floats vc = split(v, s.B, static_cast<size_t>(L.len) * s.KH * s.D);
    kv.insert(kv.end(), vc.begin(), vc.end());
    return kv;
  }
  Floats split(const float* x, size_t B, size_t len_row) const {
    Floats out(B * L.count * len_row);
    split_chunks(out.data(), x, B, L.count, len_row);
    return out;
  }
  // The kernel's shape for query chunk i of this rank against key chunk j of rank src, one batch
  // row at a time; false when the mask hides the whole pair. Only the diagonal pair needs the
  // causal mask: chunks are equal, so a key chunk before the query chunk is visible entirely.
  bool pair_shape(int rank, int i, int src, int j, cpu::AttentionShape* pair) const {
    const int qc = L.chunk_id(rank, i), kc = L.chunk_id(src, j);
    if (s.causal && kc > qc) return false;
    *pair = s;
    pair->B = 1;
    pair->Tq = pair->Tk = L.len;
    pair->q_offset = qc * L.len;
    pair->k_offset = kc * L.len;
    pair->causal = s.causal && kc == qc;
    return true;
  }
};

// Query rows per kernel call: the pending transfers are polled between calls. Whole query tiles,
// so the kernel tiles a slice as it would the chunk; at most the chunk.
int rows_per_call(const Chunked& C, const RingOptions& opts) {
  RW_CHECK(opts.tiles_per_call >= 1, "%d query tiles per kernel call", opts.tiles_per_call);
  return static_cast<int>(std::min<int64_t>(static_cast<int64_t>(opts.tiles_per_call) * C.s.block_q, C.L.len));
}

// Calls fn(b, r0, slice) for every batch row b of a chunk pair and every run of `rows` query rows
// [r0, r0 + slice.Tq) in it, slice being the kernel's shape for those rows.
template <typename Fn>
void for_each_slice(const Chunked& C, const cpu::AttentionShape& pair, int rows, Fn&& fn) {
  for (int b = 0; b < C.s.B; ++b)
    for (int r0 = 0; r0 < C.L.len; r0 += rows) {
      cpu::AttentionShape slice = pair;
      slice.Tq = std::min(rows, C.L.len - r0);
      slice.q_offset = pair.q_offset + r0;
      fn(b, r0, slice);
    }
}

// Calls fn(i, j, pair) for every pair of this rank's query chunk i and src's key chunk j that the
// mask does not hide entirely.
template <typename Fn>
void for_each_pair(const Chunked& C, int rank, int src, Fn&& fn) {
  for (int i = 0; i < C.L.count; ++i)
    for (int j = 0; j < C.L.count; ++j) {
      cpu::AttentionShape pair;
      if (C.pair_shape(rank, i, src, j, &pair)) fn(i, j, pair);
    }
}

// At most one transfer in flight, moved by polling or by a thread of its own.
class Transfer {
 public:
  ~Transfer() { finish(); }
  void start(std::unique_ptr<Request> req, RingProgress progress) {
    RW_CHECK(!req_, "a transfer is already in flight");
    req_ = std::move(req);
    if (progress == RingProgress::Thread) waiter_ = std::thread([r = req_.get()] { r->wait(); });
  }
  bool active() const { return req_ != nullptr; }
  void poll() {
    if (req_ && !waiter_.joinable()) req_->test();
  }
  void finish() {
    if (waiter_.joinable()) waiter_.join();
    if (req_) req_->wait();  // idempotent after the thread's wait
    req_.reset();
  }

 private:
  std::unique_ptr<Request> req_;
  std::thread waiter_;
};

// Runs a call's computation (unless RingOptions::transfers_only) and its waits, and times the steps
// into RingOptions::times when that is set.
class StepClock {
 public:
  StepClock(const RingOptions& opts, Communicator& cp)
      : times_(opts.times), transfers_only_(opts.transfers_only), cp_(cp) {}
  // Ends the step in progress, if any, and starts the next one once every rank has reached it.
  void next_step() {
    if (!times_) return;
    close_step();
    times_->emplace_back();
    current_ = times_->size() - 1;
    start_ = Clock::now();
  }
  // Ends the last step, once every rank has reached its end.
  void finish() {
    if (times_) close_step();
  }
  template <typename Fn>
  void compute(Fn&& fn) {
    if (!transfers_only_) timed(fn, &RingStepTime::compute_s);
  }
  template <typename Fn>
  void wait(Fn&& fn) {
    timed(fn, &RingStepTime::wait_s);
  }
  void sent(size_t floats) {
    if (times_) (*times_)[current_].sent_bytes += static_cast<double>(floats * sizeof(float));
  }

 private:
  void close_step() {
    cp_.barrier();
    if (current_ != kNone) (*times_)[current_].step_s = seconds_since(start_);
    current_ = kNone;
  }
  template <typename Fn>
  void timed(Fn& fn, double RingStepTime::*field) {
    if (!times_) return fn();
    const auto t0 = Clock::now();
    fn();
    (*times_)[current_].*field += seconds_since(t0);
  }

  static constexpr size_t kNone = static_cast<size_t>(-1);
  RingTimes* times_;
  bool transfers_only_;
  Communicator& cp_;
  size_t current_ = kNone;  // index of the step in progress (the vector may have held others before)
  Clock::time_point start_;
};

// Begins ring step `step`: unless it is the last, this rank's K/V block starts on its way to the
// next rank while the previous rank's arrives in kv_next. Returns the rank whose K/V block the
// step works on.
int start_step(int step, Communicator& cp, Floats& kv, Floats& kv_next, Transfer& kv_transfer,
               RingProgress progress, StepClock& clock) {
  const int P = cp.size(), rank = cp.rank();
  if (step + 1 < P) {
    kv_transfer.start(
        cp.isendrecv(kv.data(), kv.size(), (rank + 1) % P, kv_next.data(), kv_next.size(), (rank + P - 1) % P, kKvTag),
        progress);
    clock.sent(kv.size());
  }
  return (rank + P - step) % P;
}

// The single-rank ring: one step of the plain kernel.
template <typename Fn>
void single_rank(Communicator& cp, const RingOptions& opts, Fn&& kernel) {
  StepClock clock(opts, cp);
  clock.next_step();
  clock.compute(kernel);
  clock.finish();
}

}  // namespace

void ring_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                            const cpu::AttentionShape& s, Communicator& cp, const RingOptions& opts) {
  if (cp.size() == 1) return single_rank(cp, opts, [&] { cpu::attention_forward(out, lse, q, k, v, s); });
  const int P = cp.size(), rank = cp.rank();
  const Chunked C(s, P);
  const int n = C.L.count;
  const Floats qc = C.split_q(q);
  Floats kv = C.pack_kv(k, v), kv_next(kv.size());
  Floats acc_out(n * C.q_chunk, 0.0f), acc_lse(n * C.lse_chunk, -INFINITY);
  const int rows = rows_per_call(C, opts);
  Floats part_out(C.q_chunk), part_lse(C.lse_chunk), slice_lse(static_cast<size_t>(s.H) * rows);
  const size_t row_q = static_cast<size_t>(s.H) * s.D, row_kv = static_cast<size_t>(s.KH) * s.D;
  Transfer kv_transfer;
  // One step's work: this rank's query chunks against src's K/V chunks, merged into the result.
  const auto attend = [&](int src) {
    for_each_pair(C, rank, src, [&](int i, int j, const cpu::AttentionShape& pair) {
      for_each_slice(C, pair, rows, [&](int b, int r0, const cpu::AttentionShape& slice) {
        const size_t qo = (static_cast<size_t>(b) * C.L.len + r0) * row_q;  // within the chunk
        const size_t ko = j * C.kv_chunk + static_cast<size_t>(b) * C.L.len * row_kv;
        cpu::attention_forward(part_out.data() + qo, slice_lse.data(), qc.data() + i * C.q_chunk + qo,
                               kv.data() + ko, kv.data() + n * C.kv_chunk + ko, slice);
        for (int h = 0; h < s.H; ++h)  // [H, slice rows] into [B, H, len]
          std::copy_n(slice_lse.data() + static_cast<size_t>(h) * slice.Tq, slice.Tq,
                      part_lse.data() + (static_cast<size_t>(b) * s.H + h) * C.L.len + r0);
        kv_transfer.poll();
      });
      cpu::attention_merge(acc_out.data() + i * C.q_chunk, acc_lse.data() + i * C.lse_chunk, part_out.data(),
                           part_lse.data(), s.B, C.L.len, s.H, s.D);
    });
  };
  StepClock clock(opts, cp);
  for (int step = 0; step < P; ++step) {
    clock.next_step();
    const int src = start_step(step, cp, kv, kv_next, kv_transfer, opts.progress, clock);
    clock.compute([&] { attend(src); });
    if (kv_transfer.active()) {
      clock.wait([&] { kv_transfer.finish(); });
      std::swap(kv, kv_next);
    }
  }
  clock.finish();
  join_chunks(out, acc_out.data(), s.B, n, static_cast<size_t>(C.L.len) * s.H * s.D, false);
  join_chunks(lse, acc_lse.data(), static_cast<size_t>(s.B) * s.H, n, C.L.len, false);
}

void ring_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                             const float* v, const float* out, const float* lse, const cpu::AttentionShape& s,
                             Communicator& cp, const RingOptions& opts) {
  if (cp.size() == 1)
    return single_rank(cp, opts, [&] { cpu::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, s); });
  const int P = cp.size(), rank = cp.rank(), next = (rank + 1) % P, prev = (rank + P - 1) % P;
  const Chunked C(s, P);
  const int n = C.L.count;
  const Floats qc = C.split_q(q), doutc = C.split_q(dout), outc = C.split_q(out), lsec = C.split_lse(lse);
  Floats kv = C.pack_kv(k, v), kv_next(kv.size());
  const int rows = rows_per_call(C, opts);
  Floats dqc(n * C.q_chunk, 0.0f), slice_lse(static_cast<size_t>(s.H) * rows);
  const size_t row_q = static_cast<size_t>(s.H) * s.D, row_kv = static_cast<size_t>(s.KH) * s.D;
  // The dK/dV accumulator of the block being worked on: computed into `mine`, added to what
  // arrived in `incoming` from the ranks before, then sent on from `outgoing`.
  Floats mine(kv.size()), incoming(kv.size()), outgoing(kv.size());
  Transfer kv_transfer, dkv_transfer;
  // One step's work: dQ of this rank's query chunks and dK/dV of src's K/V chunks, into `mine`.
  const auto attend = [&](int src) {
    std::fill(mine.begin(), mine.end(), 0.0f);
    for_each_pair(C, rank, src, [&](int i, int j, const cpu::AttentionShape& pair) {
      for_each_slice(C, pair, rows, [&](int b, int r0, const cpu::AttentionShape& slice) {
        const size_t qo = i * C.q_chunk + (static_cast<size_t>(b) * C.L.len + r0) * row_q;
        const size_t ko = j * C.kv_chunk + static_cast<size_t>(b) * C.L.len * row_kv, vo = n * C.kv_chunk + ko;
        for (int h = 0; h < s.H; ++h)  // [B, H, len] to [H, slice rows]
          std::copy_n(lsec.data() + i * C.lse_chunk + (static_cast<size_t>(b) * s.H + h) * C.L.len + r0, slice.Tq,
                      slice_lse.data() + static_cast<size_t>(h) * slice.Tq);
        cpu::attention_backward(dqc.data() + qo, mine.data() + ko, mine.data() + vo, doutc.data() + qo,
                                qc.data() + qo, kv.data() + ko, kv.data() + vo, outc.data() + qo, slice_lse.data(),
                                slice);
        kv_transfer.poll();
        dkv_transfer.poll();
      });
    });
  };
  StepClock clock(opts, cp);
  for (int step = 0; step < P; ++step) {
    clock.next_step();
    const int src = start_step(step, cp, kv, kv_next, kv_transfer, opts.progress, clock);
    clock.compute([&] { attend(src); });
    if (dkv_transfer.active()) {
      clock.wait([&] { dkv_transfer.finish(); });
      clock.compute([&] { for (size_t e = 0; e < mine.size(); ++e) mine[e] += incoming[e]; });
    }
    std::swap(mine, outgoing);
    dkv_transfer.start(
        cp.isendrecv(outgoing.data(), outgoing.size(), next, incoming.data(), incoming.size(), prev, kDkvTag),
        opts.progress);
    clock.sent(outgoing.size());
    if (kv_transfer.active()) {
      clock.wait([&] { kv_transfer.finish(); });
      std::swap(kv, kv_next);
    }
  }
  // The last hop brings this rank's own accumulator home: a step with nothing to compute.
  clock.next_step();
  clock.wait([&] { dkv_transfer.finish(); });
  clock.finish();
  const size_t kv_row = static_cast<size_t>(C.L.len) * s.KH * s.D;
  join_chunks(dq, dqc.data(), s.B, n, static_cast<size_t>(C.L.len) * s.H * s.D, true);
  join_chunks(dk, incoming.data(), s.B, n, kv_row, true);
  join_chunks(dv, incoming.data() + n * C.kv_chunk, s.B, n, kv_row, true);
}

}  // namespace rw
