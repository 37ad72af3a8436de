// `ringwise bench bpt`: one training step (forward, backward, AdamW) of the configured model at a
// range of sequence lengths, unblocked and with BPT (--bpt-block), on one process or on the cp
// ranks mpirun started. Per row it prints the activation memory the model carves out (counted),
// the per-rank peak resident memory during the step and the step time, each the maximum over the
// ranks. A row whose activations would pass --mem-limit-gb shows its counted bytes and is not run.
//
// Peak memory is the kernel's high-water mark (VmHWM), reset through /proc/self/clear_refs before
// each row's step, so a row measures its own step: parameters, gradients and AdamW state (the same
// in every row) plus that step's activations.
#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
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
#include "dist/zigzag.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "models/adamw.h"
#include "models/llama.h"

namespace po = boost::program_options;

namespace rw {
namespace {

struct BenchBptOptions {
  RunConfig run;  // the model, threads, attention blocks, cp and --bpt-block
  std::vector<int> seqs = {4096, 8192, 16384, 32768};
  int batch = 1;
  int bpt_block = 1024;
  int iters = 1;
  double mem_limit_gb = 8;
};

void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";  // resets VmHWM to the current resident size (Linux 4.0 and later)
  clear.flush();
  RW_USER_CHECK(clear.good(), "bench bpt needs to reset the peak-memory mark through /proc/self/clear_refs (Linux)");
}

double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // reported in kB
  throw UserError("no VmHWM line in /proc/self/status");
}

struct Row {
  double act_mb = 0, peak_mb = 0, step_s = 0;
  bool ran = false;
};

Row bench_row(const BenchBptOptions& o, Communicator& cp, int seq, int bpt_rows) {
  LlamaConfig mc = o.run.model;
  mc.max_seq = seq;
  LlamaModel model(mc, o.run.train.attn_block_q, o.run.train.attn_block_k);
  model.init_weights(o.run.train.seed);
  model.set_bpt_block(bpt_rows);
  RingAttention ring(cp);
  if (cp.size() > 1) model.set_context_parallel(&ring);
  const int P = cp.size(), r = cp.rank(), T = seq / P, N = o.batch * T;
  Row row;
  row.act_mb = model.activation_bytes(o.batch, T) / 1048576.0;
  if (row.act_mb > o.mem_limit_gb * 1024) return row;  // the same bytes, so the same choice, on every rank

  std::vector<int32_t> tokens(static_cast<size_t>(o.batch) * seq), local_tokens(N), local_targets(N);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<int32_t>(hash_keys(o.run.train.seed, i) % mc.vocab_size);
  zigzag_scatter(local_tokens.data(), tokens.data(), o.batch, seq, 1, P, r);
  // Each target is the next token of the (random) batch, scattered like the tokens.
  std::rotate(tokens.begin(), tokens.begin() + 1, tokens.end());
  zigzag_scatter(local_targets.data(), tokens.data(), o.batch, seq, 1, P, r);
  const std::vector<int32_t> pos = zigzag_positions(seq, P, r);
  cpu::AdamWParams hyper;
  hyper.lr = o.run.train.lr;
  AdamW adam(model.params(), hyper);

  cp.barrier();
  reset_peak_rss();
  const auto t0 = std::chrono::steady_clock::now();
  for (int it = 0; it < o.iters; ++it) {
    model.zero_grad();
    model.forward(local_tokens.data(), local_targets.data(), o.batch, T, pos.data());
    model.backward();
    if (P > 1) cp.allreduce(model.grad_buffer().data<float>(), model.params().total());
    adam.step(model.param_buffer().data<float>(), model.grad_buffer().data<float>(), hyper.lr, 1.0f);
  }
  double maxima[2] = {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / o.iters,
                      peak_rss_mb()};
  cp.allreduce(maxima, 2, ReduceOp::Max);
  row.step_s = maxima[0];
  row.peak_mb = maxima[1];
  row.ran = true;
  return row;
}

