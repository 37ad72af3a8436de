#include "data/longbench_metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/check.h"

namespace rw::longbench {
namespace {

// ---- UTF-8 <-> code points (a malformed byte stands for itself, so nothing is lost)
std::u32string decode_utf8(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    const int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    char32_t cp = extra == 0 ? c : extra == 1 ? c & 0x1F : extra == 2 ? c & 0x0F : c & 0x07;
    bool ok = i + extra < s.size();
    for (int k = 1; ok && k <= extra; ++k) {
      const unsigned char d = s[i + k];
      ok = (d & 0xC0) == 0x80;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (!ok) {
      out.push_back(c);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += 1 + extra;
  }
  return out;
}

std::string encode_utf8(const std::u32string& s) {
  std::string out;
  for (char32_t cp : s) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

// Python's str.isspace(), which str.split() splits on.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
bool is_ascii_alnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_punct(char32_t c) { return c < 0x80 && c > 0x20 && c != 0x7F && !is_ascii_alnum(c); }
char32_t ascii_lower(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// The Chinese punctuation normalize_zh_answer drops besides ASCII punctuation (metrics.py's list).
const std::u32string& zh_punctuation() {
  static const std::u32string p = decode_utf8(
      "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.");
  return p;
}

// str.split(): runs of non-whitespace.
std::vector<std::u32string> split_whitespace(const std::u32string& s) {
  std::vector<std::u32string> words;
  std::u32string cur;
  for (char32_t c : s) {
    if (is_space(c)) {
      if (!cur.empty()) words.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) words.push_back(cur);
  return words;
}

// str.split(sep) for a one-character separator: keeps empty pieces.
std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// str.split() of an already whitespace-collapsed string: no words when it is empty.
std::vector<std::string> words_of(const std::string& normalized) {
  return normalized.empty() ? std::vector<std::string>{} : split_on(normalized, ' ');
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// metrics.py f1_score: F1 of the multiset intersection.
double f1_of_tokens(const std::vector<std::string>& pred, const std::vector<std::string>& truth) {
  std::map<std::string, int> counts;
  for (const std::string& t : truth) ++counts[t];
  int same = 0;
  for (const std::string& t : pred) {
    auto it = counts.find(t);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = 1.0 * same / pred.size(), recall = 1.0 * same / truth.size();
  return 2 * precision * recall / (precision + recall);
}

// Runs of ASCII digits (Python's re.findall(r"\d+"), for ASCII digits).
std::vector<std::string> find_numbers(const std::string& s) {
  std::vector<std::string> numbers;
  std::string cur;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      cur += c;
    } else if (!cur.empty()) {
      numbers.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) numbers.push_back(cur);
  return numbers;
}

double share_equal_to(const std::vector<std::string>& numbers, const std::string& target) {
  if (numbers.empty()) return 0.0;
  const auto right = std::count(numbers.begin(), numbers.end(), target);
  return static_cast<double>(right) / numbers.size();
}

// The digits after the first `label` that is followed by one.
std::string paragraph_number(const std::string& truth, const std::string& label) {
  for (size_t at = truth.find(label); at != std::string::npos; at = truth.find(label, at + 1)) {
    size_t end = at + label.size();
    while (end < truth.size() && truth[end] >= '0' && truth[end] <= '9') ++end;
    if (end > at + label.size()) return truth.substr(at + label.size(), end - at - label.size());
  }
  throw UserError("retrieval answer '" + truth + "' names no paragraph ('" + label + "N')");
}

// ---- ROUGE-L as the `rouge` package computes it (rouge_l_summary_level, exclusive n-grams).
// Its sentences: the text split on '.', empty pieces dropped, whitespace collapsed to one space.
std::vector<std::string> rouge_sentences(const std::string& text) {
  std::vector<std::string> sentences;
  for (const std::string& piece : split_on(text, '.')) {
    if (piece.empty()) continue;
    std::vector<std::string> words;
    for (const std::u32string& w : split_whitespace(decode_utf8(piece))) words.push_back(encode_utf8(w));
    sentences.push_back(join(words, " "));
  }
  return sentences;
}

// The words of one LCS of reference x and candidate y, recovered with the package's tie-breaking
// (which words enter the union depends on it).
std::vector<std::string> lcs_words(const std::vector<std::string>& x, const std::vector<std::string>& y) {
  const size_t n = x.size(), m = y.size();
  std::vector<int> table((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> int& { return table[i * (m + 1) + j]; };
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      at(i, j) = x[i - 1] == y[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
  std::vector<std::string> words;
  for (size_t i = n, j = m; i > 0 && j > 0;) {
    if (x[i - 1] == y[j - 1]) {
      words.push_back(x[i - 1]);
      --i;
      --j;
    } else if (at(i - 1, j) > at(i, j - 1)) {
      --i;
    } else {
      --j;
    }
  }
  return words;
}

double rouge_l(const std::vector<std::string>& hyp, const std::vector<std::string>& ref) {
  if (hyp.empty() || ref.empty()) return 0.0;  // the package raises; metrics.py scores 0
  std::set<std::string> ref_words, hyp_words, lcs_union;
  for (const std::string& s : ref)
    for (const std::string& w : split_on(s, ' ')) ref_words.insert(w);
  for (const std::string& s : hyp)
    for (const std::string& w : split_on(s, ' ')) hyp_words.insert(w);
  for (const std::string& r : ref)
    for (const std::string& h : hyp)
      for (const std::string& w : lcs_words(split_on(r, ' '), split_on(h, ' '))) lcs_union.insert(w);
  const double llcs = static_cast<double>(lcs_union.size());
  const double recall = llcs / ref_words.size(), precision = llcs / hyp_words.size();
  return 2.0 * (precision * recall / (precision + recall + 1e-8));
}

// Length of the longest common subsequence of code points, two rolling rows.
size_t lcs_length(const std::u32string& a, const std::u32string& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string normalize_answer(const std::string& s) {
  std::u32string text;
  for (char32_t c : decode_utf8(s))
    if (!is_ascii_punct(c)) text += ascii_lower(c);
  // \b(a|an|the)\b -> " ": a whole run of word characters that is an article. Non-ASCII code
  // points count as word characters (see the header).
  std::u32string no_articles, word;
  auto is_word = [](char32_t c) { return is_ascii_alnum(c) || c == U'_' || c >= 0x80; };
  auto flush = [&] {
    no_articles += (word == U"a" || word == U"an" || word == U"the") ? U" " : word;
    word.clear();
  };
  for (char32_t c : text) {
    if (is_word(c)) {
      word += c;
    } else {
      flush();
      no_articles += c;
    }
  }
  flush();
  std::vector<std::string> words;
  for (const std::u32string& w : split_whitespace(no_articles)) words.push_back(encode_utf8(w));
  return join(words, " ");
}

std::string normalize_zh_answer(const std::string& s) {
  std::u32string out;
  for (char32_t c : decode_utf8(s)) {
    c = ascii_lower(c);
    if (is_ascii_punct(c) || zh_punctuation().find(c) != std::u32string::npos || is_space(c)) continue;
    out += c;
  }
  return encode_utf8(out);
}

std::vector<std::string> segment_zh(const std::string& s) {
  std::vector<std::string> tokens;
  std::u32string run;
  for (char32_t c : decode_utf8(s)) {
    if (is_ascii_alnum(c)) {
      run += c;
      continue;
    }
    if (!run.empty()) tokens.push_back(encode_utf8(run));
    run.clear();
    tokens.push_back(encode_utf8(std::u32string(1, c)));
  }
  if (!run.empty()) tokens.push_back(encode_utf8(run));
  return tokens;
}

double qa_f1_score(const std::string& prediction, const std::string& truth) {
  return f1_of_tokens(words_of(normalize_answer(prediction)), words_of(normalize_answer(truth)));
}

double qa_f1_zh_score(const std::string& prediction, const std::string& truth) {
  auto tokens = [](const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& t : segment_zh(text)) {
      std::string n = normalize_zh_answer(t);
      if (!n.empty()) out.push_back(n);
    }
    return out;
  };
  return f1_of_tokens(tokens(prediction), tokens(truth));
}

double rouge_score(const std::string& prediction, const std::string& truth) {
  return rouge_l(rouge_sentences(prediction), rouge_sentences(truth));
}

double rouge_zh_score(const std::string& prediction, const std::string& truth) {
  return rouge_score(join(segment_zh(prediction), " "), join(segment_zh(truth), " "));
}

double classification_score(const std::string& prediction, const std::string& truth,
                            const std::vector<std::string>& all_classes) {
  std::vector<std::string> matched;
  for (const std::string& c : all_classes)
    if (prediction.find(c) != std::string::npos) matched.push_back(c);
  // Python's `for term in list: list.remove(term)` advances its index past the element that slid
  // into the removed one's place; this loop does the same.
  for (size_t i = 0; i < matched.size(); ++i) {
    const std::string term = matched[i];
    if (truth.find(term) != std::string::npos && term != truth)
      matched.erase(std::find(matched.begin(), matched.end(), term));
  }
  if (std::find(matched.begin(), matched.end(), truth) == matched.end()) return 0.0;
  return 1.0 / matched.size();
}

double retrieval_score(const std::string& prediction, const std::string& truth) {
  return share_equal_to(find_numbers(prediction), paragraph_number(truth, "Paragraph "));
}

double retrieval_zh_score(const std::string& prediction, const std::string& truth) {
  return share_equal_to(find_numbers(prediction), paragraph_number(truth, "段落"));
}

double count_score(const std::string& prediction, const std::string& truth) {
  return share_equal_to(find_numbers(prediction), truth);
}

double levenshtein_ratio(const std::string& a, const std::string& b) {
  const std::u32string x = decode_utf8(a), y = decode_utf8(b);
  const size_t total = x.size() + y.size();
  if (total == 0) return 1.0;
  return 2.0 * lcs_length(x, y) / total;
}

double code_sim_score(const std::string& prediction, const std::string& truth) {
  const size_t start = prediction.find_first_not_of('\n');
  std::string line;
  for (const std::string& l : split_on(start == std::string::npos ? "" : prediction.substr(start), '\n')) {
    if (l.find('`') == std::string::npos && l.find('#') == std::string::npos && l.find("//") == std::string::npos) {
      line = l;
      break;
    }
  }
  // fuzz.ratio: equal strings score 100 (even two empty ones), one empty string 0.
  if (line == truth) return 1.0;
  if (line.empty() || truth.empty()) return 0.0;
  return std::nearbyint(100.0 * levenshtein_ratio(line, truth)) / 100.0;  // round half to even
}

MetricFn metric_by_name(const std::string& name) {
  using Classes = const std::vector<std::string>&;
  static const std::map<std::string, MetricFn> metrics = {
      {"qa_f1", [](const std::string& p, const std::string& t, Classes) { return qa_f1_score(p, t); }},
      {"qa_f1_zh", [](const std::string& p, const std::string& t, Classes) { return qa_f1_zh_score(p, t); }},
      {"rouge", [](const std::string& p, const std::string& t, Classes) { return rouge_score(p, t); }},
      {"rouge_zh", [](const std::string& p, const std::string& t, Classes) { return rouge_zh_score(p, t); }},
      {"classification", [](const std::string& p, const std::string& t, Classes c) {
         return classification_score(p, t, c);
       }},
      {"retrieval", [](const std::string& p, const std::string& t, Classes) { return retrieval_score(p, t); }},
      {"retrieval_zh", [](const std::string& p, const std::string& t, Classes) { return retrieval_zh_score(p, t); }},
      {"count", [](const std::string& p, const std::string& t, Classes) { return count_score(p, t); }},
      {"code_sim", [](const std::string& p, const std::string& t, Classes) { return code_sim_score(p, t); }},
  };
  auto it = metrics.find(name);
  RW_USER_CHECK(it != metrics.end(), "unknown LongBench metric '%s'", name.c_str());
  return it->second;
}

}  // namespace rw::longbench
