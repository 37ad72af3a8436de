#include "models/llama_config.h"

#include "core/check.h"

namespace rw {

void LlamaConfig::validate() const {
  RW_USER_CHECK(vocab_size >= 2, "--vocab-size must be at least 2, got %d", vocab_size);
  RW_USER_CHECK(d_model >= 1, "--d-model must be positive, got %d", d_model);
  RW_USER_CHECK(n_layers >= 1, "--layers must be positive, got %d", n_layers);
  RW_USER_CHECK(n_heads >= 1, "--heads must be positive, got %d", n_heads);
  RW_USER_CHECK(d_model % n_heads == 0, "--heads %d must divide --d-model %d", n_heads, d_model);
  RW_USER_CHECK(head_dim() % 2 == 0, "head dim (--d-model / --heads) = %d must be even for RoPE", head_dim());
  RW_USER_CHECK(n_kv_heads >= 1 && n_heads % n_kv_heads == 0, "--kv-heads %d must divide --heads %d", n_kv_heads,
                n_heads);
  RW_USER_CHECK(ffn_dim >= 1, "--ffn-dim must be positive, got %d", ffn_dim);
  RW_USER_CHECK(max_seq >= 2, "--max-seq must be at least 2, got %d", max_seq);
  RW_USER_CHECK(rope_theta > 0, "--rope-theta must be positive, got %g", rope_theta);
  RW_USER_CHECK(norm_eps > 0, "--norm-eps must be positive, got %g", norm_eps);
  RW_USER_CHECK(moe_experts >= 0, "--moe-experts must not be negative (0 = dense), got %d", moe_experts);
  RW_USER_CHECK(moe_every >= 1, "--moe-every must be positive, got %d", moe_every);
}

void LlamaConfig::check_tensor_parallel(int tp) const {
  RW_USER_CHECK(n_heads % tp == 0, "--tp %d must divide --heads %d", tp, n_heads);
  RW_USER_CHECK(n_kv_heads % tp == 0, "--tp %d must divide --kv-heads %d", tp, n_kv_heads);
  RW_USER_CHECK(ffn_dim % tp == 0, "--tp %d must divide --ffn-dim %d", tp, ffn_dim);
  RW_USER_CHECK(vocab_size % tp == 0, "--tp %d must divide --vocab-size %d (the vocabulary is split, not padded)", tp,
                vocab_size);
}

long long LlamaConfig::num_params() const {
  long long C = d_model, kv = static_cast<long long>(n_kv_heads) * head_dim();
  long long per_layer = 2 * C + C * C * 2 + 2 * kv * C + 3 * C * ffn_dim;
  long long embed = static_cast<long long>(vocab_size) * C;
  long long moe_extra = 0;  // an MoE layer has E experts and a router where a dense one has one MLP
  for (int l = 0; l < n_layers; ++l)
    if (is_moe_layer(l)) moe_extra += (moe_experts - 1) * 3 * C * ffn_dim + moe_experts * C;
  return embed * (tied_embeddings ? 1 : 2) + n_layers * per_layer + C + moe_extra;
}

LlamaConfig LlamaConfig::preset(const std::string& name) {
  LlamaConfig c;
  if (name == "small") return c;  // the defaults: the demo and benchmark model (~3.4M parameters)
  if (name == "tiny") {           // for tests: every feature (GQA) at a size that runs in milliseconds
    c.vocab_size = 256;
    c.d_model = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.ffn_dim = 64;
    c.max_seq = 64;
    return c;
  }
  throw UserError("unknown preset '" + name + "' (choose tiny or small)");
}

std::vector<std::string> LlamaConfig::preset_names() { return {"tiny", "small"}; }

}  // namespace rw
