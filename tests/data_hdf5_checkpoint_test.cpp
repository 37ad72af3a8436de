// Checkpoint files: exact round trips, every bad file rejected with its name and the offending
// dataset or attribute (leaving the file and the caller's memory untouched), interrupted saves
// ignored, old checkpoints pruned.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "core/check.h"
#include "data/hdf5_checkpoint.h"
#include "data/hdf5_file.h"

namespace rw {
namespace {

namespace fs = std::filesystem;

// Tensors of a made-up model with random values, owning their memory.
struct State {
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  std::vector<std::vector<float>> param, m, v;

  State(std::vector<std::string> n, std::vector<Shape> s, uint32_t seed) : names(std::move(n)), shapes(std::move(s)) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist;
    for (const Shape& shape : shapes) {
      for (auto* buf : {&param, &m, &v}) {
        buf->emplace_back(shape_numel(shape));
        for (float& x : buf->back()) x = dist(gen);
      }
    }
  }
  std::vector<CheckpointTensor> tensors() {
    std::vector<CheckpointTensor> t;
    for (size_t i = 0; i < names.size(); ++i) t.push_back({names[i], shapes[i], param[i].data(), m[i].data(), v[i].data()});
    return t;
  }
  bool operator==(const State& o) const { return param == o.param && m == o.m && v == o.v; }
};

State model_state(uint32_t seed) {
  return State({"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"},
               {{16, 8}, {8, 8}, {8}}, seed);
}

CheckpointMeta meta_at(int64_t step) {
  CheckpointMeta meta;
  meta.step = step;
  meta.adam_step = step - 1;
  meta.seed = -7;  // a uint64 seed above 2^63, bit-cast
  meta.config_text = "preset = tiny\nd-model = 8\n";
  return meta;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("ringwise_ckpt_test_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Loading `path` into a fresh state must fail with a UserError whose message names the file and
  // `field`, and must change neither the file nor the state's memory.
  void expect_rejected(const std::string& path, const std::string& field, State expected_shape = model_state(99)) {
    const bool exists = fs::exists(path);
    const std::string before = exists ? file_bytes(path) : "";
    const State untouched = expected_shape;
    std::string message;
    try {
      load_checkpoint(path, expected_shape.tensors());
      ADD_FAILURE() << "no error loading " << path;
    } catch (const UserError& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(field), std::string::npos) << "expected '" << field << "' in: " << message;
    EXPECT_TRUE(expected_shape == untouched) << "the caller's memory was modified";
    if (exists) {
      EXPECT_EQ(file_bytes(path), before) << "the file was modified";
    }
  }

  std::string dir_;
};

TEST_F(CheckpointTest, RoundTripIsExact) {
  State saved = model_state(1);
  const std::string path = save_checkpoint(dir_, meta_at(7), saved.tensors());
  EXPECT_EQ(path, dir_ + "/step_00000007.h5");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "temporary file left behind";

  State loaded = model_state(2);
  ASSERT_FALSE(loaded == saved);
  const CheckpointMeta meta = load_checkpoint(path, loaded.tensors());
  EXPECT_TRUE(loaded == saved);
  EXPECT_EQ(meta.step, 7);
  EXPECT_EQ(meta.adam_step, 6);
  EXPECT_EQ(meta.seed, -7);
  EXPECT_EQ(meta.config_text, meta_at(7).config_text);
  EXPECT_EQ(meta.ringwise_version, RINGWISE_VERSION);

  // The layout other tools rely on: parameters at the root under their names, moments below.
  const h5::File file = h5::File::open(path);
  EXPECT_EQ(file.attr_string("/", "ringwise_kind"), "checkpoint");
  EXPECT_EQ(file.attr_int("/", "format_version"), 1);
  EXPECT_EQ(file.info("/model.embed_tokens.weight").shape, (Shape{16, 8}));
  EXPECT_EQ(file.info("/optimizer/exp_avg_sq/model.norm.weight").type_name(), "float32");
}

TEST_F(CheckpointTest, SavingTheSameStepAgainReplacesTheFile) {
  State first = model_state(1), second = model_state(2), loaded = model_state(3);
  save_checkpoint(dir_, meta_at(4), first.tensors());
  const std::string path = save_checkpoint(dir_, meta_at(4), second.tensors());
  load_checkpoint(path, loaded.tensors());
  EXPECT_TRUE(loaded == second);
}

// A save that fails half-way (here: a name given twice) leaves neither a temporary file nor a
// changed checkpoint behind.
TEST_F(CheckpointTest, FailedSaveLeavesTheExistingCheckpointAlone) {
  State good = model_state(1);
  const std::string path = save_checkpoint(dir_, meta_at(4), good.tensors());
  const std::string before = file_bytes(path);
  State other = model_state(2);
  std::vector<CheckpointTensor> twice = other.tensors();
  twice.push_back(twice.front());
  EXPECT_ANY_THROW(save_checkpoint(dir_, meta_at(4), twice));
  EXPECT_EQ(file_bytes(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "temporary file left behind";
}

TEST_F(CheckpointTest, MissingOrNonHdf5FilesAreRejected) {
  expect_rejected(dir_ + "/step_00000001.h5", "does not exist");
  const std::string text = dir_ + "/notes.h5";
  std::ofstream(text) << "not an HDF5 file\n";
  expect_rejected(text, "not an HDF5 file");
}

TEST_F(CheckpointTest, TruncatedFileIsRejected) {
  State saved = model_state(1);
  const std::string good = save_checkpoint(dir_, meta_at(3), saved.tensors());
  const std::string bytes = file_bytes(good);
  const std::string cut = dir_ + "/step_00000004.h5";
  std::ofstream(cut, std::ios::binary).write(bytes.data(), bytes.size() / 2);
  expect_rejected(cut, "truncated");
}

// A bit flipped inside a tensor's stored values (a disk or copy error) is caught by the dataset's
// checksum, naming the file and the dataset, instead of loading a silently different model.
TEST_F(CheckpointTest, DamagedTensorBytesFailTheirChecksum) {
  State saved = model_state(1);
  const float marker = 1234.5f;  // a value no random normal takes
  std::fill(saved.param[1].begin(), saved.param[1].end(), marker);
  const std::string path = save_checkpoint(dir_, meta_at(5), saved.tensors());
  std::string bytes = file_bytes(path);
  char pattern[sizeof marker * 4];
  for (int i = 0; i < 4; ++i) std::memcpy(pattern + i * sizeof marker, &marker, sizeof marker);
  const size_t at = bytes.find(std::string(pattern, sizeof pattern));
  ASSERT_NE(at, std::string::npos) << "q_proj's values not found in the file";
  bytes[at + 9] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());

  State loaded = model_state(99);
  try {
    load_checkpoint(path, loaded.tensors());
    ADD_FAILURE() << "a damaged checkpoint loaded";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("'/model.layers.0.self_attn.q_proj.weight' fails its checksum"), std::string::npos) << msg;
  }
  EXPECT_TRUE(h5::File::open(path).info("/model.layers.0.self_attn.q_proj.weight").checksum);
}

// Checksums need chunks, and HDF5 stores a partial last chunk at full size: 1500 rows of 1000 in
// chunks of the ~1M-element limit (1048 rows) would store 2096 rows, 40% more than the data.
TEST_F(CheckpointTest, ChunkingWastesNoSpace) {
  State big({"model.embed_tokens.weight"}, {{1500, 1000}}, 3);
  const std::string path = save_checkpoint(dir_, meta_at(1), big.tensors());
  const double data_bytes = 3.0 * 1500 * 1000 * sizeof(float);
  EXPECT_LT(static_cast<double>(fs::file_size(path)), data_bytes * 1.01 + 64 * 1024);
  State loaded({"model.embed_tokens.weight"}, {{1500, 1000}}, 4);
  load_checkpoint(path, loaded.tensors());
  EXPECT_TRUE(loaded == big);
}

TEST_F(CheckpointTest, MissingDatasetIsNamed) {
  State small({"model.embed_tokens.weight", "model.norm.weight"}, {{16, 8}, {8}}, 1);
  const std::string path = save_checkpoint(dir_, meta_at(2), small.tensors());
  expect_rejected(path, "model.layers.0.self_attn.q_proj.weight");
}

TEST_F(CheckpointTest, WrongShapeIsNamedWithBothShapes) {
  State other({"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"},
              {{16, 8}, {4, 8}, {8}}, 1);
  const std::string path = save_checkpoint(dir_, meta_at(2), other.tensors());
  expect_rejected(path, "'/model.layers.0.self_attn.q_proj.weight' has shape [4, 8], expected [8, 8]");
}

// A checkpoint as another tool might write it: right layout, but one moment stored as float64.
TEST_F(CheckpointTest, WrongDtypeIsNamed) {
  State saved = model_state(1);
  const std::string path = dir_ + "/step_00000005.h5";
  {
    h5::File f = h5::File::create(path);
    f.set_attr("/", "ringwise_kind", std::string("checkpoint"));
    f.set_attr("/", "format_version", int64_t{1});
    f.set_attr("/", "ringwise_version", std::string("0.0.0"));
    f.set_attr("/", "step", int64_t{5});
    f.set_attr("/", "adam_step", int64_t{5});
    f.set_attr("/", "seed", int64_t{1});
    f.set_attr("/", "config", std::string(""));
    for (CheckpointTensor& t : saved.tensors()) {
      f.write("/" + t.name, t.param, t.shape);
      f.write("/optimizer/exp_avg/" + t.name, t.exp_avg, t.shape);
      if (t.name == "model.norm.weight") {
        const std::vector<double> wide(t.exp_avg_sq, t.exp_avg_sq + shape_numel(t.shape));
        f.write("/optimizer/exp_avg_sq/" + t.name, wide.data(), t.shape);
      } else {
        f.write("/optimizer/exp_avg_sq/" + t.name, t.exp_avg_sq, t.shape);
      }
    }
    f.close();
  }
  expect_rejected(path, "'/optimizer/exp_avg_sq/model.norm.weight' holds float64, expected float32");
}

TEST_F(CheckpointTest, WrongKindOrVersionIsNamed) {
  State saved = model_state(1);
  const std::string dataset = save_checkpoint(dir_, meta_at(1), saved.tensors());
  {
    h5::File f = h5::File::open(dataset, true);
    f.set_attr("/", "ringwise_kind", std::string("dataset"));
  }
  expect_rejected(dataset, "ringwise_kind is 'dataset'");

  const std::string future = save_checkpoint(dir_, meta_at(2), saved.tensors());
  {
    h5::File f = h5::File::open(future, true);
    f.set_attr("/", "format_version", int64_t{2});
  }
  expect_rejected(future, "format_version is 2");
}

TEST_F(CheckpointTest, InterruptedSavesAreNotComplete) {
  State saved = model_state(1);
  save_checkpoint(dir_, meta_at(10), saved.tensors());
  save_checkpoint(dir_, meta_at(20), saved.tensors());
  // A crash during the save of step 30 leaves only its temporary file; stray names do not count.
  std::ofstream(dir_ + "/.step_00000030.h5.tmp") << "half a file";
  std::ofstream(dir_ + "/step_00000040.h5.tmp") << "half a file";
  std::ofstream(dir_ + "/step_latest.h5") << "not a step";
  fs::create_directory(dir_ + "/step_00000050.h5");
  EXPECT_EQ(newest_checkpoint(dir_), dir_ + "/step_00000020.h5");
  const std::vector<CheckpointEntry> all = list_checkpoints(dir_);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].step, 10);
  EXPECT_EQ(all[1].step, 20);
  EXPECT_EQ(newest_checkpoint(dir_ + "/missing"), "");
}

