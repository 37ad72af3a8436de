// The `ringwise` command line, end to end: the built binary is run as a user would run it, and
// every bad input must end as exactly one "ringwise: error: ..." line naming the option, field or
// file, with exit code 2. Only --print-config, --help and --version are run, so nothing trains.
// A second group calls resolve_run_config() directly through boost::program_options.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "jobs/cli_options.h"
#include "jobs/run_config.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

using Args = std::vector<std::string>;

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "key = value" lines of a config file; comments and blank lines skipped.
std::map<std::string, std::string> parse_ini(const std::string& text) {
  std::map<std::string, std::string> kv;
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(' '));
      s.erase(s.find_last_not_of(' ') + 1);
      return s;
    };
    kv[trim(key)] = trim(value);
  }
  return kv;
}

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "ringwise_cli_XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    // A corpus of our own, so that --print-config does not depend on the fortunes package.
    data_ = path("corpus.txt");
    write_file(data_, "Hello, ringwise. The quick brown fox jumps over the lazy dog.\n");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // Runs the binary with `args`, stdout and stderr captured apart.
  RunResult run(const Args& args) const {
    std::string cmd = RINGWISE_BINARY;
    for (const std::string& a : args) cmd += " " + shell_quote(a);
    const std::string err_path = path("stderr.txt");
    cmd += " 2>" + shell_quote(err_path) + " </dev/null";
    RunResult r;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return r;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
    int status = pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = read_file(err_path);
    return r;
  }

  // A usage error: exit code 2, nothing on stdout, exactly one line on stderr, "ringwise: error:"
  // first, naming every one of `mentions`.
  void expect_user_error(const Args& args, const std::vector<std::string>& mentions) const {
    std::string cmdline = "ringwise";
    for (const std::string& a : args) cmdline += " " + a;
    SCOPED_TRACE(cmdline);
    RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 2) << "stderr: " << r.err;
    EXPECT_EQ(r.out, "");
    std::vector<std::string> lines = lines_of(r.err);
    ASSERT_EQ(lines.size(), 1u) << "stderr: " << r.err;
    EXPECT_EQ(r.err.back(), '\n');
    EXPECT_EQ(lines[0].rfind("ringwise: error: ", 0), 0u) << lines[0];
    for (const std::string& m : mentions) EXPECT_NE(lines[0].find(m), std::string::npos) << lines[0] << " lacks " << m;
  }

  // The --print-config output of `ringwise train args...`, which must succeed.
  std::string print_config(Args args) const {
    args.insert(args.begin(), "train");
    args.push_back("--print-config");
    RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    return r.out;
  }

  std::string dir_, data_;
};

// --- what always works --------------------------------------------------------------------------

TEST_F(CliTest, VersionPrintsVersionAndExitsZero) {
  RunResult r = run({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("ringwise " RINGWISE_VERSION, 0), 0u) << r.out;
  EXPECT_NE(r.out.find("CUDA"), std::string::npos);
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, HelpOverviewNamesEveryCommand) {
  for (const Args& args : {Args{"help"}, Args{"--help"}, Args{"-h"}}) {
    RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 0);
    for (const char* word : {"ringwise train", "ringwise bench train", "ringwise help", "--version"})
      EXPECT_NE(r.out.find(word), std::string::npos) << word;
  }
}

