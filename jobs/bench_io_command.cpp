// `ringwise bench io`: how close checkpoint I/O comes to the disk. Saves and loads a synthetic model
// state (weights + AdamW moments, LLaMA-shaped tensors) as a checkpoint, then writes and reads the
// same bytes with plain write()/read(), in the same directory, and prints both rates and their ratio.
// Pages are dropped from the page cache (posix_fadvise) before each read, and the output says how
// much of the file was still cached, since a cached read measures memory, not the disk.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "core/check.h"
#include "data/hdf5_checkpoint.h"
#include "data/hdf5_file.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace rw {
namespace {

struct BenchIoOptions {
  std::string dir = "/tmp";
  double size_gb = 1.0;  // of weights + both moments
  int iters = 3;         // rounds of all four operations; the median time of each is reported
  bool json = false;
};

// A LLaMA-like layer at d_model 1024, ffn 2816, repeated tensor by tensor until the state (3 fp32
// values per parameter) reaches the requested size.
struct SyntheticState {
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  std::vector<std::vector<float>> param, m, v;

  explicit SyntheticState(int64_t target_bytes) {
    constexpr int64_t C = 1024, F = 2816;
    const std::vector<std::pair<const char*, Shape>> layer = {
        {"input_layernorm.weight", {C}},        {"self_attn.q_proj.weight", {C, C}},
        {"self_attn.k_proj.weight", {C, C}},    {"self_attn.v_proj.weight", {C, C}},
        {"self_attn.o_proj.weight", {C, C}},    {"post_attention_layernorm.weight", {C}},
        {"mlp.gate_proj.weight", {F, C}},       {"mlp.up_proj.weight", {F, C}},
        {"mlp.down_proj.weight", {C, F}}};
    int64_t bytes = 0;
    for (int64_t i = 0; bytes < target_bytes; ++i) {
      const auto& [suffix, shape] = layer[i % layer.size()];
      names.push_back(format("model.layers.%lld.%s", static_cast<long long>(i / layer.size()), suffix));
      shapes.push_back(shape);
      bytes += 3 * shape_numel(shape) * static_cast<int64_t>(sizeof(float));
    }
    for (const Shape& s : shapes)
      for (auto* buf : {&param, &m, &v}) buf->emplace_back(shape_numel(s));
    fill();
  }
  // Values that differ per element and per buffer, so a misplaced byte is caught after loading.
  static float expected(size_t buffer, size_t i) { return static_cast<float>(buffer) + (i % 4099) * 1e-3f; }
  void fill() {
    const std::vector<std::vector<float>*> all = buffers();
    for (size_t b = 0; b < all.size(); ++b)
      for (size_t i = 0; i < all[b]->size(); ++i) (*all[b])[i] = expected(b, i);
  }
  void zero() {
    for (std::vector<float>* buf : buffers()) std::fill(buf->begin(), buf->end(), 0.0f);
  }
  bool matches_fill() {
    const std::vector<std::vector<float>*> all = buffers();
    for (size_t b = 0; b < all.size(); ++b)
      for (size_t i = 0; i < all[b]->size(); ++i)
        if ((*all[b])[i] != expected(b, i)) return false;
    return true;
  }
  std::vector<CheckpointTensor> tensors() {
    std::vector<CheckpointTensor> out;
    for (size_t i = 0; i < names.size(); ++i) out.push_back({names[i], shapes[i], param[i].data(), m[i].data(), v[i].data()});
    return out;
  }
  int64_t bytes() const {
    int64_t n = 0;
    for (const Shape& s : shapes) n += 3 * shape_numel(s) * static_cast<int64_t>(sizeof(float));
    return n;
  }
  // Every buffer in checkpoint order, for the raw comparison: the same bytes, the same sources.
  std::vector<std::vector<float>*> buffers() {
    std::vector<std::vector<float>*> out;
    for (size_t i = 0; i < names.size(); ++i) out.insert(out.end(), {&param[i], &m[i], &v[i]});
    return out;
  }
};

[[noreturn]] void io_failed(const char* what, const std::string& path) {
  throw std::runtime_error(format("%s %s failed: %s", what, path.c_str(), std::strerror(errno)));
}

// Raw baseline: one write() stream of every buffer, then fsync, as a checkpoint save does.
void raw_write(const std::string& path, SyntheticState& state) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) io_failed("open", path);
  for (std::vector<float>* buf : state.buffers()) {
    const char* p = reinterpret_cast<const char*>(buf->data());
    for (size_t left = buf->size() * sizeof(float); left > 0;) {
      const ssize_t n = ::write(fd, p, left);
      if (n <= 0) io_failed("write", path);
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) io_failed("fsync", path);
  if (::close(fd) != 0) io_failed("close", path);
}