TEST_F(CheckpointTest, NewestIsByStepNotByName) {
  State saved = model_state(1);
  save_checkpoint(dir_, meta_at(99999999), saved.tensors());
  save_checkpoint(dir_, meta_at(100000000), saved.tensors());  // nine digits sorts first by name
  EXPECT_EQ(newest_checkpoint(dir_), dir_ + "/step_100000000.h5");
}

TEST_F(CheckpointTest, PruningKeepsTheNewestAndTheJustWritten) {
  State saved = model_state(1);
  std::vector<std::string> paths;
  for (int step = 1; step <= 5; ++step) paths.push_back(save_checkpoint(dir_, meta_at(step), saved.tensors()));
  std::ofstream(dir_ + "/notes.txt") << "kept";
  std::ofstream(dir_ + "/.step_00000006.h5.tmp") << "kept";

  EXPECT_TRUE(prune_checkpoints(dir_, 0, paths[4]).empty()) << "keep-last 0 keeps all";
  // The one just written is kept even when it is not among the newest (a resumed older run).
  EXPECT_EQ(prune_checkpoints(dir_, 2, paths[1]), (std::vector<std::string>{paths[0], paths[2]}));
  EXPECT_EQ(newest_checkpoint(dir_), paths[4]);
  EXPECT_EQ(list_checkpoints(dir_).size(), 3u);
  EXPECT_EQ(prune_checkpoints(dir_, 1, paths[4]), (std::vector<std::string>{paths[1], paths[3]}));
  const std::vector<CheckpointEntry> left = list_checkpoints(dir_);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].path, paths[4]);
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));
  EXPECT_TRUE(fs::exists(dir_ + "/.step_00000006.h5.tmp"));
}

}  // namespace
}  // namespace rw
