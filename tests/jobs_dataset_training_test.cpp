// Training on an HDF5 token dataset: the vocabulary follows the dataset unless set (then it must
// match), and the validation loss is the mean forward loss of the same batches every time.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/batch_loader.h"
#include "data/dataset_writer.h"
#include "data/hdf5_tokens.h"
#include "jobs/trainer.h"
#include "tests/test_support.h"

namespace rw {
namespace {

namespace fs = std::filesystem;

class DatasetTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::temp_directory_path() / ("ringwise_dataset_training_" + test + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Paragraphs of varied text, one document each, the last fifth of the tokens for validation.
    std::string text;
    for (int i = 0; i < 120; ++i)
      text += "paragraph " + std::to_string(i) + ": the quick brown fox jumps over " + std::to_string(i * 37 % 101) +
              " lazy dogs.\n\n";
    std::ofstream(dir_ / "corpus.txt") << text;
    PrepareOptions o;
    o.inputs = {(dir_ / "corpus.txt").string()};
    o.output = dataset();
    o.split_blank_lines = true;
    o.val_fraction = 0.2;
    prepare_dataset(o, nullptr);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dataset() const { return (dir_ / "data.h5").string(); }

  // Runs the ringwise binary; returns its exit code, stdout and stderr in *out.
  int run(const std::string& args, std::string* out) const {
    const std::string log = (dir_ / "log.txt").string();
    const int status = std::system((std::string(RINGWISE_BINARY) + " " + args + " >" + log + " 2>&1").c_str());
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    *out = s.str();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path dir_;
};

RunConfig tiny_run() {
  RunConfig cfg = test::tiny_run_config();
  cfg.model.vocab_size = 257;  // byte tokens and the end-of-document token
  TrainConfig& t = cfg.train;
  t.seq_len = 16;
  t.batch_size = 2;
  t.steps = 5;
  t.lr = 1e-2f;
  t.seed = 7;
  t.threads = 2;
  t.val_every = 1;
  t.val_batches = 3;
  return cfg;
}

// The validation loss recomputed here from its definition: a freshly initialised model of the
// same seed, the mean of its forward losses over batches 0..K-1 of the validation split.
TEST_F(DatasetTrainingTest, ValidationLossIsTheMeanOverFixedBatches) {
  const RunConfig cfg = tiny_run();
  Trainer trainer(cfg, open_token_dataset(dataset(), TokenSplit::kTrain),
                  open_token_dataset(dataset(), TokenSplit::kVal));
  ASSERT_TRUE(trainer.has_validation());
  const float first = trainer.validation_loss();

  auto val = open_token_dataset(dataset(), TokenSplit::kVal);
  BatchLoader loader(*val, cfg.train.batch_size, cfg.train.seq_len, cfg.train.seed);
  LlamaModel model(cfg.model, cfg.train.attn_block_q, cfg.train.attn_block_k);
  model.init_weights(cfg.train.seed);
  std::vector<int32_t> in(cfg.train.batch_size * cfg.train.seq_len), tg(in.size());
  double sum = 0;
  for (int k = 0; k < cfg.train.val_batches; ++k) {
    loader.fill(k, 0, in.data(), tg.data());
    sum += model.forward(in.data(), tg.data(), cfg.train.batch_size, cfg.train.seq_len);
  }
  EXPECT_NEAR(first, sum / cfg.train.val_batches, 1e-6);
  EXPECT_NEAR(first, std::log(257.0), 0.1);  // an untrained model guesses uniformly

  EXPECT_EQ(trainer.validation_loss(), first);  // the same batches: bit for bit
  for (int i = 0; i < cfg.train.steps; ++i) trainer.step();
  const float later = trainer.validation_loss();
  EXPECT_NE(later, first);
  EXPECT_EQ(trainer.validation_loss(), later);
}

TEST_F(DatasetTrainingTest, CommandLineTakesTheDatasetsVocabularyAndWritesValLoss) {
  std::string out;
  const std::string base = "train --preset tiny --seq-len 16 --batch-size 2 --threads 2 --data " + dataset();
  ASSERT_EQ(run(base + " --print-config", &out), 0) << out;
  EXPECT_NE(out.find("vocab-size = 257"), std::string::npos) << out;

  ASSERT_EQ(run(base + " --vocab-size 256 --steps 1", &out), 2) << out;
  EXPECT_NE(out.find("256"), std::string::npos) << out;
  EXPECT_NE(out.find("257"), std::string::npos) << out;
  EXPECT_NE(out.find(dataset()), std::string::npos) << out;

  const std::string run_dir = (dir_ / "run").string();
  ASSERT_EQ(run(base + " --steps 4 --log-every 1 --val-every 2 --val-batches 2 --run-dir " + run_dir, &out), 0) << out;
  std::ifstream metrics(run_dir + "/metrics.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(metrics, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(lines[i].find("\"val_loss\":") != std::string::npos, (i + 1) % 2 == 0) << lines[i];
}

TEST_F(DatasetTrainingTest, PrepareTokenizerAndInspectCommands) {
  std::string out;
  const std::string corpus = (dir_ / "corpus.txt").string(), bpe = (dir_ / "bpe.json").string();
  const std::string out_h5 = (dir_ / "bpe.h5").string();
  ASSERT_EQ(run("tokenizer train --input " + corpus + " --vocab-size 300 --output " + bpe, &out), 0) << out;
  EXPECT_NE(out.find("43 merges, vocab 300"), std::string::npos) << out;
  const std::string prepare = "prepare --input " + corpus + " --split-blank-lines --tokenizer bpe:" + bpe;
  ASSERT_EQ(run(prepare + " --output " + out_h5, &out), 0) << out;
  EXPECT_NE(out.find("120 documents"), std::string::npos) << out;
  EXPECT_NE(out.find("MB/s"), std::string::npos) << out;
  ASSERT_EQ(run(prepare + " --output " + out_h5, &out), 2) << out;
  EXPECT_NE(out.find("--force"), std::string::npos) << out;
  ASSERT_EQ(run("inspect " + out_h5, &out), 0) << out;
  EXPECT_NE(out.find("bpe:" + bpe + " (vocab 300"), std::string::npos) << out;
  EXPECT_NE(out.find("verified"), std::string::npos) << out;
  ASSERT_EQ(run("prepare --output " + out_h5, &out), 2) << out;
  EXPECT_NE(out.find("--input"), std::string::npos) << out;
}

}  // namespace
}  // namespace rw
