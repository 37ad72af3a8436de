// The LongBench metrics against hand-computed cases (the arithmetic is in the comments), including
// the reference harness's quirks and Chinese text.
#include <gtest/gtest.h>

#include "core/check.h"
#include "data/longbench_metrics.h"

namespace rw::longbench {
namespace {

TEST(LongBenchNormalize, EnglishDropsCasePunctuationArticlesAndSpaces) {
  EXPECT_EQ(normalize_answer("The Quick, brown fox!"), "quick brown fox");
  EXPECT_EQ(normalize_answer("An apple a day"), "apple day");
  EXPECT_EQ(normalize_answer("anthem theory"), "anthem theory");  // articles only as whole words
  EXPECT_EQ(normalize_answer("  Hello\t\n World  "), "hello world");
  EXPECT_EQ(normalize_answer("the-end"), "theend");  // punctuation goes before articles are found
  EXPECT_EQ(normalize_answer("THE"), "");
}

TEST(LongBenchNormalize, ChineseDropsPunctuationAndAllWhitespace) {
  EXPECT_EQ(normalize_zh_answer("北京， 大学。"), "北京大学");
  EXPECT_EQ(normalize_zh_answer("《GPT》 Model!"), "《gptmodel");  // 》 is in the list, 《 is not
}

TEST(LongBenchSegment, HanCharactersAloneAsciiRunsTogether) {
  EXPECT_EQ(segment_zh("GPT4模型 好"), (std::vector<std::string>{"GPT4", "模", "型", " ", "好"}));
}

TEST(LongBenchQaF1, EnglishTokenOverlap) {
  // pred {cat, sat}, truth {cat, sat, down}: precision 1, recall 2/3, F1 0.8.
  EXPECT_NEAR(qa_f1_score("The cat sat.", "a cat sat down"), 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(qa_f1_score("Paris", "paris"), 1.0);
  EXPECT_DOUBLE_EQ(qa_f1_score("", "paris"), 0.0);
  EXPECT_DOUBLE_EQ(qa_f1_score("the", "a"), 0.0);  // both normalise to nothing: no common token
  // Repeated words count as a multiset: pred {a1 x2}, truth {x1}: precision 1/2, recall 1.
  EXPECT_NEAR(qa_f1_score("x x", "x"), 2.0 / 3.0, 1e-12);
}

TEST(LongBenchQaF1, ChineseCharacterTokens) {
  // pred {北 京 大 学}, truth {北 京}: precision 1/2, recall 1, F1 2/3.
  EXPECT_NEAR(qa_f1_zh_score("北京大学", "北京"), 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(qa_f1_zh_score("北京。", "北京"), 1.0);  // punctuation tokens vanish
  EXPECT_DOUBLE_EQ(qa_f1_zh_score("GPT4", "gpt4"), 1.0);
  EXPECT_DOUBLE_EQ(qa_f1_zh_score("上海", "北京"), 0.0);
}

TEST(LongBenchRouge, SentenceLevelLcs) {
  // distinct words: ref {the cat is on mat} 5, hyp {the cat sat on mat} 5; LCS words
  // {the cat on mat} 4: P = R = 0.8.
  EXPECT_NEAR(rouge_score("the cat sat on the mat", "the cat is on the mat"), 2 * 0.64 / (1.6 + 1e-8), 1e-12);
  EXPECT_DOUBLE_EQ(rouge_score("", "abc"), 0.0);
  EXPECT_DOUBLE_EQ(rouge_score("...", "abc"), 0.0);  // no sentence: the package raises, scored 0
}

TEST(LongBenchRouge, SummaryLevelUnionOverSentences) {
  // hyp sentences "a b", "c d"; ref "a c", "b d". Each ref sentence's LCS with each hyp sentence
  // adds one word: union {a b c d} = 4 of 4 distinct words on each side, although no sentence
  // pair shares more than one word.
  EXPECT_NEAR(rouge_score("a b. c d", "a c. b d"), 2 * 1.0 / (2 + 1e-8), 1e-12);
}

TEST(LongBenchRouge, ChineseByCharacter) {
  // {我 爱 北 京} vs {我 爱 上 海}: LCS {我 爱}, P = R = 1/2.
  EXPECT_NEAR(rouge_zh_score("我爱北京", "我爱上海"), 2 * 0.25 / (1 + 1e-8), 1e-12);
}

TEST(LongBenchClassification, SharesCreditAmongMatchedClasses) {
  const std::vector<std::string> classes = {"Location", "Person", "Entity"};
  EXPECT_DOUBLE_EQ(classification_score("Location", "Location", classes), 1.0);
  EXPECT_DOUBLE_EQ(classification_score("Location or Person", "Person", classes), 0.5);
  EXPECT_DOUBLE_EQ(classification_score("Entity", "Person", classes), 0.0);
}

TEST(LongBenchClassification, KeepsTheReferenceRemoveWhileIteratingQuirk) {
  // matched [a, ab, abc]; "a" is inside the truth and removed, "ab" slides into its slot and is
  // skipped, so [ab, abc] remain and the score is 1/2 (1 without the quirk).
  EXPECT_DOUBLE_EQ(classification_score("abc", "abc", {"a", "ab", "abc"}), 0.5);
}

TEST(LongBenchRetrieval, ShareOfNumbersNamingTheParagraph) {
  EXPECT_DOUBLE_EQ(retrieval_score("Paragraph 3", "Paragraph 3"), 1.0);
  EXPECT_DOUBLE_EQ(retrieval_score("Paragraph 3, or Paragraph 5", "Paragraph 3"), 0.5);
  EXPECT_DOUBLE_EQ(retrieval_score("I do not know", "Paragraph 3"), 0.0);
  EXPECT_DOUBLE_EQ(retrieval_score("Paragraph 13", "Paragraph 3"), 0.0);
  EXPECT_DOUBLE_EQ(retrieval_zh_score("答案是段落12", "段落12"), 1.0);
  EXPECT_THROW(retrieval_score("1", "no paragraph"), UserError);
}

TEST(LongBenchCount, ShareOfNumbersEqualToTheCount) {
  EXPECT_DOUBLE_EQ(count_score("There are 13 unique, not 12", "13"), 0.5);
  EXPECT_DOUBLE_EQ(count_score("013", "13"), 0.0);  // compared as strings, like the reference
  EXPECT_DOUBLE_EQ(count_score("none", "13"), 0.0);
}

TEST(LongBenchCodeSim, LevenshteinRatio) {
  // LCS("kitten", "sitting") = "ittn": 2 * 4 / 13.
  EXPECT_NEAR(levenshtein_ratio("kitten", "sitting"), 8.0 / 13.0, 1e-12);
  EXPECT_NEAR(levenshtein_ratio("北京大学", "北京"), 4.0 / 6.0, 1e-12);  // code points, not bytes
}

TEST(LongBenchCodeSim, FirstCodeLineRoundedLikeFuzzRatio) {
  // Comment line skipped; 16 vs 16 characters sharing 15: 100 * 30/32 = 93.75 -> 94.
  EXPECT_DOUBLE_EQ(code_sim_score("\n# add one\n    return x + 1\nfoo", "    return x + 2"), 0.94);
  // One shared character of 16: 12.5 rounds half to even, to 12 (Python's round).
  EXPECT_DOUBLE_EQ(code_sim_score("aXXXXXXX", "aYYYYYYY"), 0.12);
  EXPECT_DOUBLE_EQ(code_sim_score("```python\nx = 1", "x = 1"), 1.0);
  EXPECT_DOUBLE_EQ(code_sim_score("// only a comment", ""), 1.0);  // fuzz.ratio("", "") is 100
  EXPECT_DOUBLE_EQ(code_sim_score("// only a comment", "x"), 0.0);
}

TEST(LongBenchMetrics, ByName) {
  EXPECT_DOUBLE_EQ(metric_by_name("qa_f1")("Paris", "paris", {}), 1.0);
  EXPECT_DOUBLE_EQ(metric_by_name("classification")("Person", "Person", {"Person"}), 1.0);
  EXPECT_THROW(metric_by_name("bleu"), UserError);
}

}  // namespace
}  // namespace rw::longbench
