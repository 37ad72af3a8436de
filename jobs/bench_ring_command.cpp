// `ringwise bench ring`: ring attention (causal, zigzag layout, forward + backward) on the CPU ranks
// mpirun started, for a range of sequence lengths and both ways of progressing transfers.
//
// Each row runs the step three times: freely, as training runs it (its wall time, the maximum over
// ranks); timed, with a barrier starting every ring step so that each step can be split across the
// ranks into the slowest rank's computation, the communication that held it up beyond that, and
// the rest (dist/ring_timing.h); and with the transfers only, which times the same transfers alone.
// A rank's own wait is not the measure: it may cover a neighbour that computed slower.
#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/cpu_threads.h"
#include "core/random.h"
#include "dist/mpi_runtime.h"
#include "dist/ring_attention.h"
#include "dist/ring_timing.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"

namespace po = boost::program_options;

namespace rw {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchRingOptions {
  int cp = 0;
  std::vector<int> seqs = {4096, 8192, 16384, 32768, 65536};
  int heads = 1, kv_heads = 1, head_dim = 64, batch = 1, iters = 1, threads = 1, tiles_per_call = 4;
  std::vector<RingProgress> modes = {RingProgress::Poll, RingProgress::Thread};
  bool per_step = false;
};

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

std::vector<float> randn(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(n);
  for (float& v : x) v = rng.normal();
  return x;
}

// One rank's inputs and outputs of a forward + backward at one sequence length.
class RingWorkload {
 public:
  RingWorkload(Communicator& cp, const BenchRingOptions& o, int seq) : cp_(cp) {
    s_.B = o.batch;
    s_.Tq = s_.Tk = seq / cp.size();
    s_.H = o.heads;
    s_.KH = o.kv_heads;
    s_.D = o.head_dim;
    s_.causal = true;
    const size_t nq = static_cast<size_t>(s_.B) * s_.Tq * s_.H * s_.D;
    const size_t nkv = static_cast<size_t>(s_.B) * s_.Tk * s_.KH * s_.D;
    const uint64_t seed = 1000 + cp.rank();
    q_ = randn(nq, seed), k_ = randn(nkv, seed + 1), v_ = randn(nkv, seed + 2), dout_ = randn(nq, seed + 3);
    out_.resize(nq), lse_.resize(static_cast<size_t>(s_.B) * s_.H * s_.Tq), dq_.resize(nq), dk_.resize(nkv),
        dv_.resize(nkv);
  }
  // Forward then backward, with the ranks starting together; returns the wall time, the maximum
  // over ranks.
  double run(const RingOptions& opts) {
    cp_.barrier();
    const auto t0 = Clock::now();
    ring_attention_forward(out_.data(), lse_.data(), q_.data(), k_.data(), v_.data(), s_, cp_, opts);
    ring_attention_backward(dq_.data(), dk_.data(), dv_.data(), dout_.data(), q_.data(), k_.data(), v_.data(),
                            out_.data(), lse_.data(), s_, cp_, opts);
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    cp_.allreduce(&wall, 1, ReduceOp::Max);
    return wall;
  }
  // Every rank's step records of one timed forward + backward.
  std::vector<RingTimes> timed(RingOptions opts) {
    RingTimes mine;
    opts.times = &mine;
    run(opts);
    return gather_ring_times(mine, cp_);
  }

