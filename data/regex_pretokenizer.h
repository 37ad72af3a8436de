// The pre-tokenizers of Hugging Face byte-level BPE tokenizers, written out by hand: text is cut into
// pieces as the GPT-2 or LLaMA-3 split regex would cut it, and BPE merges never cross a piece.
//   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   LLaMA-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//            \s*[\r\n]+|\s+(?!\S)|\s+
// With individual_digits (the Digits pre-tokenizer that runs first in SmolLM2 and StarCoder), every
// \p{N} code point is a piece of its own and the pattern applies to the text between them.
#pragma once
#include <functional>
#include <string_view>

namespace rw {

enum class SplitPattern { kGpt2, kLlama3 };

struct PretokenizerOptions {
  SplitPattern pattern = SplitPattern::kGpt2;
  bool individual_digits = false;
};

// Calls visit() with each piece of `text`, in order; the pieces concatenate to `text`.
void pretokenize(std::string_view text, const PretokenizerOptions& options,
                 const std::function<void(std::string_view)>& visit);

}  // namespace rw
