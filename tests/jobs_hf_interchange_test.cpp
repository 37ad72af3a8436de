// `ringwise export` / `ringwise import` through the built binary: a checkpoint of random weights
// goes out as Hugging Face safetensors + config.json and comes back bit for bit; the exported file
// is read by an independent Python reader (tests/reference/safetensors_reader.py), and, where
// PyTorch is installed, its logits are recomputed by a minimal PyTorch LLaMA
// (tests/reference/hf_llama_logits.py) and compared with LlamaModel::forward's. Bad inputs are one
// error line naming the file, tensor or config key, and leave existing outputs untouched.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/check.h"
#include "core/dtype.h"
#include "data/hdf5_checkpoint.h"
#include "data/safetensors.h"
#include "jobs/cli_options.h"
#include "models/hf_config.h"
#include "models/llama.h"

namespace rw {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kPython = "/usr/bin/python3";
const std::string kReference = std::string(RINGWISE_SOURCE_DIR) + "/tests/reference/";

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

Result shell(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  EXPECT_NE(pipe, nullptr) << command;
  std::string out;
  char buf[4096];
  for (size_t n; pipe && (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = pipe ? pclose(pipe) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

Result ringwise(const std::string& args) { return shell(std::string(RINGWISE_BINARY) + " " + args); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

void expect_same_config(const LlamaConfig& a, const LlamaConfig& b) {
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.d_model, b.d_model);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.ffn_dim, b.ffn_dim);
  EXPECT_EQ(a.max_seq, b.max_seq);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
}

// The tiny preset (GQA: 4 heads, 2 KV heads), optionally tied.
RunConfig tiny_run(bool tied) {
  RunConfig run;
  run.preset = "tiny";
  run.model = LlamaConfig::preset("tiny");
  run.model.tied_embeddings = tied;
  run.model.rope_theta = 500.0f;  // not the default, so a config that drops it is caught
  run.train.seq_len = 32;
  return run;
}

// A model with random weights of a size that keeps activations O(1) (matrices ~ N(0, 0.2), norm
// weights ~ 1 + N(0, 0.1)), so that logits differ visibly between correct and subtly wrong math.
std::unique_ptr<LlamaModel> random_model(const LlamaConfig& cfg, unsigned seed) {
  auto model = std::make_unique<LlamaModel>(cfg);
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const ParamInfo& p : model->params().entries()) {
    float* x = model->param(p.name);
    for (size_t i = 0; i < p.numel(); ++i) x[i] = p.shape.size() == 1 ? 1.0f + 0.1f * normal(gen) : 0.2f * normal(gen);
  }
  return model;
}

class HfInterchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ringwise_hf_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Saves `model` as a checkpoint at `step` whose AdamW moments are random too (export must skip
  // them, import must zero them). Returns its path.
  std::string save(LlamaModel& model, const RunConfig& run, int64_t step) {
    std::vector<float> m(model.params().total()), v(model.params().total());
    std::mt19937 gen(99);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (size_t i = 0; i < m.size(); ++i) m[i] = uniform(gen) - 0.5f, v[i] = uniform(gen);
    std::vector<CheckpointTensor> tensors;
    for (const ParamInfo& p : model.params().entries())
      tensors.push_back({p.name, p.shape, model.param(p.name), &m[p.offset], &v[p.offset]});
    CheckpointMeta meta;
    meta.step = step;
    meta.adam_step = step;
    meta.seed = 7;
    std::ostringstream ini;
    write_config_file(ini, run);
    meta.config_text = ini.str();
    return save_checkpoint(path("ckpt"), meta, tensors);
  }

  // Every parameter of `model` must be in `file`, bit for bit, and nothing else.
  void expect_safetensors_hold(const std::string& file, LlamaModel& model) {
    safetensors::Reader reader(file);
    EXPECT_EQ(reader.tensors().size(), model.params().entries().size());
    for (const ParamInfo& p : model.params().entries()) {
      const safetensors::TensorInfo* t = reader.find(p.name);
      ASSERT_NE(t, nullptr) << p.name;
      EXPECT_EQ(t->dtype, safetensors::DType::F32) << p.name;
      std::vector<float> got(p.numel());
      reader.read(p.name, got.data(), p.shape);
      EXPECT_TRUE(same_bits(got.data(), model.param(p.name), p.numel())) << p.name;
    }
  }

  // The imported checkpoint holds `model`'s parameters exactly, zero moments, step 0, and a
  // configuration that `train --resume` accepts for `run`'s model.
  void expect_checkpoint_holds(const std::string& file, LlamaModel& model, const RunConfig& run) {
    const size_t n = model.params().total();
    std::vector<float> params(n, -1.0f), m(n, -1.0f), v(n, -1.0f);
    std::vector<CheckpointTensor> tensors;
    for (const ParamInfo& p : model.params().entries())
      tensors.push_back({p.name, p.shape, &params[p.offset], &m[p.offset], &v[p.offset]});
    const CheckpointMeta meta = load_checkpoint(file, tensors);
    EXPECT_EQ(meta.step, 0);
    EXPECT_EQ(meta.adam_step, 0);
    EXPECT_TRUE(same_bits(params.data(), model.param_buffer().data<float>(), n));
    for (size_t i = 0; i < n; ++i) ASSERT_TRUE(m[i] == 0.0f && v[i] == 0.0f) << i;
    EXPECT_NO_THROW(check_same_model(meta.config_text, file, run));
  }

  fs::path dir_;
};

TEST_F(HfInterchangeTest, ExportThenImportIsBitIdentical) {
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    const RunConfig run = tiny_run(tied);
    auto model = random_model(run.model, 1);
    const std::string ckpt = save(*model, run, 5);
    const std::string out = path(tied ? "hf_tied" : "hf");
    const Result exported = ringwise("export --checkpoint " + ckpt + " --output " + out);
    ASSERT_EQ(exported.code, 0) << exported.output;

    const std::string weights = out + "/model.safetensors";
    expect_safetensors_hold(weights, *model);
    EXPECT_EQ(safetensors::Reader(weights).find("lm_head.weight") != nullptr, !tied);
    const std::string config_text = read_file(out + "/config.json");
    expect_same_config(parse_hf_config(config_text, "config.json"), run.model);
    const json config = json::parse(config_text);
    EXPECT_EQ(config["architectures"], json({"LlamaForCausalLM"}));
    EXPECT_EQ(config["model_type"], "llama");
    EXPECT_EQ(config["torch_dtype"], "float32");
    EXPECT_EQ(config["tie_word_embeddings"], tied);

    const std::string imported = path(tied ? "imported_tied.h5" : "imported.h5");
    const Result back = ringwise("import --input " + out + " --output " + imported);
    ASSERT_EQ(back.code, 0) << back.output;
    expect_checkpoint_holds(imported, *model, run);
    std::printf("%s: checkpoint %ju bytes, model.safetensors %ju bytes (%zu parameters), imported %ju bytes\n",
                tied ? "tied" : "untied", static_cast<uintmax_t>(fs::file_size(ckpt)),
                static_cast<uintmax_t>(fs::file_size(weights)), model->params().total(),
                static_cast<uintmax_t>(fs::file_size(imported)));
  }
}

TEST_F(HfInterchangeTest, AnIndependentPythonReaderReadsTheExportExactly) {
  const RunConfig run = tiny_run(false);
  auto model = random_model(run.model, 2);
  const std::string out = path("hf");
  ASSERT_EQ(ringwise("export --checkpoint " + save(*model, run, 1) + " --output " + out).code, 0);
  const std::string dump = path("dump.txt");
  const Result py = shell(kPython + " " + kReference + "safetensors_reader.py " + out + "/model.safetensors " + dump);
  ASSERT_EQ(py.code, 0) << py.output;

  std::istringstream in(read_file(dump));
  size_t seen = 0;
  for (std::string line; std::getline(in, line); ++seen) {
    std::istringstream fields(line);
    std::string name;
    int ndim = 0;
    fields >> name >> ndim;
    Shape shape(ndim);
    for (int64_t& d : shape) fields >> d;
    size_t numel = 0;
    fields >> numel;
    const ParamInfo* p = model->params().find(name);
    ASSERT_NE(p, nullptr) << name;
    ASSERT_EQ(shape, p->shape) << name;
    ASSERT_EQ(numel, p->numel()) << name;
    std::vector<float> values(numel);
    for (float& x : values) {
      std::string hex;
      fields >> hex;
      x = static_cast<float>(std::strtod(hex.c_str(), nullptr));  // float.hex() of a float32: exact
    }
    EXPECT_TRUE(same_bits(values.data(), model->param(name), numel)) << name;
  }
  EXPECT_EQ(seen, model->params().entries().size());
}

TEST_F(HfInterchangeTest, LogitsMatchAMinimalPyTorchLlama) {
  if (shell(kPython + " -c 'import torch'").code != 0) {
    if (std::getenv("CI")) FAIL() << "PyTorch is required on CI (CI is set): /usr/bin/python3 -c 'import torch' failed";
    GTEST_SKIP() << "PyTorch not installed for /usr/bin/python3";
  }
  std::string script_args;  // one (model dir, tokens, logits) triple per model
  for (bool tied : {false, true}) {
    const RunConfig run = tiny_run(tied);
    auto model = random_model(run.model, 3);
    const std::string out = path(tied ? "hf_tied" : "hf");
    ASSERT_EQ(ringwise("export --checkpoint " + save(*model, run, 1) + " --output " + out).code, 0);

    const int T = 24, V = run.model.vocab_size;
    std::vector<int32_t> tokens(T), targets(T);
    std::string token_text;
    for (int t = 0; t < T; ++t) {
      tokens[t] = (t * 37 + 11) % V;
      token_text += std::to_string(tokens[t]) + " ";
    }
    for (int t = 0; t < T; ++t) targets[t] = tokens[(t + 1) % T];
    model->forward(tokens.data(), targets.data(), 1, T);
    const std::string tokens_file = out + ".tokens", logits_file = out + ".logits";
    write_file(tokens_file, token_text);
    write_file(logits_file,
               std::string(reinterpret_cast<const char*>(model->logits()), static_cast<size_t>(T) * V * sizeof(float)));
    script_args += " " + out + " " + tokens_file + " " + logits_file;
  }
  const Result py = shell(kPython + " " + kReference + "hf_llama_logits.py" + script_args);
  EXPECT_EQ(py.code, 0) << py.output;
  std::printf("%s", py.output.c_str());
}

TEST_F(HfInterchangeTest, ImportsAShardedBf16Directory) {
  const RunConfig run = tiny_run(false);
  auto model = random_model(run.model, 4);
  const std::string in = path("sharded");
  fs::create_directories(in);
  write_file(in + "/config.json", hf_config_json(run.model));
  // Layer 0 and the embedding in an F32 shard; everything else in a BF16 shard, written by hand
  // here, of the model's values rounded to bfloat16 (which import must then reproduce exactly).
  std::vector<safetensors::F32Tensor> first;
  json weight_map, bf16_header;
  std::string bf16_data;
  for (const ParamInfo& p : model->params().entries()) {
    const bool in_first = p.name.rfind("model.layers.0.", 0) == 0 || p.name == "model.embed_tokens.weight";
    weight_map[p.name] = in_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    if (in_first) {
      first.push_back({p.name, p.shape, model->param(p.name)});
      continue;
    }
    bf16_header[p.name] = {
        {"dtype", "BF16"}, {"shape", p.shape}, {"data_offsets", {bf16_data.size(), bf16_data.size() + 2 * p.numel()}}};
    float* x = model->param(p.name);
    for (size_t i = 0; i < p.numel(); ++i) {
      const bf16 h = float_to_bf16(x[i]);
      x[i] = bf16_to_float(h);
      bf16_data.append(reinterpret_cast<const char*>(&h.bits), 2);  // little-endian host
    }
  }
  safetensors::write(in + "/model-00001-of-00002.safetensors", first, {{"format", "pt"}});
  const std::string header = bf16_header.dump();
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  write_file(in + "/model-00002-of-00002.safetensors", length + header + bf16_data);
  write_file(in + "/model.safetensors.index.json",
             json({{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}).dump());

  const Result r = ringwise("import --input " + in + " --output " + path("out.h5"));
  ASSERT_EQ(r.code, 0) << r.output;
  expect_checkpoint_holds(path("out.h5"), *model, run);
}

// Exit code 2 and one "ringwise: error:" line containing every one of `words`.
void expect_user_error(const Result& r, const std::vector<std::string>& words) {
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output.rfind("ringwise: error: ", 0), 0u) << r.output;
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << r.output;
  for (const std::string& w : words) EXPECT_NE(r.output.find(w), std::string::npos) << w << " in " << r.output;
}

TEST_F(HfInterchangeTest, BadInputsNameTheFileAndLeaveOutputsAlone) {
  const RunConfig run = tiny_run(false);
  auto model = random_model(run.model, 5);
  const std::string ckpt = save(*model, run, 2), out = path("hf");
  ASSERT_EQ(ringwise("export --checkpoint " + ckpt + " --output " + out).code, 0);
  const std::string exported = read_file(out + "/model.safetensors");

  expect_user_error(ringwise("export --checkpoint " + path("none.h5") + " --output " + path("x")), {path("none.h5")});
  expect_user_error(ringwise("export --output " + path("x")), {"--checkpoint"});
  expect_user_error(ringwise("export --checkpoint " + ckpt + " --output " + out + " --format gguf"), {"--format gguf"});
  expect_user_error(ringwise("export --checkpoint " + ckpt + " --output " + out),
                    {out + "/model.safetensors", "--force"});
  EXPECT_EQ(read_file(out + "/model.safetensors"), exported);
  EXPECT_EQ(ringwise("export --checkpoint " + ckpt + " --output " + out + " --force").code, 0);

  // A mixture-of-experts checkpoint has no LlamaForCausalLM form: refused, nothing written.
  RunConfig moe = run;
  moe.model.moe_experts = 4;
  auto moe_model = random_model(moe.model, 6);
  const std::string moe_ckpt = save(*moe_model, moe, 3);
  expect_user_error(ringwise("export --checkpoint " + moe_ckpt + " --output " + path("moe_hf")),
                    {moe_ckpt, "--moe-experts 4", "LlamaForCausalLM"});
  EXPECT_FALSE(fs::exists(path("moe_hf")));

  write_file(path("existing.h5"), "precious");
  expect_user_error(ringwise("import --input " + out + " --output " + path("existing.h5")),
                    {path("existing.h5"), "--force"});
  EXPECT_EQ(read_file(path("existing.h5")), "precious");
  expect_user_error(ringwise("import --input " + path("nowhere") + " --output " + path("y.h5")), {path("nowhere")});

  // A directory whose config.json or weights do not fit together; nothing may be written.
  const std::string bad = path("bad");
  fs::create_directories(bad);
  auto import_bad = [&](const LlamaConfig& cfg, const std::string& edit_key, const json& value) {
    json config = json::parse(hf_config_json(cfg));
    if (!edit_key.empty()) config[edit_key] = value;
    write_file(bad + "/config.json", config.dump());
    return ringwise("import --input " + bad + " --output " + path("y.h5"));
  };
  expect_user_error(import_bad(run.model, "", nullptr), {bad, "model.safetensors"});  // no weights at all
  fs::copy_file(out + "/model.safetensors", bad + "/model.safetensors");
  expect_user_error(import_bad(run.model, "rope_scaling", {{"type", "linear"}, {"factor", 2.0}}),
                    {bad + "/config.json", "rope_scaling"});
  expect_user_error(import_bad(run.model, "num_hidden_layers", 1),
                    {bad + "/model.safetensors", "'model.layers.1.", "num_hidden_layers"});
  expect_user_error(import_bad(run.model, "intermediate_size", 48),
                    {bad + "/model.safetensors", "'model.layers.0.mlp.", "[64, 32]", "[48, 32]"});
  expect_user_error(import_bad(run.model, "tie_word_embeddings", true), {"'lm_head.weight'", "tie_word_embeddings"});
  LlamaConfig wider = run.model;
  wider.n_layers = 3;
  expect_user_error(import_bad(wider, "", nullptr), {bad + "/model.safetensors", "no tensor 'model.layers.2."});
  EXPECT_FALSE(fs::exists(path("y.h5")));
  for (const fs::directory_entry& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

// config.json <-> LlamaConfig without the binary: defaults, round trip, and refused features.
TEST(HfConfigTest, DefaultsRoundTripAndRefusals) {
  const std::string minimal = R"({"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 3,
      "num_attention_heads": 8, "intermediate_size": 96})";
  const LlamaConfig c = parse_hf_config(minimal, "m/config.json");
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.max_seq, 2048);
  EXPECT_FALSE(c.tied_embeddings);

