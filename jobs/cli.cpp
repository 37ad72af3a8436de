#include "jobs/cli.h"

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "core/check.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"

namespace po = boost::program_options;

namespace rw {
namespace {

using Args = std::vector<std::string>;

void print_overview(std::ostream& out) {
  out << "ringwise " RINGWISE_VERSION " - trains LLaMA-style transformers\n"
         "\n"
         "Usage:\n"
         "  ringwise train [options]         train a model, reporting loss and speed as it goes\n"
         "  ringwise bench train [options]   time training steps: tokens/s, MFU, peak memory\n"
         "  ringwise bench io [options]      time checkpoint save/load against raw disk I/O\n"
         "  ringwise bench ring --cp P ...   time ring attention over P MPI ranks (under mpirun)\n"
         "  ringwise bench dp [options]      allreduce bus bandwidth over the MPI ranks (under mpirun)\n"
         "  ringwise bench bpt [options]     memory and time of a training step with and without BPT blocks\n"
         "  ringwise inspect FILE            describe a checkpoint or dataset and verify every value\n"
         "  ringwise prepare [options]       tokenize text into an HDF5 dataset for --data\n"
         "  ringwise tokenizer train [opts]  learn a byte-level BPE tokenizer for prepare\n"
         "  ringwise export [options]        write a checkpoint as Hugging Face safetensors + config.json\n"
         "  ringwise import [options]        read a Hugging Face LLaMA directory into a checkpoint\n"
         "  ringwise eval --benchmark longbench [options]  generate and score LongBench answers\n"
         "  ringwise make-probes [options]   synthetic passkey / key-value / counting probes for eval\n"
         "  ringwise generate [options]      continue a prompt with a checkpoint's model\n"
         "  ringwise submit [options]        train as a Slurm batch job that checkpoints and requeues itself\n"
         "  ringwise status RUN_DIR          last step and loss, checkpoints and Slurm jobs of a run\n"
         "  ringwise plot METRICS -o F.svg   loss, learning rate and tokens/s against step (gnuplot)\n"
         "  ringwise help [train|bench]      explain a command and every one of its options\n"
         "  ringwise --version               print the version and whether CUDA was built in\n"
         "\n"
         "Start here (the small model on the built-in fortunes corpus, a few minutes):\n"
         "  ringwise train --preset small --steps 300\n";
}

void print_config_options_help(std::ostream& out) {
  print_option_lines(out, "Configuration",
                     {{"--config FILE", "read options from an INI file: 'd-model = 128' per line"},
                      {"--print-config", "print the resolved configuration as such a file and exit"},
                      {"-h, --help", "show this help"}});
}

void print_train_help(std::ostream& out) {
  out << "Usage: ringwise train [options]\n"
         "\n"
         "Trains a LLaMA-style decoder (RMSNorm, RoPE, SwiGLU, grouped-query attention) on a token\n"
         "dataset made by 'ringwise prepare' or on text read as bytes, with AdamW and a warmup +\n"
         "cosine learning-rate schedule. Progress goes to the terminal every --log-every steps and\n"
         "to a JSONL metrics file.\n"
         "\n"
         "Each setting is taken from, later ones winning: the --preset, the --config file, the\n"
         "other command-line options. --print-config shows the result without training.\n";
  print_run_options_help(out);
  print_config_options_help(out);
  out << "\nExamples:\n"
         "  ringwise train --preset small --steps 300\n"
         "  ringwise train --preset tiny --print-config > my.ini   # edit my.ini, then\n"
         "  ringwise train --config my.ini --lr 3e-4\n";
}

void print_bench_help(std::ostream& out) {
  out << "Usage: ringwise bench train [options]\n"
         "\n"
         "Times training steps of the configured model on this machine: --warmup untimed steps,\n"
         "then --iters timed ones. Reports tokens/s, GFLOP/s, MFU against the measured OpenBLAS\n"
         "sgemm peak, and peak memory. Takes every `ringwise train` option, so one config file\n"
         "serves both.\n";
  print_option_lines(out, "Benchmark",
                     {{"--warmup N", "untimed steps before timing (default 2)"},
                      {"--iters N", "timed steps (default 10)"},
                      {"--json", "print one JSON object instead of the table"}});
  print_run_options_help(out);
  print_config_options_help(out);
  out << "\nExample:\n"
         "  ringwise bench train --preset small --threads 2 --iters 20 --json\n";
}

po::options_description command_options() {
  po::options_description desc = run_options();
  desc.add_options()("config", po::value<std::string>())("print-config", "")("help,h", "");
  return desc;
}

}  // namespace

po::variables_map parse_command_line(const Args& args, const po::options_description& desc, const char* command) {
  // No abbreviations: a prefix must not silently pick one of several options.
  const int style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
  // Stray words are collected under a hidden option so that the error can quote the first one.
  po::options_description all = desc;
  all.add_options()("unexpected", po::value<Args>());
  po::positional_options_description positionals;
  positionals.add("unexpected", -1);
  const std::string hint = std::string(" (see 'ringwise help ") + command + "')";
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).style(style).positional(positionals).run(), vm);
  } catch (const po::error& e) {
    throw UserError(e.what() + hint);
  }
  if (vm.count("unexpected")) throw UserError("unexpected argument '" + vm["unexpected"].as<Args>()[0] + "'" + hint);
  return vm;
}

