// LongBench's task table, records, prompt formatting, middle truncation and dataset scoring.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/check.h"
#include "data/longbench_metrics.h"
#include "data/longbench_scorer.h"
#include "data/longbench_tasks.h"
#include "data/tokenizer.h"
#include "test_support.h"

namespace rw::longbench {
namespace {

// Substitutes by plain search and replace: an independent check of format_prompt for the
// templates, which have no escaped braces.
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

TEST(LongBenchTasks, TableHasTheReferenceDatasets) {
  const TaskTable& table = builtin_task_table();
  EXPECT_EQ(table.tasks.size(), 24u);  // LongBench's 21 and the 3 synthetic probes
  int e = 0;
  for (const TaskSpec& t : table.tasks) e += t.longbench_e;
  EXPECT_EQ(e, 13);
  EXPECT_EQ(table.at("hotpotqa").max_new_tokens, 32);
  EXPECT_EQ(table.at("gov_report").max_new_tokens, 512);
  EXPECT_EQ(table.at("dureader").metric, "rouge_zh");
  EXPECT_TRUE(table.at("samsum").stop_at_newline);
  EXPECT_TRUE(table.at("lsht").first_line_only);
  EXPECT_THROW(table.at("nosuch"), UserError);
}

TEST(LongBenchTasks, EveryPromptFormats) {
  Record r;
  r.context = "<CONTEXT 文>";
  r.input = "<INPUT>";
  for (const TaskSpec& t : builtin_task_table().tasks) {
    SCOPED_TRACE(t.name);
    const std::string expected = replace_all(replace_all(t.prompt, "{context}", r.context), "{input}", r.input);
    EXPECT_EQ(format_prompt(t.prompt, r), expected);
    EXPECT_NE(expected.find(r.context), std::string::npos);
    EXPECT_EQ(expected.find('{'), std::string::npos);
    EXPECT_NO_THROW(metric_by_name(t.metric));
  }
  EXPECT_EQ(format_prompt(builtin_task_table().at("trec").prompt, r),
            "Please determine the type of the question below. Here are some examples of questions.\n\n<CONTEXT "
            "文>\n<INPUT>");
}

TEST(LongBenchTasks, FormatEscapesAndErrors) {
  Record r;
  r.context = "C";
  EXPECT_EQ(format_prompt("{{x}} {context}", r), "{x} C");
  EXPECT_THROW(format_prompt("{question}", r), UserError);
  EXPECT_THROW(format_prompt("a } b", r), UserError);
  EXPECT_THROW(format_prompt("a { b", r), UserError);
}

TEST(LongBenchTasks, TruncatesInTheMiddle) {
  const auto bytes = make_byte_tokenizer();
  EXPECT_EQ(truncate_middle("abcdefghij", *bytes, 4), "abij");
  EXPECT_EQ(truncate_middle("abcdefghij", *bytes, 5), "abij");  // int(5 / 2) from each end
  EXPECT_EQ(truncate_middle("abcdefghij", *bytes, 10), "abcdefghij");
  EXPECT_THROW(truncate_middle("abc", *bytes, 1), UserError);
}

class LongBenchFiles : public test::TempDirTest {};

TEST_F(LongBenchFiles, ReadsRecordsAndNamesBadLines) {
  const std::string file = path("passage_count.jsonl");
  std::ofstream(file) << R"({"input": "", "context": "P1 P2", "answers": [2], "length": 4100, "all_classes": null, "dataset": "passage_count", "language": "en", "_id": "x1"})"
                      << "\n\n"
                      << R"({"input": "q", "context": "c", "answers": ["a", "b"], "length": 3, "all_classes": ["a"]})"
                      << "\n";
  const std::vector<Record> records = read_records(file);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].answers, std::vector<std::string>{"2"});
  EXPECT_TRUE(records[0].all_classes.empty());
  EXPECT_EQ(records[0].length, 4100);
  EXPECT_EQ(records[0].id, "x1");
  EXPECT_EQ(records[1].answers, (std::vector<std::string>{"a", "b"}));

  std::ofstream(file, std::ios::app) << R"({"input": "q", "context": "c", "length": 3, "all_classes": null})" << "\n";
  try {
    read_records(file);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("passage_count.jsonl:4: missing field 'answers'"), std::string::npos)
        << e.what();
  }
}

TEST_F(LongBenchFiles, PredictionLinesRoundTrip) {
  Prediction p{"Paris\n\"x\"", {"Paris", "paris"}, {}, 123};
  const std::string file = path("p.jsonl");
  std::ofstream(file) << prediction_json_line(p) << "\n";
  const std::vector<Prediction> back = read_predictions(file);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].pred, p.pred);
  EXPECT_EQ(back[0].answers, p.answers);
  EXPECT_EQ(back[0].length, 123);
}

TEST(LongBenchScore, BestAnswerFirstLineAndRounding) {
  const TaskTable& table = builtin_task_table();
  // trec scores the first line only: "Location" alone gets 1, the whole text would share 1/2.
  const Prediction trec{"\nLocation\nPerson", {"Location"}, {"Location", "Person"}, 10};
  EXPECT_DOUBLE_EQ(score_prediction(table.at("trec"), trec), 1.0);
  // The best of several answers.
  const Prediction qa{"the cat sat", {"dog", "a cat sat down"}, {}, 10};
  EXPECT_NEAR(score_prediction(table.at("hotpotqa"), qa), 0.8, 1e-12);
  // Mean of 1, 0.8 and 0 is 0.6 -> 60.0; a third of a point -> 33.33.
  const Prediction miss{"x", {"y"}, {}, 10}, hit{"y", {"y"}, {}, 10};
  EXPECT_DOUBLE_EQ(score_dataset(table.at("hotpotqa"), {hit, qa, miss}), 60.0);
  EXPECT_DOUBLE_EQ(score_dataset(table.at("hotpotqa"), {hit, miss, miss}), 33.33);
  EXPECT_THROW(score_dataset(table.at("hotpotqa"), {}), UserError);
}

TEST(LongBenchScore, LengthBuckets) {
  const TaskSpec& task = builtin_task_table().at("hotpotqa");
  const Prediction a{"y", {"y"}, {}, 3999}, b{"x", {"y"}, {}, 4000}, c{"y", {"y"}, {}, 7999}, d{"y", {"y"}, {}, 8000};
  const LengthBucketScores s = score_dataset_by_length(task, {a, b, c});
  EXPECT_DOUBLE_EQ(s.upto_4k, 100.0);
  EXPECT_DOUBLE_EQ(s.upto_8k, 50.0);
  EXPECT_TRUE(std::isnan(s.over_8k));
  EXPECT_DOUBLE_EQ(score_dataset_by_length(task, {d}).over_8k, 100.0);
}

TEST(LongBenchScore, RoundsLikePython) {
  EXPECT_DOUBLE_EQ(round2(2.675), 2.67);  // the double below 2.675
  EXPECT_DOUBLE_EQ(round2(0.125), 0.12);  // exact tie, to even
  EXPECT_DOUBLE_EQ(round2(66.666666), 66.67);
}

}  // namespace
}  // namespace rw::longbench
