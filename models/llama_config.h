// The shape of a LLaMA-family decoder, with named presets.
#pragma once
#include <string>
#include <vector>

namespace rw {

struct LlamaConfig {
  int vocab_size = 256;
  int d_model = 256;
  int n_layers = 4;
  int n_heads = 4;
  int n_kv_heads = 4;  // GQA when fewer than n_heads
  int ffn_dim = 768;
  int max_seq = 256;   // longest sequence the RoPE table covers
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  bool tied_embeddings = false;  // lm_head shares model.embed_tokens.weight

  int head_dim() const { return d_model / n_heads; }
  // Throws UserError naming the field when the shape is impossible (heads not dividing d_model...).
  void validate() const;
  // Parameters in the model (lm_head counted once when tied).
  long long num_params() const;

  static LlamaConfig preset(const std::string& name);  // "tiny" (tests), "small" (demo); UserError otherwise
  static std::vector<std::string> preset_names();
};

}  // namespace rw
