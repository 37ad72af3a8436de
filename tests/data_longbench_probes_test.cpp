// The synthetic probes: the needle is where it was asked to be, the answer is what the context
// says, records round-trip through the LongBench reader and score like benchmark records.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/check.h"
#include "data/longbench_probes.h"
#include "data/longbench_scorer.h"
#include "test_support.h"

namespace rw::longbench {
namespace {

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

int words_of(const std::string& text) {
  std::istringstream in(text);
  int n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

TEST(LongBenchProbes, PasskeySitsAtTheDepth) {
  const std::vector<Record> records = make_probes({"passkey", {400}, {0.0, 0.25, 0.5, 1.0}, 2, 5});
  ASSERT_EQ(records.size(), 8u);
  const double depths[] = {0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 1.0, 1.0};
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    const std::string needle = "The pass key is " + r.answers[0] + ".";
    ASSERT_EQ(r.answers[0].size(), 5u);
    const size_t at = r.context.find(needle);
    ASSERT_NE(at, std::string::npos) << r.context;
    // Where the needle starts, as a share of the filler before and after it.
    const double where = static_cast<double>(at) / (r.context.size() - needle.size());
    EXPECT_NEAR(where, depths[i], 0.03) << i;
    EXPECT_NEAR(words_of(r.context), 400 + 11, 4);  // the filler plus the needle's 11 words
    EXPECT_EQ(r.length, 400);
  }
  EXPECT_NE(records[0].answers, records[1].answers);  // copies draw their own keys
}

TEST(LongBenchProbes, KeyValueAnswerIsTheKeysValue) {
  for (const Record& r : make_probes({"kv_retrieval", {100}, {0.0, 0.5, 1.0}, 1, 1})) {
    const std::string key = r.input.substr(std::string("What is the value of key ").size(), 8);
    EXPECT_EQ(count_of(r.context, key + ": " + r.answers[0] + "\n"), 1) << r.input;
  }
}

TEST(LongBenchProbes, CountingAnswerIsTheNumberOfMarkers) {
  for (const Record& r : make_probes({"counting", {400}, {0.0}, 5, 3}))
    EXPECT_EQ(std::to_string(count_of(r.context, "I ate an apple.")), r.answers[0]);
}

TEST(LongBenchProbes, DeterministicInTheSeed) {
  const ProbeOptions o{"passkey", {50, 80}, {0.5}, 2, 9};
  const std::vector<Record> a = make_probes(o), b = make_probes(o);
  ProbeOptions other = o;
  other.seed = 10;
  ASSERT_EQ(a.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].context, b[i].context);
  EXPECT_NE(make_probes(other)[0].answers, a[0].answers);
}

TEST(LongBenchProbes, BadOptions) {
  EXPECT_THROW(make_probes({"needle", {100}, {0.5}, 1, 0}), UserError);
  EXPECT_THROW(make_probes({"passkey", {100}, {1.5}, 1, 0}), UserError);
  EXPECT_THROW(make_probes({"passkey", {3}, {0.5}, 1, 0}), UserError);
  EXPECT_THROW(make_probes({"passkey", {}, {0.5}, 1, 0}), UserError);
}

// What eval feeds the model (the dataset's prompt with the record), then a space and the answer.
TEST(LongBenchProbes, TrainingTextIsTheEvalPromptThenTheAnswer) {
  for (const char* kind : {"passkey", "kv_retrieval", "counting"}) {
    const Record r = make_probes({kind, {20}, {0.5}, 1, 3})[0];
    const std::string text = training_text(r), prompt = format_prompt(builtin_task_table().at(kind).prompt, r);
    ASSERT_GT(text.size(), prompt.size()) << kind;
    EXPECT_EQ(text.substr(0, prompt.size()), prompt) << kind;
    EXPECT_EQ(text.substr(prompt.size()), " " + r.answers[0]) << kind;
  }
  const Record r = make_probes({"passkey", {20}, {0.5}, 1, 3})[0];
  const std::string end = "\n\nWhat is the pass key? The pass key is " + r.answers[0];
  EXPECT_EQ(training_text(r).substr(training_text(r).size() - end.size()), end);
  EXPECT_EQ(count_of(training_text(r), r.context), 1);
  EXPECT_EQ(training_json_line(r), nlohmann::json({{"text", training_text(r)}}).dump());
}

class LongBenchProbeFiles : public test::TempDirTest {};

TEST_F(LongBenchProbeFiles, RoundTripAndScore) {
  const std::vector<Record> records = make_probes({"passkey", {60}, {0.5}, 1, 2});
  const std::string file = path("passkey.jsonl");
  std::ofstream(file) << record_json_line(records[0]) << "\n";
  const std::vector<Record> back = read_records(file);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].context, records[0].context);
  EXPECT_EQ(back[0].answers, records[0].answers);
  const TaskSpec& task = builtin_task_table().at("passkey");
  EXPECT_NE(format_prompt(task.prompt, back[0]).find(back[0].context), std::string::npos);
  EXPECT_DOUBLE_EQ(score_prediction(task, {" " + back[0].answers[0] + ".", back[0].answers, {}, 60}), 1.0);
  EXPECT_DOUBLE_EQ(score_prediction(task, {" 1.", back[0].answers, {}, 60}), 0.0);
}

}  // namespace
}  // namespace rw::longbench
