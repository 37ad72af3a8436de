// Hugging Face LLaMA config.json <-> LlamaConfig, for `ringwise export` and `ringwise import`.
//
// Keys read: vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size
// (required); num_key_value_heads (default: the heads), max_position_embeddings (2048),
// rope_theta (10000), rms_norm_eps (1e-6), tie_word_embeddings (false): the defaults are
// transformers' LlamaConfig's. What ringwise does not implement is refused by key rather than
// silently computed differently: rope_scaling, attention_bias, mlp_bias, a head_dim other than
// hidden_size / num_attention_heads, a hidden_act other than silu, a model_type other than llama.
#pragma once
#include <string>

#include "models/llama_config.h"

namespace rw {

// `where` names the file in errors ("DIR/config.json"); UserError naming the key.
LlamaConfig parse_hf_config(const std::string& json_text, const std::string& where);

// config.json for LlamaForCausalLM, float32 weights, pretty-printed.
std::string hf_config_json(const LlamaConfig& cfg);

}  // namespace rw
