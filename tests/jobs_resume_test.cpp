// Resuming is invisible in the results: stopping at step 10 and resuming to step 20 gives the same
// losses and weights, bit for bit, as one run to step 20, both in process (Trainer + checkpoint
// files) and through the ringwise binary (its metrics.jsonl). A checkpoint of another model is
// refused with the first differing option named.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/hdf5_checkpoint.h"
#include "jobs/trainer.h"
#include "jobs/trainer_checkpoint.h"
#include "tests/ringwise_binary.h"

namespace rw {
namespace {

namespace fs = std::filesystem;
using test::run_ringwise;
using test::RunResult;

std::string corpus_text() {
  std::string text;
  for (int i = 0; i < 30; ++i) text += "sphinx of black quartz, judge my vow. how vexingly quick daft zebras jump!\n";
  return text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ResumeTest : public test::TempDirTest {
 protected:
  RunConfig tiny_run() const {
    RunConfig cfg = test::tiny_run_config();
    TrainConfig& t = cfg.train;
    t.seq_len = 32;
    t.batch_size = 2;
    t.grad_accum = 2;
    t.steps = 20;
    t.lr = 1e-2f;
    t.warmup_steps = 3;
    t.seed = 11;
    t.threads = 1;  // results do not depend on it, and one thread suffers least from a busy machine
    t.run_dir = path("run");
    return cfg;
  }

  std::unique_ptr<Trainer> new_trainer(const RunConfig& cfg) const {
    return std::make_unique<Trainer>(cfg, text_tokens_from_string(corpus_text(), "corpus"));
  }
};

std::vector<float> run_steps(Trainer& trainer, int n) {
  std::vector<float> losses;
  for (int i = 0; i < n; ++i) losses.push_back(trainer.step().loss);
  return losses;
}

std::vector<float> params_of(Trainer& trainer) {
  const float* p = trainer.model().param_buffer().data<float>();
  return std::vector<float>(p, p + trainer.model().params().total());
}

TEST_F(ResumeTest, StopAndResumeInProcessIsBitIdentical) {
  const RunConfig cfg = tiny_run();
  std::unique_ptr<Trainer> whole = new_trainer(cfg);
  const std::vector<float> expected = run_steps(*whole, 20);

  std::unique_ptr<Trainer> first = new_trainer(cfg);
  std::vector<float> losses = run_steps(*first, 10);
  const SavedCheckpoint saved = save_trainer_checkpoint(*first);
  EXPECT_EQ(saved.path, path("run/checkpoints/step_00000010.h5"));
  first.reset();  // nothing survives but the file

  std::unique_ptr<Trainer> second = new_trainer(cfg);
  resume_trainer(*second, saved.path);
  EXPECT_EQ(second->steps_done(), 10);
  EXPECT_EQ(second->optimizer().steps_taken(), 10);
  const std::vector<float> rest = run_steps(*second, 10);
  losses.insert(losses.end(), rest.begin(), rest.end());

  ASSERT_EQ(losses.size(), expected.size());
  EXPECT_EQ(0, std::memcmp(losses.data(), expected.data(), losses.size() * sizeof(float)));
  const std::vector<float> a = params_of(*whole), b = params_of(*second);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST_F(ResumeTest, TrainingOptionsMayChangeButTheModelMayNot) {
  RunConfig cfg = tiny_run();
  std::unique_ptr<Trainer> first = new_trainer(cfg);
  run_steps(*first, 2);
  const std::string ckpt = save_trainer_checkpoint(*first).path;

  RunConfig other_lr = cfg;
  other_lr.train.lr = 3e-3f;
  other_lr.train.steps = 40;
  std::unique_ptr<Trainer> ok = new_trainer(other_lr);
  resume_trainer(*ok, ckpt);
  EXPECT_EQ(ok->steps_done(), 2);

  RunConfig wider = cfg;
  wider.model.ffn_dim = 96;
  std::unique_ptr<Trainer> bad = new_trainer(wider);
  const std::vector<float> before = params_of(*bad);
  try {
    resume_trainer(*bad, ckpt);
    ADD_FAILURE() << "a checkpoint of another model was accepted";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(ckpt), std::string::npos) << msg;
    EXPECT_NE(msg.find("ffn-dim = 64"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ffn-dim = 96"), std::string::npos) << msg;
  }
  EXPECT_EQ(bad->steps_done(), 0);
  EXPECT_TRUE(params_of(*bad) == before);
}

// --- through the ringwise binary -----------------------------------------------------------------

// step -> loss text of a metrics.jsonl; the text is compared, and %.9g round-trips a float.
std::map<int, std::string> losses_by_step(const std::string& metrics) {
  std::map<int, std::string> losses;
  std::istringstream in(read_file(metrics));
  for (std::string line; std::getline(in, line);) {
    int step = 0;
    char loss[64] = {0};
    if (std::sscanf(line.c_str(), "{\"step\":%d,\"loss\":%63[^,]", &step, loss) == 2) losses[step] = loss;
  }
  return losses;
}

TEST_F(ResumeTest, StopAndResumeThroughTheBinaryIsBitIdentical) {
  const std::string data = path("corpus.txt");
  std::ofstream(data) << corpus_text();
  const std::vector<std::string> common = {"train", "--preset", "tiny", "--data", data, "--steps", "20",
                                           "--seq-len", "32", "--batch-size", "4", "--threads", "1", "--lr", "0.01",
                                           "--warmup-steps", "3"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ringwise(args, path("stderr.txt"));
  };

  // The whole run, keeping its checkpoint of step 10.
  RunResult whole = with({"--run-dir", path("whole"), "--save-every", "10", "--keep-last", "0"});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_NE(whole.out.find("saved checkpoint " + path("whole/checkpoints/step_00000010.h5")), std::string::npos);
  const std::map<int, std::string> expected = losses_by_step(path("whole/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 20u);

  // A run that stopped at step 10: its checkpoint directory holds only that step. --resume auto
  // finds it, trains to 20 and keeps only the newest checkpoint.
  fs::create_directories(path("resumed/checkpoints"));
  fs::copy_file(path("whole/checkpoints/step_00000010.h5"), path("resumed/checkpoints/step_00000010.h5"));
  RunResult resumed = with({"--run-dir", path("resumed"), "--resume", "auto", "--keep-last", "1"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resumed  from " + path("resumed/checkpoints/step_00000010.h5") + " at step 10"),
            std::string::npos)
      << resumed.out;
  const std::map<int, std::string> after = losses_by_step(path("resumed/metrics.jsonl"));
  ASSERT_EQ(after.size(), 10u);
  for (const auto& [step, loss] : after) {
    ASSERT_TRUE(expected.count(step)) << "step " << step;
    EXPECT_EQ(loss, expected.at(step)) << "step " << step;
  }
  EXPECT_EQ(resumed.err.find("warning"), std::string::npos) << resumed.err;

  // Another seed may resume (to skip past bad data, say), but the user is told the run no longer
  // continues the original one.
  RunResult reseeded = with({"--run-dir", path("reseeded"), "--resume", path("whole/checkpoints/step_00000010.h5"),
                             "--seed", "7"});
  ASSERT_EQ(reseeded.exit_code, 0) << reseeded.err;
  EXPECT_NE(reseeded.err.find("warning: " + path("whole/checkpoints/step_00000010.h5") +
                              " was trained with --seed 1337, this run uses --seed 7"),
            std::string::npos)
      << reseeded.err;

  const std::vector<CheckpointEntry> left = list_checkpoints(path("resumed/checkpoints"));
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].step, 20);

  // Another model cannot resume from it; the run directory is left as it was.
  RunResult mismatch = with({"--run-dir", path("other"), "--resume", path("whole/checkpoints/step_00000010.h5"),
                             "--d-model", "64"});
  EXPECT_EQ(mismatch.exit_code, 2);
  EXPECT_EQ(mismatch.err.rfind("ringwise: error: ", 0), 0u) << mismatch.err;
  EXPECT_NE(mismatch.err.find("d-model = 32"), std::string::npos) << mismatch.err;
  EXPECT_NE(mismatch.err.find("d-model = 64"), std::string::npos) << mismatch.err;
  EXPECT_FALSE(fs::exists(path("other")));
}

}  // namespace
}  // namespace rw
