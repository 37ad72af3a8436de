#include "jobs/cli_options.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "data/hdf5_tokens.h"
#include "jobs/default_corpus.h"

namespace po = boost::program_options;

namespace rw {
namespace {

// Values are parsed here rather than by po's lexical_cast, which accepts "-5" for an unsigned
// seed and reports every failure the same vague way.
[[noreturn]] void bad_value(const std::string& text, const std::string& where, const char* expected) {
  throw UserError("invalid value '" + text + "' for " + where + ": expected " + expected);
}

void parse_value(const std::string& text, const std::string& where, int* out) { *out = parse_int(text, where); }

void parse_value(const std::string& text, const std::string& where, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text.find('-') != std::string::npos || *end != '\0' || errno == ERANGE)
    bad_value(text, where, "a non-negative integer");
  *out = v;
}

void parse_value(const std::string& text, const std::string& where, float* out) {
  char* end = nullptr;
  errno = 0;
  float v = std::strtof(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) bad_value(text, where, "a finite number");
  *out = v;
}

void parse_value(const std::string& text, const std::string& where, bool* out) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") {
    *out = true;
  } else if (text == "false" || text == "0" || text == "no" || text == "off") {
    *out = false;
  } else {
    bad_value(text, where, "true or false");
  }
}

void parse_value(const std::string& text, const std::string&, std::string* out) { *out = text; }

std::string show_value(int v) { return std::to_string(v); }
std::string show_value(uint64_t v) { return std::to_string(v); }
std::string show_value(bool v) { return v ? "true" : "false"; }
std::string show_value(const std::string& v) { return v; }
// The shortest text that reads back as the same float, so --print-config round-trips exactly and
// still shows 0.001 rather than 0.00100000005.
std::string show_value(float v) {
  if (v == std::trunc(v) && std::fabs(v) < 1e7f) return format("%.0f", v);  // 10000, not 1e+04
  char buf[32];
  for (int digits = 1;; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtof(buf, nullptr) == v || digits == 9) return buf;
  }
}

template <class T>
const char* placeholder() {
  if constexpr (std::is_same_v<T, bool>) return "BOOL";
  if constexpr (std::is_same_v<T, float>) return "X";
  if constexpr (std::is_same_v<T, std::string>) return "PATH";
  return "N";
}

enum class Group { kModel, kTraining, kParallel, kDataOutput };
constexpr Group kGroups[] = {Group::kModel, Group::kTraining, Group::kParallel, Group::kDataOutput};

const char* group_heading(Group g) {
  switch (g) {
    case Group::kModel: return "Model";
    case Group::kTraining: return "Training";
    case Group::kParallel: return "Parallelism (under mpirun)";
    case Group::kDataOutput: return "Data & output";
  }
  return "";
}

struct Field {
  Group group;
  std::string name;  // the option without its dashes, and the config-file key
  std::string help;
  const char* arg;   // the value's placeholder in help
  bool is_bool;      // a bare --flag means true
  std::function<void(RunConfig&, const std::string& text, const std::string& where)> set;
  std::function<std::string(const RunConfig&)> get;
};

template <class Part, class T>
Field field(Group group, const char* name, std::string help, Part RunConfig::*part, T Part::*member) {
  return {group,
          name,
          std::move(help),
          placeholder<T>(),
          std::is_same_v<T, bool>,
          [=](RunConfig& c, const std::string& text, const std::string& where) {
            parse_value(text, where, &((c.*part).*member));
          },
          [=](const RunConfig& c) { return show_value((c.*part).*member); }};
}

// A string option whose value is one of a few words, not a path: its help shows them.
Field choice(Field f, const char* words) {
  f.arg = words;
  return f;
}

