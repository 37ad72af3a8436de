// `ringwise make-probes`: synthetic long-context probes (data/longbench_probes.h) written as a
// LongBench-format JSONL file that `ringwise eval --benchmark longbench` scores.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/program_options.hpp>

#include "core/check.h"
#include "data/longbench_probes.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"

namespace rw {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;

void print_help(std::ostream& out) {
  out << "Usage: ringwise make-probes --kind KIND --output DIR [options]\n"
         "\n"
         "Writes DIR/KIND.jsonl: synthetic long-context records in LongBench's format, one per\n"
         "length, depth and copy, for 'ringwise eval --benchmark longbench --data-dir DIR'.\n"
         "With --format train it writes DIR/KIND.train.jsonl instead: each record as the prompt eval\n"
         "feeds the model followed by its answer, a {\"text\": ...} document for 'ringwise prepare'.\n"
         "Use another --seed for training than for evaluation, and lengths whose prompts fit the\n"
         "model's max_seq (eval cuts longer prompts in the middle).\n";
  print_option_lines(out, "Probes",
                     {{"--kind KIND", "passkey, kv_retrieval or counting"},
                      {"--lengths N,M", "context lengths in words (default 1000)"},
                      {"--depths D,E", "needle depths from 0 (start) to 1 (end) (default 0,0.5,1)"},
                      {"--per-cell N", "records per length and depth (default 1)"},
                      {"--seed N", "random seed (default 0)"},
                      {"--format F", "eval (LongBench records) or train (prompt + answer documents) (default eval)"},
                      {"--output DIR", "where KIND.jsonl goes"},
                      {"--force", "replace an existing file"},
                      {"-h, --help", "show this help"}});
}

template <typename T>
std::vector<T> parse_list(const std::string& text, const char* option) {
  std::vector<T> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    std::istringstream one(item);
    T value;
    one >> value;
    RW_USER_CHECK(!one.fail() && one.eof(), "invalid value '%s' in %s", item.c_str(), option);
    out.push_back(value);
  }
  return out;
}

}  // namespace

int make_probes_command(const std::vector<std::string>& args) {
  po::options_description desc;
  desc.add_options()("kind", po::value<std::string>())("lengths", po::value<std::string>())(
      "depths", po::value<std::string>())("per-cell", po::value<std::string>())("seed", po::value<std::string>())(
      "format", po::value<std::string>())("output", po::value<std::string>())("force", "")("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "make-probes");
  if (vm.count("help")) {
    print_help(std::cout);
    return 0;
  }
  auto get = [&](const char* key, const std::string& fallback) {
    return vm.count(key) ? vm[key].as<std::string>() : fallback;
  };
  RW_USER_CHECK(vm.count("kind") && vm.count("output"), "--kind and --output are required (see 'ringwise make-probes --help')");
  longbench::ProbeOptions o;
  o.kind = get("kind", "");
  o.lengths = parse_list<int>(get("lengths", "1000"), "--lengths");
  o.depths = parse_list<double>(get("depths", "0,0.5,1"), "--depths");
  o.per_cell = parse_int(get("per-cell", "1"), "--per-cell");
  o.seed = static_cast<uint64_t>(parse_int(get("seed", "0"), "--seed"));
  const std::string format = get("format", "eval");
  RW_USER_CHECK(format == "eval" || format == "train", "--format must be eval or train, got '%s'", format.c_str());
  const bool training = format == "train";
  const std::vector<longbench::Record> records = longbench::make_probes(o);
  const std::string dir = get("output", ""), path = dir + "/" + o.kind + (training ? ".train.jsonl" : ".jsonl");
  RW_USER_CHECK(vm.count("force") || !fs::exists(path), "%s exists (use --force to replace it)", path.c_str());
  fs::create_directories(dir);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    RW_USER_CHECK(out.good(), "cannot write %s", tmp.c_str());
    for (const longbench::Record& r : records)
      out << (training ? longbench::training_json_line(r) : longbench::record_json_line(r)) << "\n";
    out.flush();
    RW_USER_CHECK(out.good(), "error writing %s", tmp.c_str());
  }
  fs::rename(tmp, path);
  std::printf("wrote %s: %zu %s %s\n", path.c_str(), records.size(), o.kind.c_str(),
              training ? "training documents" : "records");
  return 0;
}

}  // namespace rw