  LlamaConfig odd = c;
  odd.n_kv_heads = 2;
  odd.rope_theta = 500000.0f;
  odd.norm_eps = 1e-5f;
  odd.tied_embeddings = true;
  expect_same_config(parse_hf_config(hf_config_json(odd), "x"), odd);
  EXPECT_EQ(json::parse(hf_config_json(odd))["rms_norm_eps"].get<double>(), 1e-5);  // not 9.99999975e-06

  auto refusal = [&](const std::string& key, const json& value) {
    json j = json::parse(minimal);
    j[key] = value;
    try {
      parse_hf_config(j.dump(), "m/config.json");
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{{"rope_scaling", {{"rope_type", "llama3"}}},
                                                                            {"attention_bias", true},
                                                                            {"mlp_bias", true},
                                                                            {"head_dim", 16},
                                                                            {"hidden_act", "gelu"},
                                                                            {"model_type", "mistral"},
                                                                            {"num_key_value_heads", 3},
                                                                            {"num_attention_heads", 7},
                                                                            {"vocab_size", "many"},
                                                                            {"intermediate_size", -4},
                                                                            {"rms_norm_eps", 0},
                                                                            {"tie_word_embeddings", "yes"}}) {
    const std::string msg = refusal(key, value);
    EXPECT_NE(msg.find("m/config.json"), std::string::npos) << key << ": " << msg;
    EXPECT_NE(msg.find(key), std::string::npos) << key << ": " << msg;
  }
  EXPECT_NE(refusal("vocab_size", nullptr).find("vocab_size"), std::string::npos);
  try {
    parse_hf_config("{\"vocab_size\": ", "m/config.json");
    ADD_FAILURE() << "bad JSON accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("m/config.json: not valid JSON"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rw