 private:
  Communicator& cp_;
  cpu::AttentionShape s_;
  std::vector<float> q_, k_, v_, dout_, out_, lse_, dq_, dk_, dv_;
};

const char* mode_name(RingProgress mode) { return mode == RingProgress::Poll ? "poll" : "thread"; }

// Step by step (forward steps, backward steps, the last dK/dV hop home), in ms: the fastest rank's
// computation, the longest wait, and the step's accounting (one step of ring_overlap).
void print_steps(int seq, RingProgress mode, const std::vector<RingTimes>& run, const std::vector<RingTimes>& alone) {
  const size_t P = run.size();
  for (size_t i = 0; i < run[0].size(); ++i) {
    double least = 1e300, wait = 0;
    for (size_t r = 0; r < P; ++r) {
      least = std::min(least, run[r][i].compute_s);
      wait = std::max(wait, run[r][i].wait_s);
    }
    std::vector<RingTimes> step_run(P), step_alone(P);
    for (size_t r = 0; r < P; ++r) step_run[r] = {run[r][i]}, step_alone[r] = {alone[r][i]};
    const RingOverlap o = ring_overlap(step_run, step_alone);
    const char* pass = i < P ? "fwd" : i < 2 * P ? "bwd" : "home";
    std::printf("#   %8d %7s %4s %3zu %9.2f %10.2f %9.2f %9.2f %10.2f %8.2f %9.2f\n", seq, mode_name(mode), pass,
                i < P ? i : i - P, o.step_s * 1e3, o.compute_s * 1e3, least * 1e3, wait * 1e3, o.exposed_s * 1e3,
                o.other_s * 1e3, o.alone_s * 1e3);
  }
}

int run_bench_ring(const BenchRingOptions& o) {
  if (launched_by_mpirun()) mpi_init(nullptr, nullptr);
  RW_USER_CHECK(o.cp == world_size(), "--cp %d but mpirun started %d ranks (run: mpirun -np %d ringwise bench ring "
                "--cp %d ...)", o.cp, world_size(), o.cp, o.cp);
  for (int seq : o.seqs)
    RW_USER_CHECK(seq > 0 && seq % (2 * o.cp) == 0,
                  "--seq %d must be a positive multiple of 2 * --cp = %d (2 zigzag chunks per rank)", seq, 2 * o.cp);
  set_cpu_threads(o.threads);
  std::unique_ptr<Communicator> cp = o.cp > 1 ? make_mpi_world() : make_single();
  const bool print = cp->rank() == 0;
  if (print) {
    std::printf("# ring attention, causal zigzag, forward + backward: cp %d, batch %d, heads %d/%d, head dim %d, "
                "%d thread(s) per rank, %d query tile(s) of %d per kernel call, %d timed iteration(s)\n",
                o.cp, o.batch, o.heads, o.kv_heads, o.head_dim, cpu_threads(), o.tiles_per_call,
                cpu::AttentionShape().block_q, o.iters);
    std::printf("# ms per forward + backward. free: run as training runs it; the rest from a run with a barrier\n"
                "# before every ring step, sums over the steps: step = the longest rank's step; compute = the\n"
                "# slowest rank's computation; exposed = how much later than that some rank finished computing\n"
                "# and waiting on transfers (communication not hidden); other = step - compute - exposed (the\n"
                "# barrier, and ranks not running on shared cores); alone = the same transfers with no\n"
                "# computation; GB/s = bytes a rank sent / alone; hidden = 1 - exposed / alone;\n"
                "# where_computing = the same without the backward's last hop, which no computation follows;\n"
                "# peak = the largest peak RSS of any rank\n");
    if (o.per_step)
      std::printf("#   %8s %7s %4s %3s %9s %10s %9s %9s %10s %8s %9s\n", "seq", "mode", "pass", "i", "step_ms",
                  "compute_ms", "min_comp", "max_wait", "exposed_ms", "other_ms", "alone_ms");
    std::printf("%8s %7s %9s %9s %10s %10s %9s %9s %7s %7s %15s %8s\n", "seq", "mode", "free_ms", "step_ms",
                "compute_ms", "exposed_ms", "other_ms", "alone_ms", "GB/s", "hidden", "where_computing", "peak_MB");
    std::fflush(stdout);
  }
  for (int seq : o.seqs) {
    RingWorkload work(*cp, o, seq);
    RingOptions transfers;
    transfers.transfers_only = true;
    work.run(transfers);  // the first large exchanges are slow: warm up
    const std::vector<RingTimes> alone = work.timed(transfers);
    for (RingProgress mode : o.modes) {
      RingOptions opts;
      opts.progress = mode;
      opts.tiles_per_call = o.tiles_per_call;
      // Averages over the timed iterations.
      double free_s = 0;
      RingOverlap avg;
      for (int it = 0; it < o.iters; ++it) {
        free_s += work.run(opts) / o.iters;
        const std::vector<RingTimes> run = work.timed(opts);
        const RingOverlap x = ring_overlap(run, alone);
        avg.step_s += x.step_s / o.iters, avg.compute_s += x.compute_s / o.iters;
        avg.exposed_s += x.exposed_s / o.iters, avg.bare_exposed_s += x.bare_exposed_s / o.iters;
        avg.other_s += x.other_s / o.iters;
        avg.alone_s = x.alone_s, avg.bare_alone_s = x.bare_alone_s, avg.sent_bytes = x.sent_bytes;
        if (print && o.per_step) print_steps(seq, mode, run, alone);
      }
      double rss = peak_rss_mb();
      cp->allreduce(&rss, 1, ReduceOp::Max);
      if (!print) continue;
      std::printf("%8d %7s %9.1f %9.1f %10.1f %10.2f %9.2f %9.2f", seq, mode_name(mode), free_s * 1e3,
                  avg.step_s * 1e3, avg.compute_s * 1e3, avg.exposed_s * 1e3, avg.other_s * 1e3, avg.alone_s * 1e3);
      if (avg.sent_bytes > 0)
        std::printf(" %7.2f %6.0f%% %14.0f%%", avg.sent_bytes / avg.alone_s * 1e-9, avg.hidden() * 100,
                    avg.hidden_where_computing() * 100);
      else
        std::printf(" %7s %7s %15s", "-", "-", "-");
      std::printf(" %8.0f\n", rss);
      std::fflush(stdout);
    }
  }
  return 0;
}

void print_bench_ring_help() {
  std::cout << "Usage: mpirun -np P ringwise bench ring --cp P [options]\n\n"
               "Times ring attention (causal, zigzag layout, forward + backward) over P CPU ranks and prints,\n"
               "per sequence length and transfer progress mode, the step time, the slowest rank's compute time\n"
               "step by step, the communication it left exposed, the same transfers timed alone, their\n"
               "bandwidth, the fraction hidden behind computation, and peak memory.\n";
  print_option_lines(std::cout, "Options",
                     {{"--cp P", "context-parallel ranks: the number mpirun started (required)"},
                      {"--seq L[,L...]", "global sequence lengths (default 4096,8192,16384,32768,65536)"},
                      {"--progress MODE", "poll, thread or both (default both)"},
                      {"--heads N", "query heads (default 1)"},
                      {"--kv-heads N", "key/value heads (default 1)"},
                      {"--head-dim N", "head dimension (default 64)"},
                      {"--batch N", "sequences per step (default 1)"},
                      {"--iters N", "timed iterations per row (default 1)"},
                      {"--threads N", "OpenMP threads per rank (default 1)"},
                      {"--tiles-per-call N", "query tiles per kernel call, between transfer polls (default 4)"},
                      {"--per-step", "also print every ring step of every timed run"},
                      {"-h, --help", "show this help"}});
}

int positive(const po::variables_map& vm, const char* name, int fallback) {
  if (!vm.count(name)) return fallback;
  const std::string flag = std::string("--") + name;
  const int n = parse_int(vm[name].as<std::string>(), flag);
  RW_USER_CHECK(n >= 1, "%s must be at least 1, got %d", flag.c_str(), n);
  return n;
}

}  // namespace

