// Hugging Face byte-level BPE tokenizers (GPT-2, SmolLM2, StarCoder, LLaMA-3 style), read from a
// tokenizer.json ("hf:FILE") or from a GGUF file's tokenizer.ggml.* metadata ("gguf:FILE").
//
// Encoding works as the `tokenizers` library does it: added tokens (<|im_start|>, ...) are found
// first, longest leftmost match, and never split; the text between them is cut by the pre-tokenizer
// (data/regex_pretokenizer.h), each piece's bytes become the single-byte tokens of GPT-2's
// byte-to-character alphabet, and merges are applied by rank. Nothing is added at the ends (no BOS):
// `ringwise prepare` appends the end-of-document token itself. Decoding maps tokens back to bytes,
// keeps added tokens as their text and drops the end-of-document token.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/regex_pretokenizer.h"
#include "data/tokenizer.h"

namespace rw {

// What a loader reads from its file; make_hf_bpe_tokenizer() checks it.
struct HfBpeDefinition {
  std::string spec;                 // name(), the spec that reopens it ("hf:FILE", "gguf:FILE")
  std::string file;                 // named in errors
  std::vector<std::string> tokens;  // id -> token, in GPT-2's byte alphabet; "" for an unused id
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
  std::vector<int32_t> added_tokens;  // matched whole before pre-tokenizing; tokens[id] is their plain text
  PretokenizerOptions pretokenizer;
  bool ignore_merges = false;  // a piece that is itself a token is not merged (LLaMA-3)
  // A byte without a token of its own becomes unk_token (one for a run of them with fuse_unk), or
  // is dropped when there is none, as in Hugging Face's BPE (SmolLM2 lacks 21 bytes: controls
  // such as 0x04 and bytes that never occur in UTF-8).
  int32_t unk_token = -1;
  bool fuse_unk = false;
  int32_t eod_token = -1;  // -1: one extra id after the vocabulary
};

// UserError naming the file when a merge or the byte alphabet refers to a token it does not have.
std::unique_ptr<Tokenizer> make_hf_bpe_tokenizer(HfBpeDefinition definition);

// "hf:FILE" or "hf:DIR" (DIR/tokenizer.json): a tokenizer.json with a BPE model and a ByteLevel pre-tokenizer (alone, after
// Digits, or with use_regex false after a Split on the GPT-2 or LLaMA-3 pattern). The end-of-document
// token is eos_token of a tokenizer_config.json beside it, else the added token <|endoftext|>, </s>,
// <|end_of_text|> or <eos>, else an extra id. UserError naming the file and field for anything else.
std::unique_ptr<Tokenizer> open_hf_tokenizer(const std::string& path);

// "gguf:FILE": tokenizer.ggml.model "gpt2" (tokens, token_type, merges, eos_token_id, and pre
// naming the split pattern). Control and user-defined tokens are the added tokens.
std::unique_ptr<Tokenizer> open_gguf_tokenizer(const std::string& path);

}  // namespace rw
