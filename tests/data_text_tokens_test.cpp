// Byte-level text sources and the batch loader: bytes in, windows out, reproducibly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "core/check.h"
#include "data/batch_loader.h"
#include "data/token_source.h"

namespace rw {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ringwise_data_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::vector<int32_t> all_tokens(const TokenSource& src) {
  std::vector<int32_t> out(src.size());
  src.read(0, src.size(), out.data());
  return out;
}

TEST(TextTokens, FileBytesAreTokensIncludingHighBytes) {
  fs::path dir = temp_dir("file");
  write(dir / "a.txt", std::string("hi\xff\x01", 4));
  auto src = open_text_tokens((dir / "a.txt").string());
  EXPECT_EQ(src->vocab_size(), 256);
  EXPECT_EQ(all_tokens(*src), (std::vector<int32_t>{'h', 'i', 255, 1}));
  EXPECT_NE(src->describe().find("a.txt"), std::string::npos);
  fs::remove_all(dir);
}

TEST(TextTokens, DirectoryIsFilesInNameOrderSkippingIndexesAndLinks) {
  fs::path dir = temp_dir("dir");
  write(dir / "b", "BB");
  write(dir / "a", "AA");
  write(dir / "a.dat", "index");
  fs::create_symlink(dir / "a", dir / "a.u8");
  auto src = open_text_tokens(dir.string());
  EXPECT_EQ(all_tokens(*src), (std::vector<int32_t>{'A', 'A', 'B', 'B'}));
  fs::remove_all(dir);
}

TEST(TextTokens, MissingOrTinyDataNamesThePath) {
  try {
    open_text_tokens("/nonexistent/corpus.txt");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.txt"), std::string::npos) << e.what();
  }
  fs::path dir = temp_dir("tiny");
  write(dir / "one.txt", "x");
  try {
    open_text_tokens((dir / "one.txt").string());
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("one.txt"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

std::string counting_text(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('a' + i % 26);
  return s;
}

TEST(BatchLoader, TargetsAreInputsShiftedByOneAndWindowsComeFromTheText) {
  auto src = text_tokens_from_string(counting_text(1000), "letters");
  BatchLoader loader(*src, 4, 16, 42);
  std::vector<int32_t> in(64), tgt(64);
  loader.fill(3, 0, in.data(), tgt.data());
  for (int b = 0; b < 4; ++b)
    for (int t = 0; t < 16; ++t) {
      const int32_t x = in[b * 16 + t], y = tgt[b * 16 + t];
      EXPECT_EQ(y, 'a' + (x - 'a' + 1) % 26) << "row " << b << " t " << t;
      if (t > 0) {
        EXPECT_EQ(x, tgt[b * 16 + t - 1]);
      }
    }
}

TEST(BatchLoader, PureFunctionOfSeedStepAndMicroBatch) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += static_cast<char>((i * 7919) % 251);
  auto src = text_tokens_from_string(text, "mixed");
  BatchLoader a(*src, 4, 32, 1), b(*src, 4, 32, 1), other_seed(*src, 4, 32, 2);
  std::vector<int32_t> x1(128), y1(128), x2(128), y2(128), x3(128), y3(128), x4(128), y4(128);
  a.fill(5, 1, x1.data(), y1.data());
  b.fill(2, 0, x3.data(), y3.data());  // other calls in between must not matter
  b.fill(5, 1, x2.data(), y2.data());
  EXPECT_EQ(x1, x2);
  EXPECT_EQ(y1, y2);
  a.fill(5, 0, x3.data(), y3.data());
  EXPECT_NE(x1, x3) << "micro-batches should differ";
  other_seed.fill(5, 1, x4.data(), y4.data());
  EXPECT_NE(x1, x4) << "seeds should differ";
}

TEST(BatchLoader, DataParallelRanksSplitTheSingleProcessBatch) {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += static_cast<char>((i * 31 + i / 7) % 256);
  auto src = text_tokens_from_string(text, "mixed");
  const int B = 3, T = 8;
  BatchLoader whole(*src, 2 * B, T, 9);
  std::vector<int32_t> x(2 * B * T), y(2 * B * T);
  whole.fill(4, 0, x.data(), y.data());
  for (int rank = 0; rank < 2; ++rank) {
    BatchLoader part(*src, B, T, 9, rank, 2);
    std::vector<int32_t> px(B * T), py(B * T);
    part.fill(4, 0, px.data(), py.data());
    EXPECT_TRUE(std::equal(px.begin(), px.end(), x.begin() + rank * B * T)) << "rank " << rank;
  }
}

// Sequential windows follow each other through the text in global-batch order (micro-batches,
// then data-parallel ranks, then rows), without overlap, and wrap round at the end.
TEST(BatchLoader, SequentialWindowsTileTheTextInGlobalBatchOrder) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += static_cast<char>(i);
  auto src = text_tokens_from_string(text, "counting");
  const int B = 2, T = 10, accum = 3, windows = 200 - T;
  for (int rank = 0; rank < 2; ++rank) {
    BatchLoader loader(*src, B, T, 99, rank, 2, WindowOrder::Sequential, accum);
    std::vector<int32_t> x(B * T), y(B * T);
    for (int step = 0; step < 4; ++step)
      for (int micro = 0; micro < accum; ++micro) {
        loader.fill(step, micro, x.data(), y.data());
        for (int b = 0; b < B; ++b) {
          const int index = (step * accum + micro) * 2 * B + rank * B + b;
          EXPECT_EQ(x[b * T], index * T % windows) << "step " << step << " micro " << micro << " row " << b;
          EXPECT_EQ(y[b * T + T - 1], index * T % windows + T);
        }
      }
  }
  EXPECT_EQ(parse_window_order("sequential"), WindowOrder::Sequential);
  EXPECT_THROW(parse_window_order("shuffled"), UserError);
}

TEST(BatchLoader, TooShortTextIsAUserError) {
  auto src = text_tokens_from_string("abcdef", "six bytes");
  EXPECT_THROW(BatchLoader(*src, 1, 6, 0), UserError);
  EXPECT_NO_THROW(BatchLoader(*src, 1, 5, 0));
}

}  // namespace
}  // namespace rw
