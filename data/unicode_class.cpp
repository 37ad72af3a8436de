#include "data/unicode_class.h"

#include <algorithm>
#include <iterator>

namespace rw {
namespace {

struct CodePointRange {
  uint32_t first, last;
};

#include "data/unicode_class_ranges.inc"

bool in_ranges(const CodePointRange* begin, const CodePointRange* end, uint32_t c) {
  const CodePointRange* r =
      std::upper_bound(begin, end, c, [](uint32_t v, const CodePointRange& x) { return v < x.first; });
  return r != begin && c <= (r - 1)->last;
}

// Unicode White_Space, which is what Oniguruma's \s matches in UTF-8 text (U+001C..U+001F are not in it).
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

CharClass char_class(uint32_t c) {
  if (c < 0x80) {  // the common case, without a search
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kNumber;
    return is_white_space(c) ? CharClass::kSpace : CharClass::kOther;
  }
  if (in_ranges(std::begin(kLetterRanges), std::end(kLetterRanges), c)) return CharClass::kLetter;
  if (in_ranges(std::begin(kNumberRanges), std::end(kNumberRanges), c)) return CharClass::kNumber;
  return is_white_space(c) ? CharClass::kSpace : CharClass::kOther;
}

CodePoint code_point_at(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(pos);
  uint32_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  uint32_t c = len == 1 ? b0 : len == 2 ? b0 & 0x1F : len == 3 ? b0 & 0x0F : b0 & 0x07;
  bool ok = len != 0 && pos + len <= text.size();
  for (uint32_t i = 1; ok && i < len; ++i) {
    ok = (byte(pos + i) & 0xC0) == 0x80;
    c = (c << 6) | (byte(pos + i) & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8 either.
  static constexpr uint32_t kMinOfLength[] = {0, 0, 0x80, 0x800, 0x10000};
  ok = ok && c >= kMinOfLength[len] && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF);
  if (!ok) return {b0, 1, CharClass::kOther};
  return {c, len, char_class(c)};
}

}  // namespace rw