namespace {

int train_command(const Args& args) {
  po::variables_map vm = parse_command_line(args, command_options(), "train");
  if (vm.count("help")) {
    print_train_help(std::cout);
    return 0;
  }
  RunConfig cfg = resolve_run_config(vm);
  if (vm.count("print-config")) {
    write_config_file(std::cout, cfg);
    return 0;
  }
  return run_train(cfg);
}

int bench_train_command(const Args& args) {
  po::options_description desc = command_options();
  desc.add_options()("warmup", po::value<std::string>())("iters", po::value<std::string>())("json", "");
  po::variables_map vm = parse_command_line(args, desc, "bench");
  if (vm.count("help")) {
    print_bench_help(std::cout);
    return 0;
  }
  BenchTrainOptions opts;
  opts.run = resolve_run_config(vm);
  if (vm.count("print-config")) {
    write_config_file(std::cout, opts.run);
    return 0;
  }
  if (vm.count("warmup")) opts.warmup_steps = parse_int(vm["warmup"].as<std::string>(), "--warmup");
  if (vm.count("iters")) opts.timed_steps = parse_int(vm["iters"].as<std::string>(), "--iters");
  opts.json = vm.count("json") > 0;
  RW_USER_CHECK(opts.warmup_steps >= 0, "--warmup must not be negative, got %d", opts.warmup_steps);
  RW_USER_CHECK(opts.timed_steps >= 1, "--iters must be at least 1, got %d", opts.timed_steps);
  return run_bench_train(opts);
}

int help_command(const Args& args) {
  const std::string topic = args.empty() ? "" : args[0];
  if (topic.empty()) {
    print_overview(std::cout);
  } else if (topic == "train") {
    print_train_help(std::cout);
  } else if (topic == "prepare") {
    return prepare_command({"--help"});
  } else if (topic == "tokenizer") {
    return tokenizer_command({"--help"});
  } else if (topic == "export") {
    return export_command({"--help"});
  } else if (topic == "import") {
    return import_command({"--help"});
  } else if (topic == "eval") {
    return eval_command({"--help"});
  } else if (topic == "submit") {
    return submit_command({"--help"});
  } else if (topic == "status") {
    return status_command({"--help"});
  } else if (topic == "plot") {
    return plot_command({"--help"});
  } else if (topic == "bench") {
    print_bench_help(std::cout);
  } else {
    throw UserError("no help for '" + topic +
                    "' (topics: train, bench, prepare, tokenizer, export, import, submit, status, plot)");
  }
  return 0;
}

}  // namespace

int run_cli(int argc, char** argv) {
  const Args args(argv + 1, argv + argc);
  RW_USER_CHECK(!args.empty(), "no command given (try 'ringwise help')");
  const std::string& command = args[0];
  const Args rest(args.begin() + 1, args.end());
  if (command == "--version") {
#ifdef RINGWISE_HAVE_CUDA
    std::cout << "ringwise " RINGWISE_VERSION " (CUDA: yes)\n";
#else
    std::cout << "ringwise " RINGWISE_VERSION " (CUDA: no, CPU only)\n";
#endif
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") return help_command(rest);
  if (command == "train") return train_command(rest);
  if (command == "prepare") return prepare_command(rest);
  if (command == "tokenizer") return tokenizer_command(rest);
  if (command == "inspect") return inspect_command(rest);
  if (command == "export") return export_command(rest);
  if (command == "import") return import_command(rest);
  if (command == "eval") return eval_command(rest);
  if (command == "make-probes") return make_probes_command(rest);
  if (command == "generate") return generate_command(rest);
  if (command == "submit") return submit_command(rest);
  if (command == "status") return status_command(rest);
  if (command == "plot") return plot_command(rest);
  if (command == "bench") {
    if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) return help_command({"bench"});
    RW_USER_CHECK(!rest.empty(), "'ringwise bench' needs a target: ringwise bench train|io|ring|dp|bpt");
    if (rest[0] == "io") return bench_io_command(Args(rest.begin() + 1, rest.end()));
    if (rest[0] == "ring") return bench_ring_command(Args(rest.begin() + 1, rest.end()));
    if (rest[0] == "dp") return bench_dp_command(Args(rest.begin() + 1, rest.end()));
    if (rest[0] == "bpt") return bench_bpt_command(Args(rest.begin() + 1, rest.end()));
    RW_USER_CHECK(rest[0] == "train", "unknown benchmark '%s' (available: ringwise bench train|io|ring|dp|bpt)",
                  rest[0].c_str());
    return bench_train_command(Args(rest.begin() + 1, rest.end()));
  }
  throw UserError("unknown command '" + command +
                  "' (commands: train, bench train|io|ring|dp|bpt, prepare, tokenizer train, inspect, export, import, "
                  "eval, generate, make-probes, submit, status, plot, help; see 'ringwise help')");
}

}  // namespace rw