TEST_F(CliTest, HelpTrainListsEveryOptionWithItsDefault) {
  RunResult r = run({"help", "train"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Usage: ringwise train", 0), 0u);
  // Every option of the table appears as "--name ", and so do the ones outside it.
  const po::options_description table = rw::run_options();  // kept alive: options() refers into it
  for (const auto& opt : table.options())
    EXPECT_NE(r.out.find("--" + opt->long_name() + " "), std::string::npos) << opt->long_name();
  for (const char* flag : {"--config FILE", "--print-config", "--help"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  // Defaults, from the small preset and TrainConfig.
  for (const char* text : {"--d-model N", "(default 256)", "--lr X", "(default 0.001)", "(default 1337)",
                           "(default runs/latest)", "(default false)", "(default 10000)", "(default 1e-05)"})
    EXPECT_NE(r.out.find(text), std::string::npos) << text;
  // `train --help` is the same text.
  RunResult r2 = run({"train", "--help"});
  EXPECT_EQ(r2.exit_code, 0);
  EXPECT_EQ(r2.out, r.out);
}

TEST_F(CliTest, HelpBenchListsBenchmarkAndTrainOptions) {
  RunResult r = run({"help", "bench"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* text : {"Usage: ringwise bench train", "--warmup N", "--iters N", "--json", "--d-model N"})
    EXPECT_NE(r.out.find(text), std::string::npos) << text;
  EXPECT_EQ(run({"bench", "--help"}).out, r.out);
  EXPECT_EQ(run({"bench", "train", "--help"}).out, r.out);
}

// --- usage errors: one line, exit code 2 ---------------------------------------------------------

TEST_F(CliTest, NoCommandIsAnError) { expect_user_error({}, {"no command"}); }

TEST_F(CliTest, UnknownCommandIsNamed) {
  expect_user_error({"trian"}, {"unknown command 'trian'", "ringwise help"});
  expect_user_error({"bench"}, {"bench train"});
  expect_user_error({"bench", "infer"}, {"unknown benchmark 'infer'"});
  expect_user_error({"help", "nonsense"}, {"'nonsense'"});
}

TEST_F(CliTest, UnknownOptionIsNamed) {
  expect_user_error({"train", "--bogus-option", "3"}, {"--bogus-option", "ringwise help train"});
  expect_user_error({"bench", "train", "--nope"}, {"--nope", "ringwise help bench"});
  // --iters belongs to bench, not train.
  expect_user_error({"train", "--iters", "3"}, {"--iters"});
}

TEST_F(CliTest, PrefixesAreNotGuessed) {
  // "--d" could be --d-model or --data: rejected rather than silently picking one.
  expect_user_error({"train", "--d", "64", "--print-config"}, {"--d"});
  expect_user_error({"train", "--lay", "2", "--print-config"}, {"--lay"});
}

TEST_F(CliTest, StrayArgumentIsNamed) {
  expect_user_error({"train", "--data", data_, "extra", "--print-config"}, {"unexpected argument 'extra'"});
}

TEST_F(CliTest, MissingValueIsNamed) { expect_user_error({"train", "--lr"}, {"--lr"}); }

TEST_F(CliTest, BadValuesNameTheOption) {
  const std::string d = data_;
  expect_user_error({"train", "--data", d, "--lr", "abc", "--print-config"}, {"'abc'", "--lr", "number"});
  expect_user_error({"train", "--data", d, "--lr", "1e-3x", "--print-config"}, {"--lr"});
  expect_user_error({"train", "--data", d, "--lr", "nan", "--print-config"}, {"--lr"});
  expect_user_error({"train", "--data", d, "--lr", "1e99", "--print-config"}, {"--lr"});
  expect_user_error({"train", "--data", d, "--seed", "-5", "--print-config"}, {"'-5'", "--seed"});
  expect_user_error({"train", "--data", d, "--steps", "1.5", "--print-config"}, {"'1.5'", "--steps", "integer"});
  expect_user_error({"train", "--data", d, "--steps", "99999999999", "--print-config"}, {"--steps"});
  expect_user_error({"train", "--data", d, "--batch-size", "", "--print-config"}, {"--batch-size"});
  expect_user_error({"train", "--data", d, "--tied-embeddings=maybe", "--print-config"},
                    {"'maybe'", "--tied-embeddings", "true or false"});
  expect_user_error({"bench", "train", "--data", d, "--iters", "ten"}, {"'ten'", "--iters"});
}

TEST_F(CliTest, OutOfRangeValuesNameTheField) {
  const std::string d = data_;
  expect_user_error({"train", "--data", d, "--layers", "-1", "--print-config"}, {"layers", "-1"});
  expect_user_error({"train", "--data", d, "--layers", "0", "--print-config"}, {"layers"});
  expect_user_error({"train", "--data", d, "--steps", "0", "--print-config"}, {"steps"});
  expect_user_error({"train", "--data", d, "--lr", "-1", "--print-config"}, {"lr"});
  expect_user_error({"train", "--data", d, "--beta2", "1", "--print-config"}, {"beta2"});
  expect_user_error({"train", "--data", d, "--threads", "-2", "--print-config"}, {"threads"});
  expect_user_error({"train", "--data", d, "--seq-len", "512", "--print-config"}, {"--seq-len 512", "--max-seq 256"});
  expect_user_error({"train", "--data", d, "--min-lr", "0.1", "--lr", "0.01", "--print-config"}, {"--min-lr"});
  expect_user_error({"bench", "train", "--data", d, "--iters", "0"}, {"--iters"});
  expect_user_error({"bench", "train", "--data", d, "--warmup", "-1"}, {"--warmup"});
}

TEST_F(CliTest, ImpossibleShapeIsExplained) {
  const std::string d = data_;
  expect_user_error({"train", "--data", d, "--heads", "3", "--print-config"}, {"--heads 3", "--d-model 256"});
  expect_user_error({"train", "--data", d, "--kv-heads", "3", "--print-config"}, {"--kv-heads 3", "--heads 4"});
  // 256 / 128 heads = head dim 2 is fine; 256 / 256 = 1 is odd, which RoPE cannot rotate.
  expect_user_error({"train", "--data", d, "--heads", "256", "--kv-heads", "1", "--print-config"}, {"RoPE"});
  expect_user_error({"train", "--data", d, "--preset", "huge", "--print-config"}, {"'huge'", "tiny", "small"});
}

TEST_F(CliTest, MissingDataNamesThePath) {
  const std::string missing = path("no/such/corpus.txt");
  expect_user_error({"train", "--data", missing, "--print-config"}, {missing, "--data"});
  // Checked before anything trains, for bench as well.
  expect_user_error({"bench", "train", "--data", missing}, {missing});
}

TEST_F(CliTest, MissingConfigNamesThePath) {
  const std::string missing = path("missing.ini");
  expect_user_error({"train", "--config", missing, "--print-config"}, {missing, "does not exist"});
  expect_user_error({"train", "--config", dir_, "--print-config"}, {dir_, "not a regular file"});
}

TEST_F(CliTest, BadConfigFileNamesTheFileAndKey) {
  const std::string bad_key = path("bad_key.ini");
  write_file(bad_key, "d-model = 64\nbogus-key = 1\n");
  expect_user_error({"train", "--config", bad_key, "--data", data_, "--print-config"}, {bad_key, "bogus-key"});

  const std::string bad_value = path("bad_value.ini");
  write_file(bad_value, "lr = fast\n");
  expect_user_error({"train", "--config", bad_value, "--data", data_, "--print-config"}, {bad_value, "lr", "'fast'"});

  const std::string bad_shape = path("bad_shape.ini");
  write_file(bad_shape, "heads = 3\n");
  expect_user_error({"train", "--config", bad_shape, "--data", data_, "--print-config"}, {"--heads 3"});

  // Options of the command line only (not run settings) are not config keys.
  const std::string nested = path("nested.ini");
  write_file(nested, "config = other.ini\n");
  expect_user_error({"train", "--config", nested, "--data", data_, "--print-config"}, {nested, "config"});
}

// --- --print-config, config files and precedence ------------------------------------------------

TEST_F(CliTest, PrintConfigHasEveryKeyAndDoesNotTrain) {
  std::string out = print_config({"--data", data_});
  EXPECT_EQ(out.find("STUB"), std::string::npos);  // no training command ran
  std::map<std::string, std::string> kv = parse_ini(out);
  EXPECT_EQ(kv["preset"], "small");
  const po::options_description table = rw::run_options();  // kept alive: options() refers into it
  for (const auto& opt : table.options())
    EXPECT_EQ(kv.count(opt->long_name()), 1u) << opt->long_name();
  EXPECT_EQ(kv["d-model"], "256");
  EXPECT_EQ(kv["layers"], "4");
  EXPECT_EQ(kv["lr"], "0.001");
  EXPECT_EQ(kv["norm-eps"], "1e-05");
  EXPECT_EQ(kv["rope-theta"], "10000");
  EXPECT_EQ(kv["tied-embeddings"], "false");
  EXPECT_EQ(kv["data"], data_);
  EXPECT_EQ(kv["metrics"], "");
  // bench train resolves the same configuration from the same options.
  RunResult bench = run({"bench", "train", "--data", data_, "--print-config"});
  EXPECT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_EQ(bench.out, out);
}

TEST_F(CliTest, PrintConfigRoundTripsThroughConfig) {
  const std::vector<Args> variants = {
      {"--data", data_},
      {"--data", data_, "--preset", "tiny", "--lr", "3e-4", "--min-lr", "0", "--rope-theta", "500000", "--norm-eps",
       "1e-6", "--seed", "18446744073709551615", "--tied-embeddings", "--beta2", "0.999", "--adam-eps", "1e-10",
       "--metrics", path("m/metrics.jsonl"), "--run-dir", path("run"), "--threads", "3", "--grad-clip", "0.3"},
  };
  for (const Args& args : variants) {
    const std::string first = print_config(args);
    const std::string ini = path("roundtrip.ini");
    write_file(ini, first);
    EXPECT_EQ(print_config({"--config", ini}), first);
  }
}

TEST_F(CliTest, ValuesAConfigFileCannotHoldAreRefused) {
  // The config-file reader takes '#' as the start of a comment: such a path would not read back,
  // so it is refused whether or not --print-config asks for the file.
  const std::string hashed = path("a#b.txt");
  write_file(hashed, "text\n");
  expect_user_error({"train", "--data", hashed, "--print-config"}, {"--data", hashed, "'#'"});
  expect_user_error({"train", "--data", hashed}, {"--data", hashed, "'#'"});
  expect_user_error({"train", "--data", data_, "--run-dir", " runs/x"}, {"--run-dir"});
  // Spaces inside a value are fine.
  const std::string spaced = path("with space.txt");
  write_file(spaced, "text\n");
  const std::string first = print_config({"--data", spaced});
  const std::string ini = path("spaced.ini");
  write_file(ini, first);
  EXPECT_EQ(print_config({"--config", ini}), first);
  EXPECT_EQ(parse_ini(first)["data"], spaced);
}

TEST_F(CliTest, PresetThenConfigFileThenCommandLine) {
  const std::string ini = path("mine.ini");
  write_file(ini, "# my settings\npreset = tiny\nd-model = 64\nlr = 0.002\nsteps = 50\ndata = " + data_ + "\n");

  std::map<std::string, std::string> kv = parse_ini(print_config({"--config", ini, "--lr", "0.003"}));
  EXPECT_EQ(kv["preset"], "tiny");
  EXPECT_EQ(kv["layers"], "2");     // from the tiny preset named in the file
  EXPECT_EQ(kv["kv-heads"], "2");   // likewise
  EXPECT_EQ(kv["d-model"], "64");   // the file overrides the preset
  EXPECT_EQ(kv["steps"], "50");     // the file overrides the default
  EXPECT_EQ(kv["lr"], "0.003");     // the command line overrides the file
  EXPECT_EQ(kv["seq-len"], "64");   // default seq_len brought down to tiny's max_seq
  EXPECT_EQ(kv["data"], data_);

  // A --preset on the command line replaces the file's preset; the file's keys still apply on top.
  kv = parse_ini(print_config({"--config", ini, "--preset", "small"}));
  EXPECT_EQ(kv["preset"], "small");
  EXPECT_EQ(kv["layers"], "4");
  EXPECT_EQ(kv["d-model"], "64");
  EXPECT_EQ(kv["lr"], "0.002");
  EXPECT_EQ(kv["seq-len"], "256");
}

TEST_F(CliTest, BoolOptionsTakeABareFlagOrAnAttachedValue) {
  EXPECT_EQ(parse_ini(print_config({"--data", data_, "--tied-embeddings"}))["tied-embeddings"], "true");
  EXPECT_EQ(parse_ini(print_config({"--data", data_, "--tied-embeddings=false"}))["tied-embeddings"], "false");
  EXPECT_EQ(parse_ini(print_config({"--data", data_, "--tied-embeddings=1"}))["tied-embeddings"], "true");
  // A separate value is taken too, and a following option is not mistaken for one.
  EXPECT_EQ(parse_ini(print_config({"--data", data_, "--tied-embeddings", "false"}))["tied-embeddings"], "false");
  std::map<std::string, std::string> kv = parse_ini(print_config({"--tied-embeddings", "--lr", "0.01", "--data", data_}));
  EXPECT_EQ(kv["tied-embeddings"], "true");
  EXPECT_EQ(kv["lr"], "0.01");
  const std::string ini = path("tied.ini");
  write_file(ini, "tied-embeddings = true\n");
  EXPECT_EQ(parse_ini(print_config({"--data", data_, "--config", ini}))["tied-embeddings"], "true");
  EXPECT_EQ(parse_ini(print_config({"--data", data_, "--config", ini, "--tied-embeddings=no"}))["tied-embeddings"],
            "false");
}

TEST_F(CliTest, ShippedSmallConfigMatchesThePreset) {
  const std::string shipped = std::string(RINGWISE_SOURCE_DIR) + "/configs/small.ini";
  if (!fs::exists(shipped)) GTEST_SKIP() << shipped << " not present";
  // Same data for both sides: the shipped file names the default corpus, which may not be installed.
  EXPECT_EQ(print_config({"--config", shipped, "--data", data_}), print_config({"--preset", "small", "--data", data_}));
}

// --- resolve_run_config() called directly -------------------------------------------------------

class ResolveTest : public CliTest {
 protected:
  rw::RunConfig resolve(Args args) const {
    po::options_description desc = rw::run_options();
    desc.add_options()("config", po::value<std::string>());
    args.push_back("--data");
    args.push_back(data_);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    return rw::resolve_run_config(vm);
  }
};

TEST_F(ResolveTest, DefaultsAreTheSmallPreset) {
  rw::RunConfig cfg = resolve({});
  EXPECT_EQ(cfg.preset, "small");
  EXPECT_EQ(cfg.model.d_model, rw::LlamaConfig::preset("small").d_model);
  EXPECT_EQ(cfg.model.n_layers, 4);
  EXPECT_EQ(cfg.train.seq_len, 256);
  EXPECT_EQ(cfg.train.batch_size, 8);
  EXPECT_FLOAT_EQ(cfg.train.lr, 1e-3f);
  EXPECT_EQ(cfg.train.seed, 1337u);
  EXPECT_EQ(cfg.train.data, data_);
}

TEST_F(ResolveTest, CommandLineValuesLandInTheirFields) {
  rw::RunConfig cfg = resolve({"--preset", "tiny", "--heads", "2", "--kv-heads", "1", "--ffn-dim", "96", "--seq-len",
                               "32", "--grad-accum", "3", "--weight-decay", "0", "--seed", "7", "--tied-embeddings",
                               "--attn-block-q", "16", "--log-every", "5", "--run-dir", "out/x"});
  EXPECT_EQ(cfg.preset, "tiny");
  EXPECT_EQ(cfg.model.d_model, 32);
  EXPECT_EQ(cfg.model.n_heads, 2);
  EXPECT_EQ(cfg.model.n_kv_heads, 1);
  EXPECT_EQ(cfg.model.ffn_dim, 96);
  EXPECT_TRUE(cfg.model.tied_embeddings);
  EXPECT_EQ(cfg.train.seq_len, 32);
  EXPECT_EQ(cfg.train.grad_accum, 3);
  EXPECT_EQ(cfg.train.weight_decay, 0.0f);
  EXPECT_EQ(cfg.train.seed, 7u);
  EXPECT_EQ(cfg.train.attn_block_q, 16);
  EXPECT_EQ(cfg.train.log_every, 5);
  EXPECT_EQ(cfg.train.run_dir, "out/x");
}

TEST_F(ResolveTest, ConfigFileSitsBetweenPresetAndCommandLine) {
  const std::string ini = path("layer.ini");
  write_file(ini, "preset = tiny\nffn-dim = 80\nbatch-size = 4\n");
  rw::RunConfig cfg = resolve({"--config", ini, "--batch-size", "2"});
  EXPECT_EQ(cfg.preset, "tiny");
  EXPECT_EQ(cfg.model.d_model, 32);
  EXPECT_EQ(cfg.model.ffn_dim, 80);
  EXPECT_EQ(cfg.train.batch_size, 2);
  EXPECT_EQ(cfg.train.seq_len, 64);
}

TEST_F(ResolveTest, WriteConfigFileReadsBackExactly) {
  rw::RunConfig want = resolve({"--preset", "tiny", "--lr", "0.0003", "--min-lr", "1e-7", "--norm-eps", "1e-6",
                                "--rope-theta", "123456.7", "--beta1", "0.85", "--adam-eps", "3e-9"});
  std::ostringstream ini_text;
  rw::write_config_file(ini_text, want);
  const std::string ini = path("written.ini");
  write_file(ini, ini_text.str());
  rw::RunConfig got = resolve({"--config", ini});
  std::ostringstream again;
  rw::write_config_file(again, got);
  EXPECT_EQ(again.str(), ini_text.str());
  // Bit for bit, not just the same text.
  EXPECT_EQ(got.train.lr, want.train.lr);
  EXPECT_EQ(got.train.min_lr, want.train.min_lr);
  EXPECT_EQ(got.model.norm_eps, want.model.norm_eps);
  EXPECT_EQ(got.model.rope_theta, want.model.rope_theta);
  EXPECT_EQ(got.train.beta1, want.train.beta1);
  EXPECT_EQ(got.train.adam_eps, want.train.adam_eps);
  EXPECT_EQ(got.model.d_model, want.model.d_model);
  EXPECT_EQ(got.preset, want.preset);
}

TEST_F(ResolveTest, ErrorsAreUserErrors) {
  EXPECT_THROW(resolve({"--heads", "3"}), rw::UserError);
  EXPECT_THROW(resolve({"--lr", "abc"}), rw::UserError);
  EXPECT_THROW(resolve({"--preset", "nope"}), rw::UserError);
  EXPECT_THROW(resolve({"--config", path("absent.ini")}), rw::UserError);
  try {
    resolve({"--seed", "-1"});
    FAIL() << "no error";
  } catch (const rw::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--seed"), std::string::npos) << e.what();
  }
}

TEST(ParseInt, WholeStringOnly) {
  EXPECT_EQ(rw::parse_int("42", "--x"), 42);
  EXPECT_EQ(rw::parse_int("-7", "--x"), -7);
  for (const char* bad : {"", "4x", "1.0", "abc", "3000000000", " "}) {
    try {
      rw::parse_int(bad, "--iters");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const rw::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("--iters"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
