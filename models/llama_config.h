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
  // Mixture of experts (models/moe.h): 0 experts is the dense model. Layer i is MoE when
  // (i + 1) % moe_every == 0, its MLP then E experts of width ffn_dim and a router.
  int moe_experts = 0;
  int moe_top_k = 2;
  float moe_capacity_factor = 1.25f;
  int moe_every = 1;
  float moe_aux_coef = 0.01f;
  float moe_z_coef = 0.001f;
  bool is_moe_layer(int layer) const { return moe_experts > 0 && (layer + 1) % moe_every == 0; }

  int head_dim() const { return d_model / n_heads; }
  // Throws UserError naming the field when the shape is impossible (heads not dividing d_model...).
  void validate() const;
  // UserError naming --heads, --kv-heads, --ffn-dim or --vocab-size when `tp` does not divide it
  // (tensor parallelism splits each of them; the vocabulary is not padded).
  void check_tensor_parallel(int tp) const;
  // Parameters in the model (lm_head counted once when tied).
  long long num_params() const;

  static LlamaConfig preset(const std::string& name);  // "tiny" (tests), "small" (demo); UserError otherwise
  static std::vector<std::string> preset_names();
};

}  // namespace rw
