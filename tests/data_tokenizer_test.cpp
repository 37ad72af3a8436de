// Tokenizers: byte-level identity, byte-level BPE (merges checked against hand-computed ones,
// round trips, save/load, determinism) and SentencePiece when it is built in.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/bpe_tokenizer.h"
#include "data/tokenizer.h"

#if defined(RINGWISE_HAVE_SENTENCEPIECE) && defined(RINGWISE_TEST_SENTENCEPIECE_TRAINER)
#include <sentencepiece_trainer.h>
#endif

namespace rw {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ringwise_tok_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  // Mostly a small alphabet with spaces, so merges apply, plus any byte now and then.
  const std::string common = "ab ab\nabc";
  for (char& c : s) c = rng() % 4 == 0 ? static_cast<char>(rng() % 256) : common[rng() % common.size()];
  return s;
}

TEST(ByteTokenizer, EveryByteRoundTripsAndEodIs256) {
  auto tok = open_tokenizer("byte");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::vector<int32_t> ids = tok->encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[b], b);
  EXPECT_EQ(tok->decode(ids), all);
  EXPECT_EQ(tok->vocab_size(), 257);
  EXPECT_EQ(tok->eod_token(), 256);
  EXPECT_EQ(tok->name(), "byte");
}

TEST(Tokenizer, UnknownSpecAndMissingFilesAreUserErrors) {
  EXPECT_THROW(open_tokenizer("words"), UserError);
  try {
    open_tokenizer("bpe:/no/such/bpe.json");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/bpe.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_tokenizer("sentencepiece:/no/such/model"), UserError);
}

// "ab ab ab cd" has the pieces "ab", " ab", " ab", " cd". Pair counts: (a,b) 3, (' ',a) 2,
// (' ',c) 1, (c,d) 1, so the first merge is a+b = 257. Then (' ',257) has 2 and becomes 258.
// Left are (' ',c) and (c,d), 1 each: the tie goes to the smaller pair, (' ',c) = 259.
TEST(BpeTokenizer, FirstMergesMatchHandCount) {
  auto bpe = BpeTokenizer::train_from_text("ab ab ab cd", 260);
  using P = std::pair<int32_t, int32_t>;
  ASSERT_EQ(bpe->merges().size(), 3u);
  EXPECT_EQ(bpe->merges()[0], P('a', 'b'));
  EXPECT_EQ(bpe->merges()[1], P(' ', 257));
  EXPECT_EQ(bpe->merges()[2], P(' ', 'c'));
  EXPECT_EQ(bpe->vocab_size(), 260);
  EXPECT_EQ(bpe->encode("ab ab cd"), (std::vector<int32_t>{257, 258, 259, 'd'}));
}

TEST(BpeTokenizer, StopsWhenNoPairIsLeft) {
  auto bpe = BpeTokenizer::train_from_text("aaaa", 1000);
  // "aaaa": (a,a) -> 257, then (257,257) -> 258; nothing left.
  EXPECT_EQ(bpe->merges().size(), 2u);
  EXPECT_EQ(bpe->encode("aaaa"), (std::vector<int32_t>{258}));
  EXPECT_EQ(bpe->encode("aaaaa"), (std::vector<int32_t>{258, 'a'}));
}

TEST(BpeTokenizer, RandomBytesRoundTripAndEncodingIsDeterministic) {
  const std::string corpus = random_bytes(20000, 1);
  auto a = BpeTokenizer::train_from_text(corpus, 400);
  auto b = BpeTokenizer::train_from_text(corpus, 400);
  EXPECT_EQ(a->merges(), b->merges());
  EXPECT_GT(a->merges().size(), 50u);
  for (uint32_t seed = 2; seed < 6; ++seed) {
    const std::string text = random_bytes(5000, seed);
    std::vector<int32_t> ids = a->encode(text);
    EXPECT_LT(ids.size(), text.size());  // the merges compress
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < a->vocab_size() && id != a->eod_token());
    EXPECT_EQ(a->decode(ids), text);
    EXPECT_EQ(b->encode(text), ids);
  }
}

// Every id expands to the bytes of its pair, so decoding merge i gives its two halves' text; and
// the encoding of a text cut before a whitespace byte is the concatenation of the parts'.
TEST(BpeTokenizer, EncodingSplitsBeforeWhitespace) {
  auto bpe = BpeTokenizer::train_from_text(random_bytes(20000, 7), 400);
  const std::string text = random_bytes(3000, 8);
  const size_t cut = text.find(' ', 1500);
  ASSERT_NE(cut, std::string::npos);
  std::vector<int32_t> whole = bpe->encode(text), parts = bpe->encode(text.substr(0, cut));
  std::vector<int32_t> rest = bpe->encode(text.substr(cut));
  parts.insert(parts.end(), rest.begin(), rest.end());
  EXPECT_EQ(whole, parts);
}

