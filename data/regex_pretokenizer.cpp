#include "data/regex_pretokenizer.h"

#include <cctype>

#include "data/unicode_class.h"

namespace rw {
namespace {

// Past the end counts as whitespace: nothing may join it.
CharClass class_at(std::string_view t, size_t i) { return i < t.size() ? code_point_at(t, i).cls : CharClass::kSpace; }

// The end of the run of `cls` code points starting at i.
size_t run_end(std::string_view t, size_t i, CharClass cls) {
  while (i < t.size()) {
    const CodePoint c = code_point_at(t, i);
    if (c.cls != cls) break;
    i += c.bytes;
  }
  return i;
}

// 's 't 're 've 'm 'll 'd at i (case-insensitively for LLaMA-3): their length, else 0.
size_t contraction_length(std::string_view t, size_t i, bool ignore_case) {
  if (t[i] != '\'' || i + 1 >= t.size()) return 0;
  const auto at = [&](size_t k) {
    return ignore_case ? static_cast<char>(std::tolower(static_cast<unsigned char>(t[k]))) : t[k];
  };
  const char a = at(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= t.size()) return 0;
  const char b = at(i + 2);
  return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
}

// \s+(?!\S)|\s+ at a whitespace code point i: a run that reaches the end of the text is one piece;
// before anything else the run leaves its last code point to the next piece, unless it is that one.
size_t space_run_end(std::string_view t, size_t i) {
  size_t end = i, last = i;
  while (end < t.size()) {
    const CodePoint c = code_point_at(t, end);
    if (c.cls != CharClass::kSpace) break;
    last = end;
    end += c.bytes;
  }
  return end == t.size() || last == i ? end : last;
}

size_t gpt2_piece_end(std::string_view t, size_t i) {
  if (size_t n = contraction_length(t, i, false)) return i + n;
  // " ?\p{L}+", " ?\p{N}+" and " ?[^\s\p{L}\p{N}]+": one optional space, then a run of one class.
  size_t start = i;
  CharClass cls = code_point_at(t, i).cls;
  if (t[i] == ' ' && class_at(t, i + 1) != CharClass::kSpace) cls = class_at(t, start = i + 1);
  if (cls != CharClass::kSpace) return run_end(t, start, cls);
  return space_run_end(t, i);
}

bool is_line_break(char c) { return c == '\r' || c == '\n'; }

size_t llama3_piece_end(std::string_view t, size_t i) {
  if (size_t n = contraction_length(t, i, true)) return i + n;
  const CodePoint c = code_point_at(t, i);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c.cls == CharClass::kLetter) return run_end(t, i, CharClass::kLetter);
  if (c.cls != CharClass::kNumber && !is_line_break(t[i]) && class_at(t, i + c.bytes) == CharClass::kLetter)
    return run_end(t, i + c.bytes, CharClass::kLetter);
  // \p{N}{1,3}
  if (c.cls == CharClass::kNumber) {
    size_t end = i;
    for (int k = 0; k < 3 && end < t.size() && code_point_at(t, end).cls == CharClass::kNumber; ++k)
      end += code_point_at(t, end).bytes;
    return end;
  }
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  const size_t start = t[i] == ' ' && class_at(t, i + 1) == CharClass::kOther ? i + 1 : i;
  if (class_at(t, start) == CharClass::kOther) {
    size_t end = run_end(t, start, CharClass::kOther);
    while (end < t.size() && is_line_break(t[end])) ++end;
    return end;
  }
  // \s*[\r\n]+: up to the run's last line break, if it has one.
  size_t end = i, after_break = i;
  while (end < t.size()) {
    const CodePoint s = code_point_at(t, end);
    if (s.cls != CharClass::kSpace) break;
    end += s.bytes;
    if (is_line_break(t[end - 1])) after_break = end;
  }
  return after_break > i ? after_break : space_run_end(t, i);
}

void split_by_pattern(std::string_view t, SplitPattern pattern, const std::function<void(std::string_view)>& visit) {
  for (size_t i = 0; i < t.size();) {
    const size_t end = pattern == SplitPattern::kGpt2 ? gpt2_piece_end(t, i) : llama3_piece_end(t, i);
    visit(t.substr(i, end - i));
    i = end;
  }
}

}  // namespace

void pretokenize(std::string_view text, const PretokenizerOptions& options,
                 const std::function<void(std::string_view)>& visit) {
  if (!options.individual_digits) return split_by_pattern(text, options.pattern, visit);
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const CodePoint c = code_point_at(text, i);
    if (c.cls == CharClass::kNumber) {
      split_by_pattern(text.substr(start, i - start), options.pattern, visit);
      visit(text.substr(i, c.bytes));
      start = i + c.bytes;
    }
    i += c.bytes;
  }
  split_by_pattern(text.substr(start), options.pattern, visit);
}

}  // namespace rw
