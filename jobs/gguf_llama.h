// LLaMA models from GGUF files (llama.cpp's format, data/gguf_file.h): the configuration from the
// llama.* metadata and the weights, dequantised to float32, under the Hugging Face names of the
// ParamTable. Used by `ringwise import --input FILE.gguf`.
//
// Names: token_embd -> model.embed_tokens, blk.N.attn_{q,k,v,output} -> model.layers.N.self_attn.
// {q,k,v,o}_proj, blk.N.ffn_{gate,up,down} -> mlp.{gate,up,down}_proj, blk.N.attn_norm ->
// input_layernorm, blk.N.ffn_norm -> post_attention_layernorm, output_norm -> model.norm and
// output -> lm_head (absent: tied embeddings). A ggml tensor of dims [in, out] is the Hugging Face
// [out, in] matrix with the same bytes.
//
// llama.cpp's converter permutes the rows of q_proj and k_proj within each head so that its RoPE,
// which rotates adjacent pairs (x[2i], x[2i+1]), computes what Hugging Face's rotate-half RoPE
// computes on pairs (x[i], x[i + D/2]): GGUF row 2i + s of a head is Hugging Face row s * D/2 + i.
// Reading undoes it.
#pragma once
#include <map>
#include <string>

#include "data/gguf_file.h"
#include "models/llama.h"

namespace rw {

// UserError naming the file and key: another architecture than llama, missing shape keys,
// features ringwise does not implement (RoPE scaling, partial rotary, experts).
LlamaConfig gguf_llama_config(const GgufFile& file);

// Fills every parameter of `model` (built from gguf_llama_config(file)); UserError naming the
// file and tensor when one is missing, has another shape or type, or is left over. Returns how
// many tensors of each ggml type were read ("Q4_1" -> 210).
std::map<std::string, int> read_gguf_llama_weights(const GgufFile& file, LlamaModel& model);

}  // namespace rw