int bench_ring_command(const std::vector<std::string>& args) {
  po::options_description desc;
  for (const char* name :
       {"cp", "seq", "progress", "heads", "kv-heads", "head-dim", "batch", "iters", "threads", "tiles-per-call"})
    desc.add_options()(name, po::value<std::string>());
  desc.add_options()("per-step", "")("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "bench");
  if (vm.count("help")) {
    print_bench_ring_help();
    return 0;
  }
  BenchRingOptions o;
  RW_USER_CHECK(vm.count("cp"), "ringwise bench ring needs --cp P (the number of ranks mpirun started)");
  o.cp = positive(vm, "cp", 0);
  if (vm.count("seq")) {
    o.seqs.clear();
    std::stringstream list(vm["seq"].as<std::string>());
    for (std::string item; std::getline(list, item, ',');) o.seqs.push_back(parse_int(item, "--seq"));
    RW_USER_CHECK(!o.seqs.empty(), "--seq needs at least one length");
  }
  if (vm.count("progress")) {
    const std::string m = vm["progress"].as<std::string>();
    RW_USER_CHECK(m == "poll" || m == "thread" || m == "both",
                  "invalid value '%s' for --progress: expected poll, thread or both", m.c_str());
    if (m == "poll") o.modes = {RingProgress::Poll};
    if (m == "thread") o.modes = {RingProgress::Thread};
  }
  o.heads = positive(vm, "heads", o.heads);
  o.kv_heads = positive(vm, "kv-heads", o.kv_heads);
  RW_USER_CHECK(o.heads % o.kv_heads == 0, "--kv-heads %d must divide --heads %d", o.kv_heads, o.heads);
  o.head_dim = positive(vm, "head-dim", o.head_dim);
  o.batch = positive(vm, "batch", o.batch);
  o.iters = positive(vm, "iters", o.iters);
  o.threads = positive(vm, "threads", o.threads);
  o.tiles_per_call = positive(vm, "tiles-per-call", o.tiles_per_call);
  o.per_step = vm.count("per-step") > 0;
  return run_bench_ring(o);
}

}  // namespace rw
