// The Unicode classes a regex pre-tokenizer needs (\p{L}, \p{N}, \s), over UTF-8 text. The letter and
// number tables are exactly those of the Oniguruma engine behind Hugging Face tokenizers
// (data/unicode_class_ranges.inc, generated from it), so splits agree with the reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rw {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

// One code point of `text` at byte `pos`: its class and its length in bytes. A byte that does not
// start a valid UTF-8 sequence is a one-byte kOther, so every byte string can be split.
struct CodePoint {
  uint32_t value;
  uint32_t bytes;
  CharClass cls;
};
CodePoint code_point_at(std::string_view text, size_t pos);

CharClass char_class(uint32_t code_point);

}  // namespace rw
