// `ringwise bench ring`: ring attention (causal, zigzag layout, forward + backward) on the CPU ranks
// mpirun started, for a range of sequence lengths and both ways of progressing transfers. For each
// it prints the step time, the time spent computing, the time spent waiting on transfers the
// computation did not hide, the same transfers timed alone, the fraction of them hidden, and the
// largest peak memory of any rank. Every number is the maximum over the ranks.
//
// On oversubscribed or shared cores the ranks compute at different speeds, and a rank's wait then
// mostly measures how long the slower rank computed, not the transfers: the wait-based fraction
// reads 0% hidden even when every byte moved behind computation. The step is therefore also split
// along its critical path: with a barrier before the step, the slowest rank's compute time is time
// the step needs anyway, and only the rest of the step (step - compute, both maxima over ranks)
// is communication that computation did not hide.
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
  int heads = 1, kv_heads = 1, head_dim = 64, batch = 1, iters = 1, threads = 1;
  std::vector<RingProgress> modes = {RingProgress::Poll, RingProgress::Thread};
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

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

// The transfers one forward + backward makes, without the computation: P-1 K/V hops forward, then
// P-1 hops of K/V and dK/dV together and the last dK/dV hop home.
double time_transfers_alone(Communicator& cp, size_t kv_floats) {
  const int P = cp.size(), next = (cp.rank() + 1) % P, prev = (cp.rank() + P - 1) % P;
  std::vector<float> a(kv_floats, 1.0f), b(kv_floats), c(kv_floats, 1.0f), d(kv_floats);
  cp.barrier();
  const auto t0 = Clock::now();
  for (int step = 0; step + 1 < P; ++step) cp.isendrecv(a.data(), a.size(), next, b.data(), b.size(), prev, 1)->wait();
  for (int step = 0; step < P; ++step) {
    std::unique_ptr<Request> kv;
    if (step + 1 < P) kv = cp.isendrecv(a.data(), a.size(), next, b.data(), b.size(), prev, 1);
    cp.isendrecv(c.data(), c.size(), next, d.data(), d.size(), prev, 2)->wait();
    if (kv) kv->wait();
  }
  return seconds_since(t0);
}

struct Row {
  double step_s = 0, compute_s = 0, wait_s = 0, alone_s = 0, rss_mb = 0;
};

Row bench_one(Communicator& cp, const BenchRingOptions& o, int seq, RingProgress mode, double alone_s) {
  cpu::AttentionShape s;
  s.B = o.batch;
  s.Tq = s.Tk = seq / cp.size();
  s.H = o.heads;
  s.KH = o.kv_heads;
  s.D = o.head_dim;
  s.causal = true;
  const size_t nq = static_cast<size_t>(s.B) * s.Tq * s.H * s.D, nkv = static_cast<size_t>(s.B) * s.Tk * s.KH * s.D;
  const uint64_t seed = 1000 + cp.rank();
  const std::vector<float> q = randn(nq, seed), k = randn(nkv, seed + 1), v = randn(nkv, seed + 2),
                           dout = randn(nq, seed + 3);
  std::vector<float> out(nq), lse(static_cast<size_t>(s.B) * s.H * s.Tq), dq(nq), dk(nkv), dv(nkv);
  Row row;
  for (int it = 0; it < o.iters; ++it) {
    RingTimes fwd, bwd;
    cp.barrier();
    const auto t0 = Clock::now();
    ring_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s, cp, {mode, &fwd});
    ring_attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), out.data(),
                            lse.data(), s, cp, {mode, &bwd});
    row.step_s += seconds_since(t0) / o.iters;
    row.compute_s += (fwd.compute_s + bwd.compute_s) / o.iters;
    row.wait_s += (fwd.wait_s + bwd.wait_s) / o.iters;
  }
  row.alone_s = alone_s;
  row.rss_mb = peak_rss_mb();
  double v5[5] = {row.step_s, row.compute_s, row.wait_s, row.alone_s, row.rss_mb};
  cp.allreduce(v5, 5, ReduceOp::Max);
  return {v5[0], v5[1], v5[2], v5[3], v5[4]};
}

// The share of the transfers (taking `alone_s` by themselves) that `exposed_s` of waiting leaves hidden.
double hidden_fraction(double exposed_s, double alone_s) {
  return alone_s > 0 ? std::clamp(1.0 - exposed_s / alone_s, 0.0, 1.0) : 1.0;
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
                "%d thread(s) per rank, %d timed iteration(s)\n",
                o.cp, o.batch, o.heads, o.kv_heads, o.head_dim, cpu_threads(), o.iters);
    std::printf("# times per step in ms, the maximum over ranks; exposed = wait / step; hidden_wait = 1 - wait /\n"
                "# transfers alone, a lower bound (waiting also covers ranks that computed slower); hidden_path =\n"
                "# 1 - (step - compute) / transfers alone, what the slowest rank's computation did not cover\n");
    std::printf("%8s %7s %10s %10s %9s %8s %10s %12s %12s %12s\n", "seq", "mode", "step_ms", "compute_ms", "wait_ms",
                "exposed", "alone_ms", "hidden_wait", "hidden_path", "peak_rss_MB");
    std::fflush(stdout);
  }
  for (int seq : o.seqs) {
    const size_t kv_floats = static_cast<size_t>(o.batch) * (seq / o.cp) * o.kv_heads * o.head_dim * 2;
    double alone = 0;
    if (o.cp > 1) {
      time_transfers_alone(*cp, kv_floats);  // the first large exchanges are slow: warm up
      alone = time_transfers_alone(*cp, kv_floats);
      cp->allreduce(&alone, 1, ReduceOp::Max);
    }
    for (RingProgress mode : o.modes) {
      const Row r = bench_one(*cp, o, seq, mode, alone);
      const double hidden_wait = hidden_fraction(r.wait_s, r.alone_s);
      const double hidden_path = hidden_fraction(r.step_s - r.compute_s, r.alone_s);
      if (print) {
        std::printf("%8d %7s %10.1f %10.1f %9.2f %7.1f%% %10.2f %11.0f%% %11.0f%% %12.0f\n", seq,
                    mode == RingProgress::Poll ? "poll" : "thread", r.step_s * 1e3, r.compute_s * 1e3,
                    r.wait_s * 1e3, 100 * r.wait_s / r.step_s, r.alone_s * 1e3, hidden_wait * 100, hidden_path * 100,
                    r.rss_mb);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

void print_bench_ring_help() {
  std::cout << "Usage: mpirun -np P ringwise bench ring --cp P [options]\n\n"
               "Times ring attention (causal, zigzag layout, forward + backward) over P CPU ranks and prints,\n"
               "per sequence length and transfer progress mode, the step, compute and wait times, the same\n"
               "transfers timed alone, the fraction of them hidden behind computation, and peak memory.\n";
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
  for (const char* name : {"cp", "seq", "progress", "heads", "kv-heads", "head-dim", "batch", "iters", "threads"})
    desc.add_options()(name, po::value<std::string>());
  desc.add_options()("help,h", "");
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
  return run_bench_ring(o);
}

}  // namespace rw
