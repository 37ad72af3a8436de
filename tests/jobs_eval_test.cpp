// `ringwise eval --benchmark longbench` end to end through the binary: scoring prediction files
// into result.json (numbers computed by hand), generation with a small checkpoint, and the errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/ringwise_binary.h"
#include "tests/test_support.h"

namespace rw::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class EvalCommand : public TempDirTest {
 protected:
  RunResult eval(std::vector<std::string> args) {
    args.insert(args.begin(), "eval");
    return run_ringwise(args, path("stderr.txt"));
  }
  json read_json(const std::string& file) {
    std::ifstream in(file);
    return json::parse(in);
  }
  void write(const std::string& file, const std::vector<json>& lines) {
    std::ofstream out(file);
    for (const json& j : lines) out << j.dump() << "\n";
  }
  std::string make_checkpoint() {
    const RunResult r = run_ringwise({"train", "--preset", "tiny", "--steps", "1", "--run-dir", path("run")},
                                     path("train_err.txt"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path("run/checkpoints/step_00000001.h5");
  }
};

TEST_F(EvalCommand, ScoresPredictionFilesLikeTheReference) {
  fs::create_directories(path("pred/m"));
  // hotpotqa (qa_f1): 1, 0.8 (best of two answers), 0 -> 60.0. trec (classification, first line):
  // 1 and 1/2 -> 75.0. passage_count: 1/2 -> 50.0.
  write(path("pred/m/hotpotqa.jsonl"),
        {{{"pred", "Paris"}, {"answers", {"paris"}}, {"all_classes", nullptr}, {"length", 10}},
         {{"pred", "the cat sat"}, {"answers", {"dog", "a cat sat down"}}, {"all_classes", nullptr}, {"length", 10}},
         {{"pred", "x"}, {"answers", {"y"}}, {"all_classes", nullptr}, {"length", 10}}});
  write(path("pred/m/trec.jsonl"),
        {{{"pred", "\nLocation\nPerson"}, {"answers", {"Location"}}, {"all_classes", {"Location", "Person"}}, {"length", 1}},
         {{"pred", "Person or Location"}, {"answers", {"Person"}}, {"all_classes", {"Location", "Person"}}, {"length", 1}}});
  write(path("pred/m/passage_count.jsonl"), {{{"pred", "3 or 4"}, {"answers", {"3"}}, {"all_classes", nullptr}, {"length", 1}}});
  const RunResult r = eval({"--benchmark", "longbench", "--score-only", "--datasets", "hotpotqa,trec,passage_count",
                            "--output", path("pred"), "--model-name", "m"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json result = read_json(path("pred/m/result.json"));
  EXPECT_DOUBLE_EQ(result["hotpotqa"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(result["trec"].get<double>(), 75.0);
  EXPECT_DOUBLE_EQ(result["passage_count"].get<double>(), 50.0);
  EXPECT_NE(r.out.find("hotpotqa"), std::string::npos) << r.out;
}

TEST_F(EvalCommand, LongBenchEScoresByLength) {
  fs::create_directories(path("pred_e/m"));
  write(path("pred_e/m/hotpotqa.jsonl"),
        {{{"pred", "x"}, {"answers", {"x"}}, {"all_classes", nullptr}, {"length", 100}},
         {{"pred", "x"}, {"answers", {"y"}}, {"all_classes", nullptr}, {"length", 5000}},
         {{"pred", "x"}, {"answers", {"x"}}, {"all_classes", nullptr}, {"length", 5001}}});
  const RunResult r = eval({"--benchmark", "longbench", "--e", "--score-only", "--datasets", "hotpotqa", "--output",
                            path("pred_e"), "--model-name", "m"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json result = read_json(path("pred_e/m/result.json"));
  EXPECT_DOUBLE_EQ(result["hotpotqa"]["0-4k"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(result["hotpotqa"]["4-8k"].get<double>(), 50.0);
  EXPECT_TRUE(result["hotpotqa"]["8k+"].is_null());  // no record: numpy's NaN
}

TEST_F(EvalCommand, GeneratesPredictionsWithACheckpoint) {
  const std::string ckpt = make_checkpoint();
  fs::create_directories(path("data"));
  write(path("data/hotpotqa.jsonl"),
        {{{"input", "Q?"}, {"context", std::string(200, 'c')}, {"answers", {"a"}}, {"length", 9}, {"all_classes", nullptr}},
         {{"input", "R?"}, {"context", "short"}, {"answers", {"b"}}, {"length", 9000}, {"all_classes", nullptr}}});
  const std::vector<std::string> args = {"--benchmark", "longbench", "--data-dir", path("data"), "--checkpoint", ckpt,
                                         "--output", path("pred"), "--model-name", "tiny"};
  RunResult r = eval(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(path("pred/tiny/hotpotqa.jsonl"));
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const json j = json::parse(line);
    EXPECT_TRUE(j["pred"].is_string());
    EXPECT_LE(j["pred"].get<std::string>().size(), 32u * 3);  // at most max_new_tokens bytes (UTF-8 replaced)
  }
  EXPECT_EQ(lines, 2);
  EXPECT_TRUE(read_json(path("pred/tiny/result.json")).contains("hotpotqa"));

  // An existing prediction file is kept unless --force.
  r = eval(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("exists"), std::string::npos) << r.err;
}

TEST_F(EvalCommand, ScoresProbesMadeByMakeProbes) {
  const std::string ckpt = make_checkpoint();
  RunResult r = run_ringwise({"make-probes", "--kind", "passkey", "--lengths", "10", "--depths", "0,1", "--output",
                              path("probes")},
                             path("probes_err.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = eval({"--benchmark", "longbench", "--data-dir", path("probes"), "--checkpoint", ckpt, "--output", path("pred"),
            "--model-name", "tiny"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json result = read_json(path("pred/tiny/result.json"));
  ASSERT_TRUE(result.contains("passkey")) << result.dump();
  EXPECT_GE(result["passkey"].get<double>(), 0.0);
}

TEST_F(EvalCommand, GenerateIsDeterministic) {
  const std::string ckpt = make_checkpoint();
  const std::vector<std::string> greedy = {"generate", "--checkpoint", ckpt, "--prompt", "Hello", "--max-new-tokens", "8"};
  const RunResult a = run_ringwise(greedy, path("g_err.txt")), b = run_ringwise(greedy, path("g_err.txt"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  std::vector<std::string> sampled = greedy;
  sampled.insert(sampled.end(), {"--temperature", "0.8", "--top-p", "0.9", "--seed", "3"});
  const RunResult c = run_ringwise(sampled, path("g_err.txt")), d = run_ringwise(sampled, path("g_err.txt"));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, d.out);
  const RunResult bad = run_ringwise({"generate", "--checkpoint", ckpt, "--prompt", "x", "--top-p", "2"}, path("g_err.txt"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--top-p must be in (0, 1]"), std::string::npos) << bad.err;
}

TEST_F(EvalCommand, ClearErrors) {
  auto err = [&](const std::vector<std::string>& args) {
    const RunResult r = eval(args);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    return r.err;
  };
  EXPECT_NE(err({"--data-dir", "x"}).find("--benchmark is required"), std::string::npos);
  EXPECT_NE(err({"--benchmark", "mmlu"}).find("unknown --benchmark 'mmlu'"), std::string::npos);
  EXPECT_NE(err({"--benchmark", "longbench", "--score-only", "--datasets", "nosuch", "--model-name", "m"})
                .find("unknown LongBench dataset 'nosuch'"),
            std::string::npos);
  fs::create_directories(path("empty"));
  EXPECT_NE(err({"--benchmark", "longbench", "--data-dir", path("empty"), "--checkpoint", "c.h5"}).find("holds no"),
            std::string::npos);
  EXPECT_NE(err({"--benchmark", "longbench", "--data-dir", path("empty")}).find("--checkpoint is required"),
            std::string::npos);
}

}  // namespace
}  // namespace rw::test
