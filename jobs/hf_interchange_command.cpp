// `ringwise export` and `ringwise import`: a checkpoint's weights as a Hugging Face LLaMA model
// directory (config.json + model.safetensors, fp32, HF tensor names) and back. The ParamTable
// already uses HF names and shapes, so both directions are a name-by-name copy of exact values.
// `import` also reads a llama.cpp GGUF file (jobs/gguf_llama.h), dequantising it to fp32.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/check.h"
#include "data/gguf_file.h"
#include "data/hdf5_checkpoint.h"
#include "data/hdf5_file.h"
#include "data/safetensors.h"
#include "jobs/cli.h"
#include "jobs/checkpoint_model.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/gguf_llama.h"
#include "models/hf_config.h"
#include "models/llama.h"

namespace rw {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using Args = std::vector<std::string>;

void check_can_write(const std::string& path, bool force) {
  std::error_code ec;
  RW_USER_CHECK(force || !fs::exists(path, ec), "%s already exists (pass --force to replace it)", path.c_str());
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RW_USER_CHECK(in.good(), "cannot read %s", path.c_str());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `path` as a synced temporary beside it, then renames it over, so a failure half-way
// leaves whatever was at `path` untouched.
template <class WriteTo>
void write_atomically(const std::string& path, WriteTo write_to) {
  const fs::path p(path);
  const std::string tmp = (p.parent_path() / ("." + p.filename().string() + ".tmp")).string();
  std::error_code ec;
  try {
    write_to(tmp);
    h5::fsync_path(tmp);
    fs::rename(tmp, path);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  h5::fsync_path(p.parent_path().empty() ? "." : p.parent_path().string());
}

// The model section of a config file as --key=value options: what `train --resume` must be given.
std::string model_options(const std::string& ini) {
  std::istringstream in(ini);
  std::string line, options;
  bool in_model = false;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) in_model = line == "# Model";
    const size_t eq = line.find(" = ");
    if (in_model && eq != std::string::npos) options += " --" + line.substr(0, eq) + "=" + line.substr(eq + 3);
  }
  return options;
}

// The weights of a Hugging Face model directory: model.safetensors, or the shards that
// model.safetensors.index.json maps each tensor to. Remembers which tensors were read, so that
// weights the config does not account for (more layers, a stray lm_head) are an error.
class HfWeights {
 public:
  explicit HfWeights(const std::string& dir) {
    const std::string index = dir + "/model.safetensors.index.json", single = dir + "/model.safetensors";
    std::error_code ec;
    if (!fs::exists(index, ec)) {
      RW_USER_CHECK(fs::exists(single, ec), "%s has neither model.safetensors nor model.safetensors.index.json",
                    dir.c_str());
      where_ = single;
      shards_[single] = std::make_unique<safetensors::Reader>(single);
      for (const safetensors::TensorInfo& t : shards_[single]->tensors()) shard_of_[t.name] = single;
      return;
    }
    where_ = index;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(index));
    } catch (const nlohmann::json::parse_error& e) {
      throw UserError(index + ": not valid JSON: " + e.what());
    }
    RW_USER_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
                  "%s: no \"weight_map\" object", index.c_str());
    for (const auto& [name, file] : j["weight_map"].items()) {
      RW_USER_CHECK(file.is_string(), "%s: weight_map entry '%s' is not a file name", index.c_str(), name.c_str());
      const std::string shard = dir + "/" + file.get<std::string>();
      if (!shards_.count(shard)) shards_[shard] = std::make_unique<safetensors::Reader>(shard);
      shard_of_[name] = shard;
    }
  }

  void read(const std::string& name, float* out, const Shape& shape) {
    auto it = shard_of_.find(name);
    RW_USER_CHECK(it != shard_of_.end(), "%s: no tensor '%s', which config.json's model needs", where_.c_str(),
                  name.c_str());
    shards_.at(it->second)->read(name, out, shape);
    used_.insert(name);
  }

  void check_all_used() const {
    for (const auto& [name, shard] : shard_of_) {
      // transformers once saved RoPE's inverse frequencies; they follow from the config.
      const bool derived = name.size() >= 19 && name.compare(name.size() - 19, 19, "rotary_emb.inv_freq") == 0;
      RW_USER_CHECK(used_.count(name) || derived,
                    "%s: tensor '%s' has no place in the model config.json describes (check num_hidden_layers, "
                    "tie_word_embeddings)",
                    shard.c_str(), name.c_str());
    }
  }

 private:
  std::string where_;
  std::map<std::string, std::unique_ptr<safetensors::Reader>> shards_;  // by path
  std::map<std::string, std::string> shard_of_;                         // tensor name -> shard path
  std::set<std::string> used_;
};

