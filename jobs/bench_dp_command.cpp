// `ringwise bench dp`: the allreduce that data parallelism runs on its gradients, timed over the
// ranks mpirun started for message sizes from 8 B to 256 MB, printed in nccl-tests' table format:
// algbw = bytes / time, busbw = algbw * 2(n-1)/n (the traffic each link carries in a ring
// allreduce, so numbers compare across rank counts). Times are the slowest rank's average; every
// size is first checked once for exact results (#wrong; any makes the exit code 1).
#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

#include "core/check.h"
#include "dist/communicator.h"
#include "dist/mpi_runtime.h"
#include "dist/watchdog.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"

namespace po = boost::program_options;

namespace rw {
namespace {

struct BenchDpOptions {
  size_t min_bytes = 8, max_bytes = size_t{256} << 20;
  int warmup = 2;
  int iters = 20;  // timed allreduces per size, fewer for large ones (see iters_for)
};

// Small messages are latency-bound and noisy, so they repeat more; large ones are capped at about
// 1 GB moved per size to keep the whole table within seconds.
int iters_for(size_t bytes, int iters) {
  return std::max(2, static_cast<int>(std::min<size_t>(iters, (size_t{1} << 30) / bytes)));
}

// Every rank contributes rank + 1 in every element: the sum n(n+1)/2 is exact in float.
int64_t count_wrong(Communicator& comm, std::vector<float>& buf, size_t count) {
  std::fill(buf.begin(), buf.begin() + count, static_cast<float>(comm.rank() + 1));
  comm.allreduce(buf.data(), count);
  const float expected = comm.size() * (comm.size() + 1) / 2.0f;
  double wrong = static_cast<double>(std::count_if(buf.begin(), buf.begin() + count, [&](float v) { return v != expected; }));
  comm.allreduce(&wrong, 1);
  return static_cast<int64_t>(wrong);
}

double seconds_per_allreduce(Communicator& comm, std::vector<float>& buf, size_t count, const BenchDpOptions& o) {
  for (int i = 0; i < o.warmup; ++i) comm.allreduce(buf.data(), count);
  const int iters = iters_for(count * sizeof(float), o.iters);
  comm.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) comm.allreduce(buf.data(), count);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  comm.allreduce(&s, 1, ReduceOp::Max);
  return s;
}

int run_bench_dp(const BenchDpOptions& o) {
  if (launched_by_mpirun()) mpi_init(nullptr, nullptr);
  const Watchdog watchdog(world_size() > 1 ? 300 : 0);
  std::unique_ptr<Communicator> comm = mpi_initialized() ? make_mpi_world() : make_single();
  const int n = comm->size();
  const bool print = comm->rank() == 0;
  std::vector<float> buf(o.max_bytes / sizeof(float));
  if (print) {
    std::printf("# ringwise bench dp: MPI_Allreduce, float sum in place, %d rank%s\n", n, n == 1 ? "" : "s");
    if (mpi_initialized()) {
      char library[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
      int len = 0;
      RW_MPI_CHECK(MPI_Get_library_version(library, &len));
      const std::string name(library, std::string(library).find_first_of(",\n"));
      std::printf("# %s; its coll/tuned module picks the algorithm per size\n", name.c_str());
    } else {
      std::printf("# one process without MPI: start it under mpirun -np N to measure a network\n");
    }
    std::printf("#\n#%12s %12s %8s %6s %10s %8s %8s %7s\n", "size", "count", "type", "redop", "time", "algbw",
                "busbw", "#wrong");
    std::printf("#%12s %12s %8s %6s %10s %8s %8s %7s\n", "(B)", "(elements)", "", "", "(us)", "(GB/s)", "(GB/s)", "");
  }
  int64_t total_wrong = 0;
  for (size_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 2) {
    const size_t count = bytes / sizeof(float);
    const int64_t wrong = count_wrong(*comm, buf, count);
    total_wrong += wrong;
    const double s = seconds_per_allreduce(*comm, buf, count, o);
    const double algbw = bytes / s / 1e9;
    const double busbw = algbw * 2.0 * (n - 1) / n;
    if (print) {
      std::printf(" %12zu %12zu %8s %6s %10.1f %8.3f %8.3f %7lld\n", bytes, count, "float", "sum", s * 1e6, algbw,
                  busbw, static_cast<long long>(wrong));
      std::fflush(stdout);
    }
  }
  if (total_wrong > 0 && print) std::fprintf(stderr, "ringwise: failed: %lld wrong elements\n", static_cast<long long>(total_wrong));
  return total_wrong > 0 ? 1 : 0;
}

void print_bench_dp_help() {
  std::cout << "Usage: mpirun -np N ringwise bench dp [options]\n"
               "\n"
               "Times MPI_Allreduce (the data-parallel gradient sum) over the N ranks for sizes from\n"
               "--min-bytes to --max-bytes, doubling, in the nccl-tests table format: time, algbw =\n"
               "bytes/time and busbw = algbw * 2(N-1)/N, with the slowest rank's time, and #wrong\n"
               "elements of a checked run.\n";
  print_option_lines(std::cout, "Benchmark",
                     {{"--min-bytes N", "smallest message (default 8)"},
                      {"--max-bytes N", "largest message (default 268435456 = 256 MB)"},
                      {"--warmup N", "untimed allreduces per size (default 2)"},
                      {"--iters N", "timed allreduces per size, fewer past 1 GB moved (default 20)"},
                      {"-h, --help", "show this help"}});
  std::cout << "\nExample:\n  mpirun -np 2 ringwise bench dp --max-bytes 67108864\n";
}

size_t parse_bytes(const po::variables_map& vm, const char* name, size_t fallback) {
  if (!vm.count(name)) return fallback;
  const std::string where = std::string("--") + name;
  const int v = parse_int(vm[name].as<std::string>(), where);
  RW_USER_CHECK(v >= 4 && v % 4 == 0, "%s must be a positive multiple of 4 (bytes of floats), got %d", where.c_str(), v);
  return static_cast<size_t>(v);
}

}  // namespace

int bench_dp_command(const std::vector<std::string>& args) {
  po::options_description desc;
  desc.add_options()("min-bytes", po::value<std::string>())("max-bytes", po::value<std::string>())(
      "warmup", po::value<std::string>())("iters", po::value<std::string>())("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "bench");
  if (vm.count("help")) {
    print_bench_dp_help();
    return 0;
  }
  BenchDpOptions o;
  o.min_bytes = parse_bytes(vm, "min-bytes", o.min_bytes);
  o.max_bytes = parse_bytes(vm, "max-bytes", o.max_bytes);
  if (vm.count("warmup")) o.warmup = parse_int(vm["warmup"].as<std::string>(), "--warmup");
  if (vm.count("iters")) o.iters = parse_int(vm["iters"].as<std::string>(), "--iters");
  RW_USER_CHECK(o.max_bytes >= o.min_bytes, "--max-bytes %zu must be at least --min-bytes %zu", o.max_bytes,
                o.min_bytes);
  RW_USER_CHECK(o.warmup >= 0, "--warmup must not be negative, got %d", o.warmup);
  RW_USER_CHECK(o.iters >= 1, "--iters must be at least 1, got %d", o.iters);
  return run_bench_dp(o);
}

}  // namespace rw
