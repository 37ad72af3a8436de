// `ringwise tokenizer train`: learns a byte-level BPE vocabulary for `prepare --tokenizer bpe:FILE`.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/bpe_tokenizer.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"

namespace po = boost::program_options;

namespace rw {
namespace {

void print_tokenizer_help(std::ostream& out) {
  out << "Usage: ringwise tokenizer train --input PATH... --vocab-size N --output FILE\n"
         "\n"
         "Learns a byte-level BPE tokenizer from text: ids 0-255 are bytes, 256 ends a document and\n"
         "each further id merges the most frequent adjacent pair (deterministic, any byte string\n"
         "round-trips). The JSON file it writes is used as `ringwise prepare --tokenizer bpe:FILE`.\n";
  print_option_lines(out, "Options",
                     {{"--input PATH...", "text files, or directories of them"},
                      {"--vocab-size N", "ids in all, at least 257 (fewer when the text runs out of pairs)"},
                      {"--output FILE", "the tokenizer file to write (JSON)"},
                      {"-h, --help", "show this help"}});
}

}  // namespace

int tokenizer_command(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    print_tokenizer_help(std::cout);
    return 0;
  }
  RW_USER_CHECK(!args.empty() && args[0] == "train", "'ringwise tokenizer' needs an action: ringwise tokenizer train");
  po::options_description desc;
  desc.add_options()("input", po::value<std::vector<std::string>>()->multitoken())(
      "vocab-size", po::value<std::string>())("output", po::value<std::string>())("help,h", "");
  po::variables_map vm = parse_command_line(std::vector<std::string>(args.begin() + 1, args.end()), desc, "tokenizer");
  if (vm.count("help")) {
    print_tokenizer_help(std::cout);
    return 0;
  }
  RW_USER_CHECK(vm.count("input") && vm.count("vocab-size") && vm.count("output"),
                "tokenizer train needs --input PATH, --vocab-size N and --output FILE (see 'ringwise help tokenizer')");
  const int vocab_size = parse_int(vm["vocab-size"].as<std::string>(), "--vocab-size");
  const std::string output = vm["output"].as<std::string>();
  const auto start = std::chrono::steady_clock::now();
  auto bpe = BpeTokenizer::train(vm["input"].as<std::vector<std::string>>(), vocab_size);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bpe->save(output);
  std::printf("done: %s: %zu merges, vocab %d (asked %d), trained in %.2f s\n", output.c_str(), bpe->merges().size(),
              bpe->vocab_size(), vocab_size, secs);
  return 0;
}

}  // namespace rw
