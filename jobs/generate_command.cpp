// `ringwise generate`: continue a prompt with a checkpoint's model (KV-cache decoding, greedy or
// temperature and top-p sampling) and print the continuation; under mpirun with --cp P, the
// sequence is spread over the P ranks.
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>

#include "core/check.h"
#include "data/tokenizer.h"
#include "jobs/checkpoint_model.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/inference_ranks.h"
#include "models/llama_inference.h"

namespace rw {
namespace {

namespace po = boost::program_options;

void print_help(std::ostream& out) {
  out << "Usage: ringwise generate --checkpoint FILE.h5 --prompt TEXT [options]\n"
         "\n"
         "Prints the model's continuation of TEXT, stopping at the end token or --max-new-tokens.\n";
  print_option_lines(out, "Generation",
                     {{"--checkpoint FILE", "a ringwise checkpoint (or 'ringwise import' output)"},
                      {"--prompt TEXT", "the text to continue"},
                      {"--tokenizer SPEC", kTokenizerSpecHelp},
                      {"--max-new-tokens N", "at most this many tokens (default 64)"},
                      {"--temperature T", "0 decodes greedily (default 0)"},
                      {"--top-p P", "sample from the smallest set of ids with this much mass (default 1)"},
                      {"--seed N", "sampling seed (default 0)"},
                      {"--cp P", "spread the sequence over P ranks: mpirun -np P ringwise generate --cp P ..."},
                      {"-h, --help", "show this help"}});
}

float parse_float(const std::string& text, const char* option) {
  try {
    size_t used = 0;
    const float v = std::stof(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UserError("invalid value '" + text + "' for " + option + ": expected a number");
}

}  // namespace

int generate_command(const std::vector<std::string>& args) {
  po::options_description desc;
  desc.add_options()("checkpoint", po::value<std::string>())("prompt", po::value<std::string>())(
      "tokenizer", po::value<std::string>())("max-new-tokens", po::value<std::string>())(
      "temperature", po::value<std::string>())("top-p", po::value<std::string>())("seed", po::value<std::string>())(
      "cp", po::value<std::string>())("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "generate");
  if (vm.count("help")) {
    print_help(std::cout);
    return 0;
  }
  auto get = [&](const char* key, const std::string& fallback) {
    return vm.count(key) ? vm[key].as<std::string>() : fallback;
  };
  RW_USER_CHECK(vm.count("checkpoint") && vm.count("prompt"), "--checkpoint and --prompt are required");
  GenerateOptions gen;
  gen.max_new_tokens = parse_int(get("max-new-tokens", "64"), "--max-new-tokens");
  gen.sampling.temperature = parse_float(get("temperature", "0"), "--temperature");
  gen.sampling.top_p = parse_float(get("top-p", "1"), "--top-p");
  gen.seed = static_cast<uint64_t>(parse_int(get("seed", "0"), "--seed"));
  RW_USER_CHECK(gen.max_new_tokens >= 1, "--max-new-tokens must be at least 1, got %d", gen.max_new_tokens);
  RW_USER_CHECK(gen.sampling.temperature >= 0, "--temperature must not be negative, got %g", gen.sampling.temperature);
  RW_USER_CHECK(gen.sampling.top_p > 0 && gen.sampling.top_p <= 1, "--top-p must be in (0, 1], got %g",
                gen.sampling.top_p);
  InferenceRanks ranks(parse_int(get("cp", "1"), "--cp"), "generate");
  const std::unique_ptr<Tokenizer> tok = open_tokenizer(get("tokenizer", "byte"));
  gen.stop_tokens = {tok->eod_token()};
  const std::unique_ptr<LlamaModel> model = load_checkpoint_model(get("checkpoint", ""));
  const std::vector<int32_t> prompt = tok->encode(get("prompt", ""));
  const int need = static_cast<int>(prompt.size()) + gen.max_new_tokens;
  RW_USER_CHECK(need <= model->config().max_seq,
                "the prompt's %zu tokens plus --max-new-tokens %d exceed the model's max_seq %d", prompt.size(),
                gen.max_new_tokens, model->config().max_seq);
  LlamaInference engine(*model, need);
  ranks.attach(engine);
  const std::vector<int32_t> text = generate(engine, prompt, gen);
  if (ranks.writes()) std::cout << tok->decode(text) << "\n";
  return 0;
}

}  // namespace rw