// Every RunConfig field but the preset, which is not an override: it is applied before them all.
const std::vector<Field>& fields() {
  using L = LlamaConfig;
  using T = TrainConfig;
  using Par = ParallelConfig;
  const Group M = Group::kModel, TR = Group::kTraining, P = Group::kParallel, D = Group::kDataOutput;
  const auto m = &RunConfig::model;
  const auto t = &RunConfig::train;
  const auto p = &RunConfig::parallel;
  static const std::vector<Field> table = {
      field(M, "vocab-size", "token vocabulary (byte-level text uses 256)", m, &L::vocab_size),
      field(M, "d-model", "width of the residual stream", m, &L::d_model),
      field(M, "layers", "transformer blocks", m, &L::n_layers),
      field(M, "heads", "attention heads; must divide --d-model", m, &L::n_heads),
      field(M, "kv-heads", "key/value heads; fewer than --heads is GQA", m, &L::n_kv_heads),
      field(M, "ffn-dim", "hidden width of the SwiGLU MLP", m, &L::ffn_dim),
      field(M, "max-seq", "longest sequence the RoPE table covers", m, &L::max_seq),
      field(M, "rope-theta", "RoPE base frequency", m, &L::rope_theta),
      field(M, "norm-eps", "RMSNorm epsilon", m, &L::norm_eps),
      field(M, "tied-embeddings", "LM head shares the embedding matrix", m, &L::tied_embeddings),
      field(M, "moe-experts", "experts per MoE layer; 0 = dense MLPs", m, &L::moe_experts),
      field(M, "moe-top-k", "experts each token is routed to", m, &L::moe_top_k),
      field(M, "moe-capacity-factor", "expert capacity = ceil(factor * tokens * top-k / experts)", m,
            &L::moe_capacity_factor),
      field(M, "moe-every", "layer i is MoE when (i + 1) % N == 0", m, &L::moe_every),
      field(M, "moe-aux-coef", "weight of the load-balancing loss", m, &L::moe_aux_coef),
      field(M, "moe-z-coef", "weight of the router z-loss", m, &L::moe_z_coef),
      field(TR, "seq-len", "tokens per sequence; when not given, at most --max-seq", t, &T::seq_len),
      field(TR, "batch-size", "sequences per micro-batch", t, &T::batch_size),
      field(TR, "grad-accum", "micro-batches per optimizer step", t, &T::grad_accum),
      field(TR, "steps", "optimizer steps", t, &T::steps),
      field(TR, "lr", "peak learning rate, reached after warmup", t, &T::lr),
      field(TR, "min-lr", "floor of the cosine decay", t, &T::min_lr),
      field(TR, "warmup-steps", "steps of learning-rate warmup", t, &T::warmup_steps),
      field(TR, "weight-decay", "AdamW weight decay", t, &T::weight_decay),
      field(TR, "beta1", "AdamW first-moment decay", t, &T::beta1),
      field(TR, "beta2", "AdamW second-moment decay", t, &T::beta2),
      field(TR, "adam-eps", "AdamW epsilon", t, &T::adam_eps),
      field(TR, "grad-clip", "clip the global gradient norm; 0 = off", t, &T::grad_clip),
      field(TR, "seed", "seed for initialization and batches", t, &T::seed),
      field(TR, "attn-block-q", "query rows per attention block", t, &T::attn_block_q),
      field(TR, "attn-block-k", "key rows per attention block", t, &T::attn_block_k),
      field(TR, "bpt-block",
            "MLPs and loss in blocks of N tokens (BPT), recomputed in backward: their memory grows with N, "
            "not the sequence; 0 = off",
            t, &T::bpt_block),
      field(TR, "threads", "CPU threads (OpenMP, OpenBLAS); 0 = all", t, &T::threads),
      field(P, "dp", "data-parallel ranks; dp*tp*cp*ep = the ranks mpirun starts", p, &Par::dp),
      field(P, "tp", "tensor-parallel ranks (Megatron: heads, ffn and vocabulary split)", p, &Par::tp),
      field(P, "cp", "context-parallel ranks (zigzag layout)", p, &Par::cp),
      choice(field(P, "cp-algo", "context-parallel attention: ring (K/V round a ring) or ulysses (all-to-all over heads)",
                   p, &Par::cp_algo),
             "ring|ulysses"),
      field(P, "ep", "expert-parallel ranks; shard --moe-experts over them", p, &Par::ep),
      field(P, "zero", "1 = shard the AdamW state over the dp ranks (ZeRO-1)", p, &Par::zero),
      field(P, "bucket-mb", "gradient allreduce bucket, overlapped with backward", p, &Par::bucket_mb),
      field(P, "comm-timeout", "abort the job when a collective blocks this many seconds; 0 = never", p,
            &Par::comm_timeout),
      field(D, "data", std::string("HDF5 dataset from prepare, or text file or dir; empty = ") + kDefaultCorpus, t,
            &T::data),
      field(D, "run-dir", "where the run writes its outputs", t, &T::run_dir),
      field(D, "metrics", "JSONL metrics file; empty = <run-dir>/metrics.jsonl", t, &T::metrics),
      field(D, "log-every", "report every N steps", t, &T::log_every),
      choice(field(D, "data-order", "training windows: random, or sequential (in order, wrapping round)", t,
                   &T::data_order),
             "random|sequential"),
      field(D, "val-every", "validation loss every N steps (HDF5 datasets); 0 = off", t, &T::val_every),
      field(D, "val-batches", "validation batches per measurement, the same ones each time", t, &T::val_batches),
      field(D, "ckpt-dir", "checkpoint directory; empty = <run-dir>/checkpoints", t, &T::ckpt_dir),
      field(D, "save-every", "checkpoint every N steps and at the end; 0 = only at the end", t, &T::save_every),
      field(D, "keep-last", "keep the newest N checkpoints; 0 = all", t, &T::keep_last),
      field(D, "resume", "checkpoint to resume from: a file, or 'auto' = newest in --ckpt-dir if any", t, &T::resume),
  };
  return table;
}

