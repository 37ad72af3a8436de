// `ringwise prepare`: tokenizes text into an HDF5 token dataset, showing throughput as it goes.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/dataset_writer.h"
#include "data/tokenizer.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/progress.h"

namespace po = boost::program_options;

namespace rw {
namespace {

void print_prepare_help(std::ostream& out) {
  out << "Usage: ringwise prepare --input PATH... --output FILE.h5 [options]\n"
         "\n"
         "Tokenizes text into an HDF5 token dataset that `ringwise train --data FILE.h5` reads: the\n"
         "tokens of every document followed by an end-of-document token, document offsets, and a\n"
         "validation split made of the last documents. Inputs are streamed, so memory stays small\n"
         "however large they are. The output appears only when complete.\n";
  print_option_lines(out, "Options",
                     {{"--input PATH...", "text or JSONL files, or directories of them (name order)"},
                      {"--output FILE", "the dataset to write (HDF5)"},
                      {"--tokenizer SPEC", kTokenizerSpecHelp},
                      {"--val-fraction F", "share of tokens for validation, in [0, 1) (default 0.01)"},
                      {"--format F", "auto, text or jsonl; auto: *.jsonl is JSONL (default auto)"},
                      {"--text-field NAME", "JSONL field holding a document's text (default text)"},
                      {"--split-blank-lines", "text: a blank line ends a document (default: one per file)"},
                      {"--compress LEVEL", "deflate level 1-9 for the tokens; 0 = off (default 0)"},
                      {"--force", "replace an existing output"},
                      {"-h, --help", "show this help"}});
  out << "\nExamples:\n"
         "  ringwise prepare --input /usr/share/games/fortunes --output runs/fortunes.h5\n"
         "  ringwise prepare --input corpus.jsonl --tokenizer bpe:bpe.json --compress 4 --output corpus.h5\n"
         "  ringwise prepare --input corpus.jsonl --tokenizer gguf:SmolLM2-135M.gguf --output smol.h5\n";
}

double parse_fraction(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  RW_USER_CHECK(!text.empty() && *end == '\0' && v >= 0 && v < 1,
                "invalid value '%s' for --val-fraction: expected a number in [0, 1)", text.c_str());
  return v;
}

InputFormat parse_format(const std::string& text) {
  if (text == "auto") return InputFormat::kAuto;
  if (text == "text") return InputFormat::kText;
  if (text == "jsonl") return InputFormat::kJsonl;
  throw UserError("invalid value '" + text + "' for --format: expected auto, text or jsonl");
}

// On a terminal one live line; otherwise a plain line at every tenth of the input.
class PrepareProgress {
 public:
  explicit PrepareProgress(bool interactive) : interactive_(interactive) {}
  void report(const PrepareStats& s) {
    const int tenth = s.total_bytes > 0 ? static_cast<int>(10 * s.bytes_read / s.total_bytes) : 0;
    if (!interactive_ && tenth <= last_tenth_) return;
    last_tenth_ = tenth;
    const double secs = s.seconds > 0 ? s.seconds : 1e-9;
    std::printf("%sprepare %8.1f/%.1f MB | %6.1f MB/s | %8.0f tokens/s | %lld docs%s", interactive_ ? "\r" : "",
                s.bytes_read / 1e6, s.total_bytes / 1e6, s.bytes_read / 1e6 / secs, s.tokens / secs,
                static_cast<long long>(s.docs), interactive_ ? "   " : "\n");
    std::fflush(stdout);
    live_ = interactive_;
  }
  void finish() {
    if (live_) std::printf("\n");
    live_ = false;
  }

 private:
  bool interactive_;
  bool live_ = false;
  int last_tenth_ = 0;
};

}  // namespace

int prepare_command(const std::vector<std::string>& args) {
  po::options_description desc;
  desc.add_options()("input", po::value<std::vector<std::string>>()->multitoken())("output", po::value<std::string>())(
      "tokenizer", po::value<std::string>())("val-fraction", po::value<std::string>())(
      "format", po::value<std::string>())("text-field", po::value<std::string>())("split-blank-lines", "")(
      "compress", po::value<std::string>())("force", "")("help,h", "");
  po::variables_map vm = parse_command_line(args, desc, "prepare");
  if (vm.count("help")) {
    print_prepare_help(std::cout);
    return 0;
  }
  PrepareOptions opts;
  RW_USER_CHECK(vm.count("input"), "prepare needs --input PATH (see 'ringwise help prepare')");
  RW_USER_CHECK(vm.count("output"), "prepare needs --output FILE.h5 (see 'ringwise help prepare')");
  opts.inputs = vm["input"].as<std::vector<std::string>>();
  opts.output = vm["output"].as<std::string>();
  if (vm.count("tokenizer")) opts.tokenizer = vm["tokenizer"].as<std::string>();
  if (vm.count("val-fraction")) opts.val_fraction = parse_fraction(vm["val-fraction"].as<std::string>());
  if (vm.count("format")) opts.format = parse_format(vm["format"].as<std::string>());
  if (vm.count("text-field")) opts.text_field = vm["text-field"].as<std::string>();
  if (vm.count("compress")) opts.compress = parse_int(vm["compress"].as<std::string>(), "--compress");
  opts.split_blank_lines = vm.count("split-blank-lines") > 0;
  opts.force = vm.count("force") > 0;

  PrepareProgress progress(stdout_is_tty());
  const PrepareStats s = prepare_dataset(opts, [&](const PrepareStats& now) { progress.report(now); });
  progress.finish();
  const double secs = s.seconds > 0 ? s.seconds : 1e-9;
  std::printf("done: %s: %lld tokens in %lld documents (train %lld, val %lld) from %.1f MB of text in %.2f s: "
              "%.1f MB/s, %.0f tokens/s\n",
              opts.output.c_str(), static_cast<long long>(s.tokens), static_cast<long long>(s.docs),
              static_cast<long long>(s.train_tokens), static_cast<long long>(s.tokens - s.train_tokens),
              s.bytes_read / 1e6, s.seconds, s.bytes_read / 1e6 / secs, s.tokens / secs);
  return 0;
}

}  // namespace rw