int run_bench_bpt(const BenchBptOptions& o) {
  const ParallelConfig& par = o.run.parallel;
  RW_USER_CHECK(par.dp == 1 && par.tp == 1 && par.ep == 1, "bench bpt spreads the sequence over --cp ranks only");
  if (launched_by_mpirun()) mpi_init(nullptr, nullptr);
  RW_USER_CHECK(par.cp == world_size(), "--cp %d but mpirun started %d ranks (run: mpirun -np %d ringwise bench bpt "
                "--cp %d ...)", par.cp, world_size(), par.cp, par.cp);
  for (int seq : o.seqs) check_zigzag(seq, par.cp);
  set_cpu_threads(o.run.train.threads);
  std::unique_ptr<Communicator> cp = par.cp > 1 ? make_mpi_world() : make_single();
  const bool print = cp->rank() == 0;
  const LlamaConfig& m = o.run.model;
  if (print) {
    std::printf("# ringwise bench bpt: %.2fM params (d_model %d, %d layers, %d/%d heads, ffn %d, vocab %d), batch %d, "
                "cp %d, %d thread(s) per rank, attention blocks %dx%d\n",
                m.num_params() / 1e6, m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.ffn_dim, m.vocab_size, o.batch,
                par.cp, cpu_threads(), o.run.train.attn_block_q, o.run.train.attn_block_k);
    std::printf("# one training step (forward, backward, AdamW) per row, %d timed; bpt 0 = unblocked. act_MB: the\n"
                "# activation buffer per rank (counted); peak_MB: peak resident memory of a rank during the step;\n"
                "# step_ms: step time; each the maximum over ranks. '-': over --mem-limit-gb %g, not run\n",
                o.iters, o.mem_limit_gb);
    std::printf("%8s %6s %10s %10s %10s %10s\n", "seq", "bpt", "act_MB", "peak_MB", "step_ms", "tok/s");
    std::fflush(stdout);
  }
  for (int seq : o.seqs)
    for (int bpt : {0, o.bpt_block}) {
      const Row row = bench_row(o, *cp, seq, bpt);
      if (!print) continue;
      if (row.ran)
        std::printf("%8d %6d %10.1f %10.1f %10.0f %10.0f\n", seq, bpt, row.act_mb, row.peak_mb, row.step_s * 1e3,
                    o.batch * seq / row.step_s);
      else
        std::printf("%8d %6d %10.1f %10s %10s %10s\n", seq, bpt, row.act_mb, "-", "-", "-");
      std::fflush(stdout);
    }
  return 0;
}

void print_bench_bpt_help() {
  std::cout << "Usage: ringwise bench bpt [options]   or   mpirun -np P ringwise bench bpt --cp P [options]\n\n"
               "Trains one step of the model at each sequence length, unblocked and with BPT (the MLPs and the\n"
               "loss in blocks of --bpt-block tokens, recomputed in backward), and prints the activation memory,\n"
               "the peak resident memory per rank and the step time: what BPT trades, memory for recompute.\n"
               "Use a real vocabulary (--vocab-size 32000): the logits are what BPT saves most.\n";
  print_option_lines(std::cout, "Benchmark",
                     {{"--seq L[,L...]", "global sequence lengths (default 4096,8192,16384,32768)"},
                      {"--batch-size N", "sequences per step (default here 1)"},
                      {"--bpt-block N", "BPT block in tokens for the blocked rows (default here 1024)"},
                      {"--iters N", "timed steps per row (default 1)"},
                      {"--mem-limit-gb X", "skip rows whose activations pass X GiB per rank (default 8)"}});
  print_run_options_help(std::cout);
  std::cout << "\nExample:\n"
               "  ringwise bench bpt --vocab-size 32000 --d-model 256 --layers 2 --ffn-dim 768 --threads 2\n";
}

}  // namespace

int bench_bpt_command(const std::vector<std::string>& args) {
  po::options_description desc = run_options();
  desc.add_options()("seq", po::value<std::string>())("iters", po::value<std::string>())(
      "mem-limit-gb", po::value<std::string>())("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "bench");
  if (vm.count("help")) {
    print_bench_bpt_help();
    return 0;
  }
  BenchBptOptions o;
  o.run = resolve_run_config(vm);
  if (vm.count("batch-size")) o.batch = o.run.train.batch_size;
  if (vm.count("bpt-block")) o.bpt_block = o.run.train.bpt_block;
  RW_USER_CHECK(o.bpt_block >= 1, "--bpt-block must be at least 1 for bench bpt (it compares with 0, unblocked)");
  if (vm.count("seq")) {
    o.seqs.clear();
    std::stringstream list(vm["seq"].as<std::string>());
    for (std::string item; std::getline(list, item, ',');) o.seqs.push_back(parse_int(item, "--seq"));
    RW_USER_CHECK(!o.seqs.empty(), "--seq needs at least one length");
  }
  if (vm.count("iters")) o.iters = parse_int(vm["iters"].as<std::string>(), "--iters");
  RW_USER_CHECK(o.iters >= 1, "--iters must be at least 1, got %d", o.iters);
  if (vm.count("mem-limit-gb")) {
    const std::string text = vm["mem-limit-gb"].as<std::string>();
    char* end = nullptr;
    o.mem_limit_gb = std::strtod(text.c_str(), &end);
    RW_USER_CHECK(!text.empty() && *end == '\0' && o.mem_limit_gb > 0,
                  "invalid value '%s' for --mem-limit-gb: expected a positive number", text.c_str());
  }
  return run_bench_bpt(o);
}

}  // namespace rw