void apply_preset(RunConfig& cfg, const std::string& name) {
  cfg.model = LlamaConfig::preset(name);
  cfg.preset = name;
}

po::variables_map read_config_file(const std::string& path) {
  std::error_code ec;
  RW_USER_CHECK(std::filesystem::exists(path, ec), "config file %s does not exist", path.c_str());
  RW_USER_CHECK(std::filesystem::is_regular_file(path, ec), "config file %s is not a regular file", path.c_str());
  std::ifstream in(path);
  RW_USER_CHECK(in.good(), "cannot read config file %s", path.c_str());
  po::variables_map vm;
  try {
    po::store(po::parse_config_file(in, run_options()), vm);
  } catch (const po::error& e) {
    throw UserError("config file " + path + ": " + e.what());
  }
  return vm;
}

// po's config-file reader ends a value at '#' and trims it. A value it would read back differently
// is refused up front, so that --print-config and the run's config.ini always reproduce the run.
void check_config_file_values(const RunConfig& cfg) {
  for (const Field& f : fields()) {
    const std::string value = f.get(cfg);
    const bool padded = !value.empty() && (std::isspace(static_cast<unsigned char>(value.front())) ||
                                           std::isspace(static_cast<unsigned char>(value.back())));
    RW_USER_CHECK(value.find_first_of("#\n\r") == std::string::npos && !padded,
                  "--%s '%s': a value may not contain '#' or a line break, nor start or end with a space "
                  "(it could not be saved to a config file)",
                  f.name.c_str(), value.c_str());
  }
}

// One help line: the flag, then its help from a fixed column.
void print_option_line(std::ostream& out, const std::string& flag, const std::string& help) {
  constexpr size_t kHelpColumn = 28;
  std::string line = "  " + flag;
  line += line.size() < kHelpColumn ? std::string(kHelpColumn - line.size(), ' ') : "  ";
  out << line << help << '\n';
}

}  // namespace

int parse_int(const std::string& text, const std::string& where) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX)
    bad_value(text, where, "an integer");
  return static_cast<int>(v);
}

po::options_description run_options() {
  po::options_description desc;
  desc.add_options()("preset", po::value<std::string>());
  for (const Field& f : fields()) {
    auto* value = po::value<std::string>();
    if (f.is_bool) value->implicit_value("true");
    desc.add_options()(f.name.c_str(), value);
  }
  return desc;
}

void print_option_lines(std::ostream& out, const std::string& heading, std::initializer_list<OptionHelp> options) {
  out << '\n' << heading << ":\n";
  for (const OptionHelp& o : options) print_option_line(out, o.flag, o.help);
}

