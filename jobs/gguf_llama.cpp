#include "jobs/gguf_llama.h"

#include <cstring>
#include <set>

#include "core/check.h"
#include "data/gguf_dequant.h"

namespace rw {
namespace {

// An int metadata value that must fit a positive int.
int positive_int(const GgufFile& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  RW_USER_CHECK(v >= 1 && v <= INT32_MAX, "%s: metadata key '%s' = %lld is not a positive int", f.path().c_str(),
                key.c_str(), static_cast<long long>(v));
  return static_cast<int>(v);
}

// The GGUF name of a ParamTable name, "" when there is none.
std::string gguf_name(const std::string& hf) {
  static const std::pair<const char*, const char*> kTop[] = {{"model.embed_tokens.weight", "token_embd.weight"},
                                                             {"model.norm.weight", "output_norm.weight"},
                                                             {"lm_head.weight", "output.weight"}};
  for (const auto& [from, to] : kTop)
    if (hf == from) return to;
  static const std::pair<const char*, const char*> kLayer[] = {
      {"self_attn.q_proj.weight", "attn_q.weight"},    {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},    {"self_attn.o_proj.weight", "attn_output.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},     {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},     {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"}};
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) != 0) return "";
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size()), rest = hf.substr(dot + 1);
  for (const auto& [from, to] : kLayer)
    if (rest == from) return "blk." + layer + "." + to;
  return "";
}

// Rows [heads * D, cols] from llama.cpp's pair order back to Hugging Face's halves order.
void unpermute_rope_rows(const float* gguf, float* hf, int heads, int D, int64_t cols) {
  for (int h = 0; h < heads; ++h)
    for (int s = 0; s < 2; ++s)
      for (int i = 0; i < D / 2; ++i)
        std::memcpy(hf + (static_cast<int64_t>(h) * D + s * D / 2 + i) * cols,
                    gguf + (static_cast<int64_t>(h) * D + 2 * i + s) * cols, static_cast<size_t>(cols) * 4);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

LlamaConfig gguf_llama_config(const GgufFile& f) {
  const char* path = f.path().c_str();
  const std::string arch = f.get_string("general.architecture");
  RW_USER_CHECK(arch == "llama", "%s: general.architecture is '%s'; ringwise imports only 'llama'", path,
                arch.c_str());
  LlamaConfig c;
  c.n_layers = positive_int(f, "llama.block_count");
  c.d_model = positive_int(f, "llama.embedding_length");
  c.ffn_dim = positive_int(f, "llama.feed_forward_length");
  c.n_heads = positive_int(f, "llama.attention.head_count");
  c.n_kv_heads = f.has("llama.attention.head_count_kv") ? positive_int(f, "llama.attention.head_count_kv") : c.n_heads;
  c.max_seq = f.has("llama.context_length") ? positive_int(f, "llama.context_length") : 2048;
  c.rope_theta = f.has("llama.rope.freq_base") ? static_cast<float>(f.get_float("llama.rope.freq_base")) : 10000.0f;
  c.norm_eps = static_cast<float>(f.get_float("llama.attention.layer_norm_rms_epsilon"));
  // The vocabulary is the embedding's row count; llama.vocab_size, when given, must agree.
  const GgufFile::TensorInfo* embed = f.find("token_embd.weight");
  RW_USER_CHECK(embed && embed->dims.size() == 2, "%s: no 2-D tensor 'token_embd.weight'", path);
  RW_USER_CHECK(embed->dims[1] <= INT32_MAX, "%s: token_embd.weight has too many rows", path);
  c.vocab_size = static_cast<int>(embed->dims[1]);
  if (f.has("llama.vocab_size"))
    RW_USER_CHECK(f.get_int("llama.vocab_size") == c.vocab_size,
                  "%s: metadata key 'llama.vocab_size' = %lld but token_embd.weight has %d rows", path,
                  static_cast<long long>(f.get_int("llama.vocab_size")), c.vocab_size);
  c.tied_embeddings = f.find("output.weight") == nullptr;

  // What ringwise does not compute is refused rather than silently computed differently.
  RW_USER_CHECK(c.n_heads >= 1 && c.d_model % c.n_heads == 0,
                "%s: llama.attention.head_count %d does not divide llama.embedding_length %d", path, c.n_heads,
                c.d_model);
  for (const char* key : {"llama.rope.dimension_count", "llama.attention.key_length", "llama.attention.value_length"})
    if (f.has(key))
      RW_USER_CHECK(f.get_int(key) == c.head_dim(),
                    "%s: metadata key '%s' = %lld, but ringwise needs the head dim %d (embedding_length / head_count)",
                    path, key, static_cast<long long>(f.get_int(key)), c.head_dim());
  if (f.has("llama.rope.scaling.type"))
    RW_USER_CHECK(f.get_string("llama.rope.scaling.type") == "none",
                  "%s: metadata key 'llama.rope.scaling.type' = '%s': RoPE scaling is not supported", path,
                  f.get_string("llama.rope.scaling.type").c_str());
  if (f.has("llama.expert_count"))
    RW_USER_CHECK(f.get_int("llama.expert_count") == 0,
                  "%s: metadata key 'llama.expert_count' = %lld: mixture-of-experts GGUF models are not supported",
                  path, static_cast<long long>(f.get_int("llama.expert_count")));
  try {
    c.validate();
  } catch (const UserError& e) {
    throw UserError(f.path() + ": " + e.what());
  }
  return c;
}

std::map<std::string, int> read_gguf_llama_weights(const GgufFile& f, LlamaModel& model) {
  const LlamaConfig& c = model.config();
  std::map<std::string, int> types;
  std::set<std::string> used;
  for (const ParamInfo& p : model.params().entries()) {
    const std::string name = gguf_name(p.name);
    RW_CHECK(!name.empty(), "no GGUF name for parameter %s", p.name.c_str());
    const GgufFile::TensorInfo* t = f.find(name);
    RW_USER_CHECK(t, "%s: no tensor '%s' (the model's %s)", f.path().c_str(), name.c_str(), p.name.c_str());
    const Shape ggml_order(p.shape.rbegin(), p.shape.rend());
    RW_USER_CHECK(t->dims == ggml_order, "%s: tensor '%s' has dims %s (ggml order), expected %s", f.path().c_str(),
                  name.c_str(), shape_str(t->dims).c_str(), shape_str(ggml_order).c_str());
    std::vector<float> values = f.read_f32(name);
    float* dst = model.param(p.name);
    if (ends_with(name, "attn_q.weight") || ends_with(name, "attn_k.weight"))
      unpermute_rope_rows(values.data(), dst, ends_with(name, "attn_q.weight") ? c.n_heads : c.n_kv_heads,
                          c.head_dim(), p.shape[1]);
    else
      std::memcpy(dst, values.data(), values.size() * 4);
    ++types[ggml_type_name(t->type)];
    used.insert(name);
  }
  for (const GgufFile::TensorInfo& t : f.tensors())
    RW_USER_CHECK(used.count(t.name), "%s: tensor '%s' has no place in a ringwise LLaMA model", f.path().c_str(),
                  t.name.c_str());
  return types;
}

}  // namespace rw