void run_export(const std::string& checkpoint, const std::string& dir, bool force) {
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);  // a ringwise checkpoint of a known version
  const std::string weights = dir + "/model.safetensors", config = dir + "/config.json";
  check_can_write(weights, force);
  check_can_write(config, force);
  const std::unique_ptr<LlamaModel> model = load_checkpoint_model(checkpoint);
  const LlamaConfig& cfg = model->config();
  RW_USER_CHECK(cfg.moe_experts == 0,
                "%s is a mixture-of-experts model (--moe-experts %d): export writes a Hugging Face "
                "LlamaForCausalLM, which has no experts",
                checkpoint.c_str(), cfg.moe_experts);
  std::vector<safetensors::F32Tensor> tensors;
  for (const ParamInfo& p : model->params().entries()) tensors.push_back({p.name, p.shape, model->param(p.name)});

  std::error_code ec;
  fs::create_directories(dir, ec);
  RW_USER_CHECK(!ec, "cannot create %s: %s", dir.c_str(), ec.message().c_str());
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"ringwise_step", std::to_string(meta.step)}};
  write_atomically(weights, [&](const std::string& tmp) { safetensors::write(tmp, tensors, metadata); });
  write_atomically(config, [&](const std::string& tmp) {
    std::ofstream out(tmp);
    out << hf_config_json(cfg);
    out.close();
    RW_USER_CHECK(out.good(), "cannot write %s", tmp.c_str());
  });
  std::printf("exported step %lld of %s: %zu tensors, %.2fM parameters, to %s (%llu bytes) and %s\n",
              static_cast<long long>(meta.step), checkpoint.c_str(), tensors.size(), cfg.num_params() / 1e6,
              weights.c_str(), static_cast<unsigned long long>(fs::file_size(weights)), config.c_str());
}

// A Hugging Face model directory's weights, exact; `read` says what was read.
std::unique_ptr<LlamaModel> read_hf_model(const std::string& dir, RunConfig* run, std::string* read) {
  const std::string config = dir + "/config.json";
  run->model = parse_hf_config(read_text_file(config), config);
  auto model = std::make_unique<LlamaModel>(run->model);
  HfWeights weights(dir);
  for (const ParamInfo& p : model->params().entries()) weights.read(p.name, model->param(p.name), p.shape);
  weights.check_all_used();
  *read = std::to_string(model->params().entries().size()) + " tensors";
  return model;
}

// A GGUF file's weights, dequantised to fp32; `read` counts the tensors of each type.
std::unique_ptr<LlamaModel> read_gguf_model(const std::string& path, RunConfig* run, std::string* read) {
  const GgufFile file = GgufFile::open(path);
  run->model = gguf_llama_config(file);
  auto model = std::make_unique<LlamaModel>(run->model);
  std::string types;
  for (const auto& [type, count] : read_gguf_llama_weights(file, *model))
    types += (types.empty() ? "" : ", ") + std::to_string(count) + " " + type;
  *read = std::to_string(file.tensors().size()) + " tensors (" + types + ") dequantised to fp32";
  return model;
}

bool is_gguf_path(const std::string& path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
}