TEST(BpeTokenizer, SaveThenLoadGivesTheSameTokenizer) {
  fs::path dir = temp_dir("save");
  auto bpe = BpeTokenizer::train_from_text(random_bytes(20000, 3), 350);
  const std::string file = (dir / "bpe.json").string();
  bpe->save(file);
  auto loaded = open_tokenizer("bpe:" + file);
  EXPECT_EQ(loaded->name(), "bpe:" + file);
  EXPECT_EQ(loaded->vocab_size(), bpe->vocab_size());
  EXPECT_EQ(loaded->eod_token(), 256);
  const std::string text = random_bytes(4000, 4);
  EXPECT_EQ(loaded->encode(text), bpe->encode(text));
  fs::remove_all(dir);
}

// Pieces never span files; the second file starts with whitespace, which starts a piece in the
// concatenated text too, so both see the same pieces.
TEST(BpeTokenizer, TrainsFromFilesLikeFromTheirText) {
  fs::path dir = temp_dir("files");
  const std::string one = random_bytes(8000, 11), two = " " + random_bytes(8000, 12);
  std::ofstream(dir / "a.txt", std::ios::binary) << one;
  std::ofstream(dir / "b.txt", std::ios::binary) << two;
  auto from_files = BpeTokenizer::train({dir.string()}, 320);
  auto from_text = BpeTokenizer::train_from_text(one + two, 320);
  EXPECT_EQ(from_files->merges().size(), 320u - 257u);
  EXPECT_EQ(from_files->merges(), from_text->merges());
  fs::remove_all(dir);
}

TEST(BpeTokenizer, MalformedFilesNameTheField) {
  fs::path dir = temp_dir("bad");
  auto expect_error = [&](const std::string& json, const std::string& field) {
    const fs::path file = dir / "bad.json";
    std::ofstream(file) << json;
    try {
      open_tokenizer("bpe:" + file.string());
      FAIL() << "no error for " << json;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
  };
  expect_error("{not json", "not valid JSON");
  expect_error(R"({"kind":"ringwise-bpe","format_version":1,"eod_token":256,"vocab_size":257})", "merges");
  expect_error(R"({"kind":"ringwise-bpe","format_version":2,"eod_token":256,"vocab_size":257,"merges":[]})",
               "format_version");
  expect_error(R"({"kind":"ringwise-bpe","format_version":1,"eod_token":256,"vocab_size":258,"merges":[[1,300]]})",
               "merges[0]");
  expect_error(R"({"kind":"ringwise-bpe","format_version":1,"eod_token":256,"vocab_size":300,"merges":[[1,2]]})",
               "vocab_size");
  fs::remove_all(dir);
}

#if defined(RINGWISE_HAVE_SENTENCEPIECE) && defined(RINGWISE_TEST_SENTENCEPIECE_TRAINER)
TEST(SentencePieceTokenizer, TinyTrainedModelRoundTrips) {
  fs::path dir = temp_dir("sp");
  std::string corpus;
  for (int i = 0; i < 300; ++i)
    corpus += "the quick brown fox " + std::to_string(i % 17) + " jumps over the lazy dog\n";
  std::ofstream(dir / "corpus.txt") << corpus;
  const std::string prefix = (dir / "m").string();
  const auto status = sentencepiece::SentencePieceTrainer::Train("--input=" + (dir / "corpus.txt").string() +
                                                                 " --model_prefix=" + prefix +
                                                                 " --vocab_size=60 --model_type=bpe --minloglevel=2");
  ASSERT_TRUE(status.ok()) << status.ToString();
  auto tok = open_tokenizer("sentencepiece:" + prefix + ".model");
  EXPECT_EQ(tok->vocab_size(), 60);
  EXPECT_EQ(tok->eod_token(), 2);  // SentencePiece's default </s>
  const std::string text = "the lazy fox jumps over 12 dogs";
  std::vector<int32_t> ids = tok->encode(text);
  for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < 60);
  EXPECT_EQ(tok->decode(ids), text);
  fs::remove_all(dir);
}
#else
TEST(SentencePieceTokenizer, TinyTrainedModelRoundTrips) {
  GTEST_SKIP() << "built without SentencePiece or its trainer library";
}
#endif

}  // namespace
}  // namespace rw