void print_run_options_help(std::ostream& out) {
  const RunConfig defaults;
  for (Group g : kGroups) {
    out << '\n' << group_heading(g) << (g == Group::kModel ? " (defaults are the 'small' preset)" : "") << ":\n";
    if (g == Group::kModel)
      print_option_line(out, "--preset NAME", "tiny or small; applied before the other options (default small)");
    for (const Field& f : fields()) {
      if (f.group != g) continue;
      std::string value = f.get(defaults);
      print_option_line(out, "--" + f.name + " " + f.arg, f.help + (value.empty() ? "" : " (default " + value + ")"));
    }
  }
}

RunConfig resolve_run_config(const po::variables_map& cli) {
  std::string config_path;
  po::variables_map file;
  if (cli.count("config")) {
    config_path = cli["config"].as<std::string>();
    file = read_config_file(config_path);
  }
  RunConfig cfg;
  if (cli.count("preset")) {
    apply_preset(cfg, cli["preset"].as<std::string>());
  } else if (file.count("preset")) {
    apply_preset(cfg, file["preset"].as<std::string>());
  }
  for (const Field& f : fields())
    if (file.count(f.name)) f.set(cfg, file[f.name].as<std::string>(), f.name + " in config file " + config_path);
  for (const Field& f : fields())
    if (cli.count(f.name)) f.set(cfg, cli[f.name].as<std::string>(), "--" + f.name);
  // The default sequence length fits the default model; a smaller model (--preset tiny) brings
  // it down to max_seq rather than failing on an option the user never gave.
  if (!file.count("seq-len") && !cli.count("seq-len"))
    cfg.train.seq_len = std::min(cfg.train.seq_len, cfg.model.max_seq);
  if (cfg.train.data.empty()) cfg.train.data = kDefaultCorpus;
  // A token dataset sets the vocabulary unless one was given, which must then be the dataset's.
  if (is_hdf5_file(cfg.train.data)) {
    const int64_t data_vocab = read_token_dataset_info(cfg.train.data).vocab_size;
    if (!file.count("vocab-size") && !cli.count("vocab-size")) cfg.model.vocab_size = static_cast<int>(data_vocab);
    RW_USER_CHECK(cfg.model.vocab_size == data_vocab,
                  "vocab-size %d does not match vocab_size %lld of the token dataset %s (leave vocab-size out to "
                  "take the dataset's)",
                  cfg.model.vocab_size, static_cast<long long>(data_vocab), cfg.train.data.c_str());
  }
  check_config_file_values(cfg);
  cfg.validate();
  return cfg;
}

void write_config_file(std::ostream& out, const RunConfig& cfg) {
  check_config_file_values(cfg);
  out << "# ringwise configuration: pass it to --config FILE; command-line options override it.\n";
  out << "preset = " << cfg.preset << '\n';
  for (Group g : kGroups) {
    out << "\n# " << group_heading(g) << '\n';
    for (const Field& f : fields()) {
      if (f.group != g) continue;
      std::string value = f.get(cfg);
      out << f.name << " =" << (value.empty() ? "" : " " + value) << '\n';
    }
  }
}

void check_same_model(const std::string& saved_ini, const std::string& source, const RunConfig& run) {
  std::istringstream in(saved_ini);
  po::variables_map vm;
  try {
    // Keys of other ringwise versions are allowed: only the model's are compared.
    po::store(po::parse_config_file(in, run_options(), true), vm);
  } catch (const po::error& e) {
    throw UserError("the configuration saved in " + source + ": " + e.what());
  }
  RunConfig saved;
  if (vm.count("preset")) apply_preset(saved, vm["preset"].as<std::string>());
  for (const Field& f : fields()) {
    if (f.group != Group::kModel) continue;
    if (vm.count(f.name)) f.set(saved, vm[f.name].as<std::string>(), f.name + " in the configuration saved in " + source);
    const std::string was = f.get(saved), now = f.get(run);
    RW_USER_CHECK(was == now, "%s holds a model with %s = %s, but this run has %s = %s (model options must match to resume)",
                  source.c_str(), f.name.c_str(), was.c_str(), f.name.c_str(), now.c_str());
  }
}

}  // namespace rw