void run_import(const std::string& input, const std::string& output, bool force) {
  std::error_code ec;
  const bool gguf = is_gguf_path(input) && !fs::is_directory(input, ec);
  RW_USER_CHECK(gguf || fs::is_directory(input, ec),
                "--input %s is neither a Hugging Face model directory nor a .gguf file", input.c_str());
  check_can_write(output, force);
  const auto start = std::chrono::steady_clock::now();
  RunConfig run;
  std::string read;
  const std::unique_ptr<LlamaModel> imported =
      gguf ? read_gguf_model(input, &run, &read) : read_hf_model(input, &run, &read);
  LlamaModel& model = *imported;
  run.train.seq_len = std::min(run.train.seq_len, run.model.max_seq);

  // A checkpoint at step 0: the AdamW moments start at zero, as in a fresh run.
  std::vector<float> zeros(model.params().total(), 0.0f);
  std::vector<CheckpointTensor> tensors;
  for (const ParamInfo& p : model.params().entries())
    tensors.push_back({p.name, p.shape, model.param(p.name), &zeros[p.offset], &zeros[p.offset]});
  std::ostringstream ini;
  write_config_file(ini, run);
  CheckpointMeta meta;
  meta.seed = static_cast<int64_t>(run.train.seed);
  meta.config_text = ini.str();

  // save_checkpoint names its file by step inside a directory; it is staged in a hidden one
  // beside the output and renamed over it once complete.
  write_atomically(output, [&](const std::string& tmp) {
    const std::string staging = tmp + ".d";
    try {
      fs::rename(save_checkpoint(staging, meta, tensors), tmp);
    } catch (...) {
      fs::remove_all(staging, ec);
      throw;
    }
    fs::remove_all(staging, ec);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "imported %s: %s, %.2fM parameters, into %s (step 0) in %.1f s\n"
      "continue training it with: ringwise train --resume %s%s\n",
      input.c_str(), read.c_str(), run.model.num_params() / 1e6, output.c_str(), seconds, output.c_str(),
      model_options(meta.config_text).c_str());
}

void print_export_help(std::ostream& out) {
  out << "Usage: ringwise export --checkpoint FILE.h5 --output DIR [--format safetensors] [--force]\n"
         "\n"
         "Writes a checkpoint's weights as a Hugging Face LLaMA model: DIR/model.safetensors (fp32,\n"
         "exactly the checkpoint's values, under their Hugging Face names) and DIR/config.json, which\n"
         "transformers' LlamaForCausalLM.from_pretrained(DIR) loads. A model with tied embeddings has\n"
         "no lm_head.weight. Existing files are replaced only with --force.\n";
}

void print_import_help(std::ostream& out) {
  out << "Usage: ringwise import --input DIR|FILE.gguf --output FILE.h5 [--force]\n"
         "\n"
         "Reads a Hugging Face LLaMA model directory (config.json, and model.safetensors or the shards\n"
         "listed in model.safetensors.index.json; F32, BF16 or F16 weights, stored as fp32), or a\n"
         "llama.cpp GGUF file of architecture llama (F32, F16, BF16, Q8_0, Q4_0 or Q4_1 tensors,\n"
         "dequantised to fp32; the configuration from its llama.* metadata), into a ringwise checkpoint\n"
         "at step 0 with zero AdamW moments, for `ringwise generate`, `ringwise eval`, or\n"
         "`ringwise train --resume FILE.h5` with the model options it prints. An existing FILE.h5 is\n"
         "replaced only with --force.\n";
}

std::string required(const po::variables_map& vm, const char* option, const char* command) {
  RW_USER_CHECK(vm.count(option), "'ringwise %s' needs --%s (see 'ringwise help %s')", command, option, command);
  return vm[option].as<std::string>();
}

}  // namespace

int export_command(const Args& args) {
  po::options_description desc;
  desc.add_options()("checkpoint", po::value<std::string>())("output", po::value<std::string>())(
      "format", po::value<std::string>())("force", "")("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "export");
  if (vm.count("help")) {
    print_export_help(std::cout);
    return 0;
  }
  const std::string format = vm.count("format") ? vm["format"].as<std::string>() : "safetensors";
  RW_USER_CHECK(format == "safetensors", "--format %s is not supported (available: safetensors)", format.c_str());
  run_export(required(vm, "checkpoint", "export"), required(vm, "output", "export"), vm.count("force") > 0);
  return 0;
}

int import_command(const Args& args) {
  po::options_description desc;
  desc.add_options()("input", po::value<std::string>())("output", po::value<std::string>())("force", "")("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "import");
  if (vm.count("help")) {
    print_import_help(std::cout);
    return 0;
  }
  run_import(required(vm, "input", "import"), required(vm, "output", "import"), vm.count("force") > 0);
  return 0;
}

}  // namespace rw