void raw_read(const std::string& path, SyntheticState& state) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) io_failed("open", path);
  for (std::vector<float>* buf : state.buffers()) {
    char* p = reinterpret_cast<char*>(buf->data());
    for (size_t left = buf->size() * sizeof(float); left > 0;) {
      const ssize_t n = ::read(fd, p, left);
      if (n <= 0) io_failed("read", path);
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  ::close(fd);
}

// Asks the kernel to drop the file's (clean, fsynced) pages, then returns the fraction still cached.
double drop_from_page_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) io_failed("open", path);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // advice: the residency check below is the truth
  const size_t size = fs::file_size(path);
  double cached = 0;
  void* map = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  if (map != MAP_FAILED) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> resident((size + page - 1) / page);
    if (::mincore(map, size, resident.data()) == 0) {
      size_t n = 0;
      for (unsigned char r : resident) n += r & 1;
      cached = static_cast<double>(n) / resident.size();
    }
    ::munmap(map, size);
  }
  ::close(fd);
  return cached;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

template <class F>
double seconds_of(F f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Removes the benchmark's files however it ends.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

int run_bench_io(const BenchIoOptions& opts) {
  std::error_code ec;
  RW_USER_CHECK(fs::is_directory(opts.dir, ec), "--dir %s is not a directory", opts.dir.c_str());
  const ScratchDir scratch{opts.dir + format("/ringwise_bench_io.%d", static_cast<int>(::getpid()))};
  fs::create_directories(scratch.path, ec);
  RW_USER_CHECK(!ec, "cannot create %s: %s", scratch.path.c_str(), ec.message().c_str());
  const std::string raw_path = scratch.path + "/raw.bin";

  SyntheticState state(static_cast<int64_t>(opts.size_gb * 1e9));
  const double bytes = static_cast<double>(state.bytes());
  CheckpointMeta meta;
  meta.step = 1;
  meta.adam_step = 1;
  meta.config_text = "# ringwise bench io: synthetic state\n";

  // The shared disk drifts: rounds alternate checkpoint and raw I/O so that drift hits both.
  std::vector<double> times[4];  // ckpt save, raw write, ckpt load, raw read
  double file_bytes = 0, ckpt_cached = 0, raw_cached = 0;
  for (int round = 0; round < opts.iters; ++round) {
    std::string ckpt_path;
    times[0].push_back(seconds_of([&] { ckpt_path = save_checkpoint(scratch.path, meta, state.tensors()); }));
    ckpt_cached = std::max(ckpt_cached, drop_from_page_cache(ckpt_path));
    state.zero();
    times[2].push_back(seconds_of([&] { load_checkpoint(ckpt_path, state.tensors()); }));
    if (!state.matches_fill()) throw std::runtime_error("the checkpoint read back differs from what was written");
    file_bytes = static_cast<double>(fs::file_size(ckpt_path));
    fs::remove(ckpt_path, ec);

    times[1].push_back(seconds_of([&] { raw_write(raw_path, state); }));
    raw_cached = std::max(raw_cached, drop_from_page_cache(raw_path));
    state.zero();
    times[3].push_back(seconds_of([&] { raw_read(raw_path, state); }));
    if (!state.matches_fill()) throw std::runtime_error("the raw file read back differs from what was written");
    fs::remove(raw_path, ec);
  }
  const double ckpt_save_s = median(times[0]), raw_write_s = median(times[1]), ckpt_load_s = median(times[2]),
               raw_read_s = median(times[3]);

  const double gbps[4] = {bytes / ckpt_save_s / 1e9, bytes / raw_write_s / 1e9, bytes / ckpt_load_s / 1e9,
                          bytes / raw_read_s / 1e9};
  const double write_ratio = gbps[0] / gbps[1], read_ratio = gbps[2] / gbps[3];
  if (opts.json) {
    std::printf(
        "{\"dir\":\"%s\",\"iters\":%d,\"bytes\":%.0f,\"file_bytes\":%.0f,\"tensors\":%zu,\"ckpt_save_s\":%.6f,\"raw_write_s\":%.6f,"
        "\"ckpt_load_s\":%.6f,\"raw_read_s\":%.6f,\"ckpt_save_gbps\":%.4f,\"raw_write_gbps\":%.4f,"
        "\"ckpt_load_gbps\":%.4f,\"raw_read_gbps\":%.4f,\"write_ratio\":%.4f,\"read_ratio\":%.4f,"
        "\"ckpt_cached_before_read\":%.4f,\"raw_cached_before_read\":%.4f}\n",
        opts.dir.c_str(), opts.iters, bytes, file_bytes, state.names.size(), ckpt_save_s, raw_write_s, ckpt_load_s, raw_read_s,
        gbps[0], gbps[1], gbps[2], gbps[3], write_ratio, read_ratio, ckpt_cached, raw_cached);
    return 0;
  }
  std::printf("# ringwise bench io: %.3f GB of fp32 weights + AdamW moments (%zu LLaMA-shaped tensors x 3) in %s\n",
              bytes / 1e9, state.names.size(), opts.dir.c_str());
  std::printf("# checkpoint file %.3f GB (HDF5 overhead %.4f%%); writes include fsync; data verified after each read\n",
              file_bytes / 1e9, 100.0 * (file_bytes - bytes) / bytes);
  std::printf("# median of %d rounds, each: checkpoint save, load, raw write, read\n", opts.iters);
  std::printf("# page cache before reads (after posix_fadvise DONTNEED): at most %.0f%% of the checkpoint, %.0f%% of the raw file%s\n",
              100 * ckpt_cached, 100 * raw_cached,
              ckpt_cached > 0.05 || raw_cached > 0.05 ? " -- reads partly measure memory, not the disk" : "");
  std::printf("#\n#%16s %14s %10s %10s\n", "op", "bytes", "time_s", "GB/s");
  const char* ops[4] = {"ckpt_save", "raw_write", "ckpt_load", "raw_read"};
  const double secs[4] = {ckpt_save_s, raw_write_s, ckpt_load_s, raw_read_s};
  for (int i = 0; i < 4; ++i) std::printf(" %16s %14.0f %10.3f %10.3f\n", ops[i], bytes, secs[i], gbps[i]);
  std::printf("# checkpoint/raw: write %.2fx, read %.2fx (target >= 0.80x)\n", write_ratio, read_ratio);
  return 0;
}

void print_bench_io_help() {
  std::cout << "Usage: ringwise bench io [options]\n"
               "\n"
               "Saves and loads a synthetic model state as a ringwise checkpoint (HDF5, fsynced), then\n"
               "writes and reads the same bytes with plain write()/read() in the same directory, and\n"
               "prints the rates and the checkpoint/raw ratio.\n";
  print_option_lines(std::cout, "Options",
                     {{"--dir DIR", "where the files go (removed afterwards; default /tmp)"},
                      {"--size-gb X", "weights + AdamW moments to write (default 1)"},
                      {"--iters N", "rounds; the median time of each operation is shown (default 3)"},
                      {"--json", "print one JSON object instead of the table"},
                      {"-h, --help", "show this help"}});
}

}  // namespace

int bench_io_command(const std::vector<std::string>& args) {
  po::options_description desc;
  desc.add_options()("dir", po::value<std::string>())("size-gb", po::value<std::string>())("iters", po::value<std::string>())("json", "")("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "bench");
  if (vm.count("help")) {
    print_bench_io_help();
    return 0;
  }
  BenchIoOptions opts;
  if (vm.count("dir")) opts.dir = vm["dir"].as<std::string>();
  if (vm.count("size-gb")) {
    const std::string text = vm["size-gb"].as<std::string>();
    char* end = nullptr;
    opts.size_gb = std::strtod(text.c_str(), &end);
    RW_USER_CHECK(!text.empty() && *end == '\0' && std::isfinite(opts.size_gb) && opts.size_gb > 0 && opts.size_gb <= 1024,
                  "invalid value '%s' for --size-gb: expected a size in GB between 0 and 1024", text.c_str());
  }
  if (vm.count("iters")) opts.iters = parse_int(vm["iters"].as<std::string>(), "--iters");
  RW_USER_CHECK(opts.iters >= 1, "--iters must be at least 1, got %d", opts.iters);
  opts.json = vm.count("json") > 0;
  return run_bench_io(opts);
}

}  // namespace rw
