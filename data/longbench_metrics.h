// The LongBench scores, one function per metric of the reference harness's eval.py
// (https://github.com/THUDM/LongBench, LongBench/metrics.py). Each takes one prediction and one
// ground-truth answer and returns a score in [0, 1]; scoring a record takes the best over its answers.
//
// Text is UTF-8 and compared by Unicode code point, as Python compares str. Two documented
// departures from the reference:
//   - Chinese word segmentation: the reference cuts Chinese text with jieba (a dictionary and HMM
//     segmenter); here every Han character (any non-ASCII code point) is its own token and a run of
//     ASCII letters and digits is one token. Scores of qa_f1_zh and rouge_zh can therefore differ
//     from the reference's when jieba would join characters into words.
//   - Lower-casing and the word boundaries of English normalisation are ASCII-only.
#pragma once
#include <string>
#include <vector>

namespace rw::longbench {

// SQuAD-style answer normalisation: lower case, drop ASCII punctuation, drop the articles
// a/an/the, collapse whitespace.
std::string normalize_answer(const std::string& s);
// Chinese normalisation: lower case, drop ASCII and Chinese punctuation, drop all whitespace.
std::string normalize_zh_answer(const std::string& s);
// The segmentation standing in for jieba (see above): tokens in order, whitespace kept as tokens
// the way jieba keeps it (one token per whitespace character).
std::vector<std::string> segment_zh(const std::string& s);

// Token-multiset F1 of normalized words.
double qa_f1_score(const std::string& prediction, const std::string& truth);
// The same over segment_zh tokens, each normalized, empty ones dropped.
double qa_f1_zh_score(const std::string& prediction, const std::string& truth);
// ROUGE-L F of the `rouge` package (summary level over '.'-separated sentences, distinct words);
// 0 when either side has no sentence, where the package raises.
double rouge_score(const std::string& prediction, const std::string& truth);
// rouge_score over segment_zh tokens joined by spaces.
double rouge_zh_score(const std::string& prediction, const std::string& truth);
// Share of the matched class names that is the truth (the reference's quirk of skipping the entry
// after one it removes while iterating is kept, so scores agree).
double classification_score(const std::string& prediction, const std::string& truth,
                            const std::vector<std::string>& all_classes);
// Share of the numbers in the prediction that equal the paragraph number in `truth`
// ("Paragraph 12", or "段落12" for the Chinese variant). UserError when truth has none.
double retrieval_score(const std::string& prediction, const std::string& truth);
double retrieval_zh_score(const std::string& prediction, const std::string& truth);
// Share of the numbers in the prediction equal to truth.
double count_score(const std::string& prediction, const std::string& truth);
// fuzzywuzzy fuzz.ratio / 100 (python-Levenshtein semantics: round(100 * 2 * LCS-by-indel /
// total length), half to even) between the prediction's first line that is not a comment or code
// fence and the truth.
double code_sim_score(const std::string& prediction, const std::string& truth);
// Levenshtein.ratio: (len(a) + len(b) - indel distance) / (len(a) + len(b)) over code points.
double levenshtein_ratio(const std::string& a, const std::string& b);

// A metric by its name in data/longbench/config.json ("qa_f1", "rouge_zh", ...); UserError for an
// unknown name. all_classes is used by classification only.
using MetricFn = double (*)(const std::string& prediction, const std::string& truth,
                            const std::vector<std::string>& all_classes);
MetricFn metric_by_name(const std::string& name);

}  // namespace rw::longbench
