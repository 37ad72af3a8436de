// End to end through the binary, the workflow of the README's LongBench section: a small model
// trained on passkey probes (`make-probes --format train`, `tokenizer train`, `prepare`, `train`)
// retrieves the pass keys of held-out probes (another seed) through `ringwise eval`, far above the
// 1e-5 chance of guessing a 5-digit key.
//
// The probes are short (8-16 filler words: 68-94 BPE tokens with the header, question and answer)
// so a whole prompt fits the model's context and eval cuts nothing. The BPE vocabulary learned on
// the training text makes the template's words single tokens and stops (at 369 ids) just before
// merging digits, so every key is " " and five digit tokens wherever it occurs. Copying it takes
// an induction head matching " key is"; 2 layers formed one after 600-1200 steps and retrieved
// 70-73% of the held-out keys at step 2000 for seeds 1337, 7 and 11. On bytes the prompts are
// four times longer, and 300 such steps learned the format but no copying: one constant key for
// every probe, score 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/ringwise_binary.h"
#include "tests/test_support.h"

namespace rw::test {
namespace {

using nlohmann::json;

class PasskeyEval : public TempDirTest {
 protected:
  // Whether a BPE file (data/bpe_tokenizer.h: merge i makes id 257 + i) joins a digit to anything.
  static bool merges_a_digit(const std::string& file) {
    std::ifstream in(file);
    const json merges = json::parse(in)["merges"];
    std::vector<bool> has_digit(257, false);
    for (int b = '0'; b <= '9'; ++b) has_digit[b] = true;
    for (const json& m : merges) has_digit.push_back(has_digit[m[0].get<int>()] || has_digit[m[1].get<int>()]);
    return std::find(has_digit.begin() + 257, has_digit.end(), true) != has_digit.end();
  }

  // Runs `ringwise args...`, failing the test (with its stderr) on a non-zero exit.
  void ringwise(const std::vector<std::string>& args, RunResult* result = nullptr) {
    const RunResult r = run_ringwise(args, path("stderr.txt"));
    ASSERT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    if (result != nullptr) *result = r;
  }
};

TEST_F(PasskeyEval, TrainedModelRetrievesHeldOutKeys) {
  const std::string lengths = "8,12,16", depths = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1";
  ASSERT_NO_FATAL_FAILURE(ringwise({"make-probes", "--kind", "passkey", "--lengths", lengths, "--depths", depths,
                                    "--per-cell", "100", "--seed", "1", "--format", "train", "--output", path("train")}));
  const std::string train_docs = path("train/passkey.train.jsonl"), bpe = "bpe:" + path("bpe.json");
  {  // The documents as plain text for the tokenizer (the README uses jq -r .text).
    std::ifstream in(train_docs);
    std::ofstream out(path("train.txt"));
    for (std::string line; std::getline(in, line);) out << json::parse(line)["text"].get<std::string>() << "\n";
  }
  ASSERT_NO_FATAL_FAILURE(
      ringwise({"tokenizer", "train", "--input", path("train.txt"), "--vocab-size", "369", "--output", path("bpe.json")}));
  ASSERT_FALSE(merges_a_digit(path("bpe.json"))) << "the vocabulary is meant to keep digits apart";
  ASSERT_NO_FATAL_FAILURE(ringwise({"prepare", "--input", train_docs, "--tokenizer", bpe, "--val-fraction", "0",
                                    "--output", path("train.h5")}));
  ASSERT_NO_FATAL_FAILURE(ringwise({"train", "--data", path("train.h5"), "--vocab-size", "369", "--d-model", "64",
                                    "--layers", "2", "--heads", "4", "--kv-heads", "4", "--ffn-dim", "64",
                                    "--max-seq", "104", "--seq-len", "104", "--batch-size", "8", "--steps", "2000",
                                    "--lr", "3e-3", "--min-lr", "3e-4", "--warmup-steps", "20", "--log-every",
                                    "500", "--threads", "1", "--run-dir", path("run")}));
  ASSERT_NO_FATAL_FAILURE(ringwise({"make-probes", "--kind", "passkey", "--lengths", lengths, "--depths",
                                    "0,0.25,0.5,0.75,1", "--per-cell", "2", "--seed", "2", "--output", path("eval")}));
  RunResult eval;
  ASSERT_NO_FATAL_FAILURE(ringwise({"eval", "--benchmark", "longbench", "--data-dir", path("eval"), "--checkpoint",
                                    path("run/checkpoints/step_00002000.h5"), "--tokenizer", bpe, "--output",
                                    path("pred"), "--model-name", "m"},
                                   &eval));
  EXPECT_EQ(eval.err.find("cut in the middle"), std::string::npos) << eval.err;  // whole prompts, as trained

  // Exact retrievals counted here from the predictions, independently of the scorer: the
  // generation must stop right after the key (the end-of-document token the training text ends with).
  std::ifstream preds(path("pred/m/passkey.jsonl"));
  int records = 0, exact = 0;
  for (std::string line; std::getline(preds, line); ++records) {
    const json p = json::parse(line);
    exact += p["pred"].get<std::string>() == " " + p["answers"][0].get<std::string>();
  }
  ASSERT_EQ(records, 30);  // at least 9 must be exact: 30%, against 30 * 1e-5 expected from guessing
  std::ifstream result_file(path("pred/m/result.json"));
  const double score = json::parse(result_file)["passkey"].get<double>();
  // The count metric gives an exact retrieval 1, so the score is at least their share (which
  // result.json rounds to 2 decimals).
  EXPECT_GE(score, 100.0 * exact / records - 0.005);
  EXPECT_GE(exact, 9) << "exact retrievals of 30 held-out keys; score " << score;
  std::printf("passkey: %d of %d held-out keys retrieved exactly, score %.2f\n", exact, records, score);
}

// Eval cuts prompts longer than the model's context in the middle, as pred.py does, which takes a
// probe's needle away; it says so rather than only scoring zero.
TEST_F(PasskeyEval, EvalSaysWhenPromptsAreCut) {
  ASSERT_NO_FATAL_FAILURE(
      ringwise({"train", "--preset", "tiny", "--steps", "1", "--threads", "1", "--run-dir", path("run")}));
  ASSERT_NO_FATAL_FAILURE(ringwise({"make-probes", "--kind", "passkey", "--lengths", "10", "--depths", "0,1",
                                    "--output", path("eval")}));
  RunResult eval;
  ASSERT_NO_FATAL_FAILURE(ringwise({"eval", "--benchmark", "longbench", "--data-dir", path("eval"), "--checkpoint",
                                    path("run/checkpoints/step_00000001.h5"), "--output", path("pred")},
                                   &eval));
  // The tiny model's max_seq 64 less passkey's 8 generated tokens; the prompts are ~230 bytes.
  EXPECT_NE(eval.err.find("2 of 2 passkey prompts were longer than 56 tokens and were cut in the middle"),
            std::string::npos)
      << eval.err;
}

}  // namespace
}  // namespace rw::test
