// `ringwise import --input FILE.gguf` on small GGUF files written here: a tiny LLaMA whose weights
// come back exactly under their Hugging Face names, q/k rows back in rotate-half order, and the
// errors that name the file and the key or tensor. (tests/jobs_smollm2_test.cpp checks a real
// model's logits against an independent reference.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "jobs/checkpoint_model.h"
#include "tests/gguf_test_support.h"
#include "tests/ringwise_binary.h"

namespace rw {
namespace {

// The GGUF name of a Hugging Face parameter name, as llama.cpp's converter writes it.
std::string gguf_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::pair<const char*, const char*> layer[] = {
      {"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},    {"input_layernorm", "attn_norm"}, {"post_attention_layernorm", "ffn_norm"}};
  const size_t dot = hf.find('.', 13);  // after "model.layers."
  const std::string n = hf.substr(13, dot - 13), rest = hf.substr(dot + 1);
  for (const auto& [from, to] : layer)
    if (rest == std::string(from) + ".weight") return "blk." + n + "." + to + ".weight";
  ADD_FAILURE() << "no GGUF name for " << hf;
  return "";
}

// llama.cpp's convert_hf_to_gguf permute(): rows viewed as [heads, 2, D/2, cols], axes 1 and 2
// swapped, so Hugging Face row (h, s, i) lands at (h, i, s).
std::vector<float> llama_cpp_permute(const float* w, int heads, int D, int cols) {
  std::vector<float> out(static_cast<size_t>(heads) * D * cols);
  for (int h = 0; h < heads; ++h)
    for (int s = 0; s < 2; ++s)
      for (int i = 0; i < D / 2; ++i)
        std::copy_n(w + (static_cast<size_t>(h) * D + s * D / 2 + i) * cols, cols,
                    out.begin() + (static_cast<size_t>(h) * D + 2 * i + s) * cols);
  return out;
}

class GgufImportTest : public test::TempDirTest {
 protected:
  // The tiny preset (GQA, untied lm_head) with random weights, as llama.cpp would write it (F32);
  // rope_dims 0 rotates whole heads.
  test::GgufWriter tiny_llama(LlamaModel& model, const std::string& architecture = "llama", int rope_dims = 0) {
    const LlamaConfig& c = model.config();
    test::GgufWriter w;
    w.add_string("general.architecture", architecture);
    w.add_u32("llama.block_count", c.n_layers);
    w.add_u32("llama.context_length", c.max_seq);
    w.add_u32("llama.embedding_length", c.d_model);
    w.add_u32("llama.feed_forward_length", c.ffn_dim);
    w.add_u32("llama.attention.head_count", c.n_heads);
    w.add_u32("llama.attention.head_count_kv", c.n_kv_heads);
    w.add_f32("llama.rope.freq_base", 50000.0f);
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
    w.add_u32("llama.rope.dimension_count", rope_dims ? rope_dims : c.head_dim());
    for (const ParamInfo& p : model.params().entries()) {
      const float* v = model.param(p.name);
      std::vector<float> stored(v, v + p.logical_numel());
      const bool q = p.name.find("q_proj") != std::string::npos, k = p.name.find("k_proj") != std::string::npos;
      if (q || k) stored = llama_cpp_permute(v, q ? c.n_heads : c.n_kv_heads, c.head_dim(), c.d_model);
      std::vector<uint64_t> dims(p.shape.rbegin(), p.shape.rend());
      w.add_f32_tensor(gguf_name(p.name), dims, stored);
    }
    return w;
  }

  test::RunResult import(const std::string& input) {
    return test::run_ringwise({"import", "--input", input, "--output", path("out.h5")}, path("err"));
  }
};

TEST_F(GgufImportTest, TinyLlamaComesBackExactly) {
  LlamaModel original(LlamaConfig::preset("tiny"));
  original.init_weights(7);
  tiny_llama(original).write(path("tiny.gguf"));
  const test::RunResult r = import(path("tiny.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("tensors (" + std::to_string(original.params().entries().size()) + " F32) dequantised"),
            std::string::npos)
      << r.out;

  const std::unique_ptr<LlamaModel> imported = load_checkpoint_model(path("out.h5"));
  const LlamaConfig& c = imported->config();
  EXPECT_EQ(c.n_kv_heads, original.config().n_kv_heads);
  EXPECT_FLOAT_EQ(c.rope_theta, 50000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_FALSE(c.tied_embeddings);
  for (const ParamInfo& p : original.params().entries())
    ASSERT_TRUE(std::equal(original.param(p.name), original.param(p.name) + p.numel(), imported->param(p.name)))
        << p.name;
}

TEST_F(GgufImportTest, ErrorsNameTheFileAndField) {
  LlamaModel model(LlamaConfig::preset("tiny"));
  model.init_weights(1);
  auto expect_error = [&](const test::GgufWriter& w, const std::string& message) {
    w.write(path("bad.gguf"));
    const test::RunResult r = import(path("bad.gguf"));
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.err.find(path("bad.gguf") + ": " + message), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(path("out.h5")));
  };
  expect_error(tiny_llama(model, "gpt2"), "general.architecture is 'gpt2'; ringwise imports only 'llama'");

  test::GgufWriter extra = tiny_llama(model);
  extra.add_f32_tensor("rope_freqs.weight", {4}, {1, 1, 1, 1});
  expect_error(extra, "tensor 'rope_freqs.weight' has no place in a ringwise LLaMA model");

  test::GgufWriter scaled = tiny_llama(model);
  scaled.add_string("llama.rope.scaling.type", "linear");
  expect_error(scaled, "metadata key 'llama.rope.scaling.type' = 'linear': RoPE scaling is not supported");

  expect_error(tiny_llama(model, "llama", 4),
               "metadata key 'llama.rope.dimension_count' = 4, but ringwise needs the head dim 8");

  std::ofstream(path("notes.txt")) << "x";
  const test::RunResult r = import(path("notes.txt"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is neither a Hugging Face model directory nor a .gguf file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rw
