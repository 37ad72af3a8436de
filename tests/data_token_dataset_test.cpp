// `prepare` -> HDF5 token dataset -> TokenSource: contents checked against expectations built here
// from the inputs, the validation split against a hand count, every kind of bad input or damaged
// file against a UserError naming it, and the prefetching loader against the synchronous one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/batch_loader.h"
#include "data/batch_prefetcher.h"
#include "data/bpe_tokenizer.h"
#include "data/dataset_writer.h"
#include "data/hdf5_file.h"
#include "data/hdf5_tokens.h"

namespace rw {
namespace {

namespace fs = std::filesystem;

class TokenDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ringwise_dataset_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  PrepareStats prepare(PrepareOptions opts) const {
    if (opts.output.empty()) opts.output = path("out.h5");
    return prepare_dataset(opts, nullptr);
  }

  fs::path dir_;
};

// The byte tokens of `docs`, each followed by 256, and their offsets: what prepare must write.
struct Expected {
  std::vector<int64_t> tokens, offsets{0};
};
Expected byte_documents(const std::vector<std::string>& docs) {
  Expected e;
  for (const std::string& d : docs) {
    for (unsigned char c : d) e.tokens.push_back(c);
    e.tokens.push_back(256);
    e.offsets.push_back(static_cast<int64_t>(e.tokens.size()));
  }
  return e;
}

void expect_file_holds(const std::string& file, const Expected& e) {
  h5::File f = h5::File::open(file);
  ASSERT_EQ(f.info("/tokens").type_name(), "uint16");
  std::vector<int64_t> tokens(e.tokens.size()), offsets(e.offsets.size());
  f.read("/tokens", tokens.data(), {static_cast<int64_t>(tokens.size())});
  f.read("/doc_offsets", offsets.data(), {static_cast<int64_t>(offsets.size())});
  EXPECT_EQ(tokens, e.tokens);
  EXPECT_EQ(offsets, e.offsets);
  EXPECT_EQ(f.attr_string("/", "ringwise_kind"), "dataset");
  EXPECT_EQ(f.attr_int("/", "format_version"), 1);
  EXPECT_EQ(f.attr_int("/", "num_tokens"), static_cast<int64_t>(e.tokens.size()));
  EXPECT_EQ(f.attr_int("/", "num_docs"), static_cast<int64_t>(e.offsets.size()) - 1);
  EXPECT_EQ(f.attr_int("/", "vocab_size"), 257);
  EXPECT_EQ(f.attr_int("/", "eod_token"), 256);
  EXPECT_EQ(f.attr_string("/", "tokenizer"), "byte");
}

template <typename F>
void expect_user_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no UserError";
  } catch (const UserError& e) {
    for (const std::string& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST_F(TokenDatasetTest, TextFilesAreOneDocumentEachInNameOrder) {
  write("b.txt", "world!\n");
  write("a.txt", "hello");
  write("a.dat", "index file, skipped");
  write("empty.txt", "");
  PrepareOptions o;
  o.inputs = {dir_.string()};
  o.output = path("sub/out.h5");  // the directory is created
  o.val_fraction = 0;
  PrepareStats s = prepare(o);
  EXPECT_EQ(s.docs, 2);
  EXPECT_EQ(s.bytes_read, 12);
  expect_file_holds(o.output, byte_documents({"hello", "world!\n"}));
  h5::File f = h5::File::open(o.output);
  EXPECT_EQ(f.attr_int("/", "train_tokens"), 14);
  EXPECT_EQ(f.attr_string("/", "sources"), dir_.string() + "\n");
}

TEST_F(TokenDatasetTest, BlankLinesSplitDocuments) {
  const std::string in = write("p.txt", "p1 line1\np1 line2\n\n \n\np2\nmore\n\nlast");
  PrepareOptions o;
  o.inputs = {in};
  o.split_blank_lines = true;
  o.val_fraction = 0;
  prepare(o);
  expect_file_holds(path("out.h5"), byte_documents({"p1 line1\np1 line2\n", "p2\nmore\n", "last"}));
}

TEST_F(TokenDatasetTest, JsonlLinesAreDocuments) {
  const std::string in = write("d.jsonl", "{\"text\": \"a\\u00e9\"}\n\n{\"id\": 3, \"text\": \"b\\nc\"}\n");
  write("e.txt", "{\"body\": \"x\"}\n");
  PrepareOptions o;
  o.inputs = {in};
  o.val_fraction = 0;
  prepare(o);
  expect_file_holds(path("out.h5"), byte_documents({"a\xc3\xa9", "b\nc"}));
  o.inputs = {path("e.txt")};
  o.format = InputFormat::kJsonl;
  o.text_field = "body";
  o.output = path("body.h5");
  prepare(o);
  expect_file_holds(path("body.h5"), byte_documents({"x"}));
}

// Documents of 10, 25 and 5 tokens (eod included): offsets 0, 10, 35, 40. A val fraction of 0.2
// asks for the split at 32 or later: the boundary at 35. A fraction of 0.5 asks for 20: again 35.
// 0.8 asks for 8: the boundary at 10.
TEST_F(TokenDatasetTest, ValidationSplitIsTheFirstBoundaryAfterTheTrainShare) {
  fs::create_directory(dir_ / "in");
  write("in/1.txt", std::string(9, 'a'));
  write("in/2.txt", std::string(24, 'b'));
  write("in/3.txt", std::string(4, 'c'));
  for (auto [fraction, train] : std::vector<std::pair<double, int64_t>>{{0.2, 35}, {0.5, 35}, {0.8, 10}, {0, 40}}) {
    PrepareOptions o;
    o.inputs = {path("in")};
    o.val_fraction = fraction;
    o.force = true;
    EXPECT_EQ(prepare(o).train_tokens, train) << fraction;
    EXPECT_EQ(h5::File::open(path("out.h5")).attr_int("/", "train_tokens"), train);
  }
  // A tiny fraction still leaves the last document for validation.
  PrepareOptions o;
  o.inputs = {path("in")};
  o.val_fraction = 0.001;
  o.force = true;
  EXPECT_EQ(prepare(o).train_tokens, 35);

  const Expected e = byte_documents({std::string(9, 'a'), std::string(24, 'b'), std::string(4, 'c')});
  auto train = open_token_dataset(path("out.h5"), TokenSplit::kTrain);
  auto val = open_token_dataset(path("out.h5"), TokenSplit::kVal);
  ASSERT_EQ(train->size(), 35);
  ASSERT_EQ(val->size(), 5);
  EXPECT_EQ(train->vocab_size(), 257);
  std::vector<int32_t> got(40);
  train->read(0, 35, got.data());
  val->read(0, 5, got.data() + 35);
  EXPECT_EQ(std::vector<int64_t>(got.begin(), got.end()), e.tokens);
}

// A document far longer than the encoder's 1 MB block is encoded in parts; the ids must equal
// encoding it whole.
TEST_F(TokenDatasetTest, LongDocumentsStreamToTheSameIdsAsWholeEncoding) {
  std::string text;
  for (int i = 0; text.size() < (5u << 19); ++i) text += "line " + std::to_string(i * 7919 % 1000) + " of text\n";
  write("long.txt", text);
  auto bpe = BpeTokenizer::train_from_text(text.substr(0, 100000), 400);
  bpe->save(path("bpe.json"));
  PrepareOptions o;
  o.inputs = {path("long.txt")};
  o.tokenizer = "bpe:" + path("bpe.json");
  o.val_fraction = 0;
  o.compress = 3;
  prepare(o);
  std::vector<int32_t> want = bpe->encode(text);
  want.push_back(256);
  auto src = open_token_dataset(path("out.h5"), TokenSplit::kTrain);
  ASSERT_EQ(src->size(), static_cast<int64_t>(want.size()));
  std::vector<int32_t> got(want.size());
  src->read(0, src->size(), got.data());
  EXPECT_EQ(got, want);

  // As bytes it spans three of the reader's 1M-token blocks: windows across their edges read the
  // same cached as uncached (window by window).
  o.tokenizer = "byte";
  o.output = path("byte.h5");
  prepare(o);
  auto cached = open_token_dataset(path("byte.h5"), TokenSplit::kTrain);
  auto direct = open_token_dataset(path("byte.h5"), TokenSplit::kTrain, 0);
  for (int64_t start : {int64_t{0}, int64_t{(1 << 20) - 5}, int64_t{(2 << 20) - 299}, cached->size() - 300}) {
    std::vector<int32_t> from_cache(300), from_file(300);
    cached->read(start, 300, from_cache.data());
    direct->read(start, 300, from_file.data());
    std::vector<int32_t> bytes(text.begin() + start, text.begin() + std::min<int64_t>(start + 300, text.size()));
    if (bytes.size() < 300) bytes.push_back(256);
    EXPECT_EQ(from_cache, bytes) << start;
    EXPECT_EQ(from_file, bytes) << start;
  }
  EXPECT_EQ(read_token_dataset_info(path("out.h5")).compression, "deflate level 3");
  std::ostringstream report;
  inspect_token_dataset(path("out.h5"), report);
  EXPECT_NE(report.str().find("verified"), std::string::npos) << report.str();
}

TEST_F(TokenDatasetTest, BadInputsAreUserErrorsNamingThem) {
  PrepareOptions o;
  o.inputs = {path("missing.txt")};
  expect_user_error([&] { prepare(o); }, {"missing.txt"});
  o.inputs = {write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": oops}\n")};
  expect_user_error([&] { prepare(o); }, {"bad.jsonl:2", "JSON"});
  o.inputs = {write("nofield.jsonl", "{\"body\": \"x\"}\n")};
  expect_user_error([&] { prepare(o); }, {"nofield.jsonl:1", "\"text\""});
  o.inputs = {write("ok.txt", "fine")};
  o.tokenizer = "bpe:" + path("nope.json");
  expect_user_error([&] { prepare(o); }, {"nope.json"});
  EXPECT_FALSE(fs::exists(path("out.h5")));
  EXPECT_FALSE(fs::exists(path("out.h5.tmp")));
}

TEST_F(TokenDatasetTest, ExistingOutputIsKeptWithoutForce) {
  const std::string out = write("out.h5", "precious");
  PrepareOptions o;
  o.inputs = {write("a.txt", "text")};
  expect_user_error([&] { prepare(o); }, {out, "--force"});
  std::ifstream in(out);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  // A failing run with --force leaves it too: the new file is only renamed over it when complete.
  o.force = true;
  o.inputs = {write("bad.jsonl", "{]\n")};
  expect_user_error([&] { prepare(o); }, {"bad.jsonl:1"});
  std::ifstream again(out);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(again), {}), "precious");
  o.inputs = {path("a.txt")};
  prepare(o);
  expect_file_holds(out, byte_documents({"text"}));
}

// A valid small dataset written field by field, so each test can break exactly one thing.
struct Fields {
  std::vector<uint16_t> tokens{'h', 'i', 256, 'y', 'o', 256};
  std::vector<int64_t> offsets{0, 3, 6};
  int64_t num_tokens = 6, num_docs = 2, train_tokens = 3, vocab = 257, version = 1;
  std::string kind = "dataset";
  bool int32_tokens = false;
};
void write_fields(const std::string& file, const Fields& d) {
  h5::File f = h5::File::create(file);
  if (d.int32_tokens) {
    std::vector<int32_t> wide(d.tokens.begin(), d.tokens.end());
    f.write("/tokens", wide.data(), {static_cast<int64_t>(wide.size())});
  } else {
    f.write("/tokens", d.tokens.data(), {static_cast<int64_t>(d.tokens.size())});
  }
  f.write("/doc_offsets", d.offsets.data(), {static_cast<int64_t>(d.offsets.size())});
  f.set_attr("/", "ringwise_kind", d.kind);
  f.set_attr("/", "format_version", d.version);
  f.set_attr("/", "tokenizer", std::string("byte"));
  f.set_attr("/", "vocab_size", d.vocab);
  f.set_attr("/", "eod_token", int64_t{256});
  f.set_attr("/", "num_tokens", d.num_tokens);
  f.set_attr("/", "num_docs", d.num_docs);
  f.set_attr("/", "train_tokens", d.train_tokens);
  f.set_attr("/", "sources", std::string("test\n"));
  f.close();
}

TEST_F(TokenDatasetTest, DamagedDatasetsAreUserErrorsNamingFileAndField) {
  const std::string file = path("d.h5");
  auto expect_open_error = [&](const Fields& d, const std::vector<std::string>& needles) {
    write_fields(file, d);
    std::vector<std::string> with_file = needles;
    with_file.push_back(file);
    expect_user_error([&] { open_token_dataset(file, TokenSplit::kTrain); }, with_file);
    std::ostringstream sink;
    expect_user_error([&] { inspect_token_dataset(file, sink); }, with_file);
  };
  write_fields(file, Fields{});  // the baseline is valid
  std::ostringstream report;
  inspect_token_dataset(file, report);
  EXPECT_NE(report.str().find("\"hi<eod>yo<eod>\""), std::string::npos) << report.str();

  Fields d;
  d.kind = "checkpoint";
  expect_open_error(d, {"ringwise_kind", "checkpoint"});
  d = Fields{};
  d.version = 2;
  expect_open_error(d, {"format_version"});
  d = Fields{};
  d.int32_tokens = true;
  expect_open_error(d, {"/tokens", "int32", "uint16"});
  d = Fields{};
  d.num_tokens = 7;
  expect_open_error(d, {"/tokens", "num_tokens"});
  d = Fields{};
  d.num_docs = 3;
  expect_open_error(d, {"/doc_offsets", "num_docs"});
  d = Fields{};
  d.offsets = {0, 3, 5};
  expect_open_error(d, {"/doc_offsets", "num_tokens"});
  d = Fields{};
  d.train_tokens = 9;
  expect_open_error(d, {"train_tokens"});

  // Contents only inspect reads: a token beyond the vocabulary, a document without its end token.
  auto expect_inspect_error = [&](const Fields& bad, const std::vector<std::string>& needles) {
    write_fields(file, bad);
    std::ostringstream sink;
    expect_user_error([&] { inspect_token_dataset(file, sink); }, needles);
  };
  d = Fields{};
  d.tokens[1] = 300;
  expect_inspect_error(d, {file, "/tokens", "300", "vocab_size"});
  d = Fields{};
  d.tokens[2] = 'x';
  expect_inspect_error(d, {file, "/tokens", "end-of-document", "position 2"});
  d = Fields{};
  d.offsets = {0, 4, 6};
  expect_inspect_error(d, {file, "/tokens", "end-of-document"});

  d = Fields{};
  d.train_tokens = 6;
  write_fields(file, d);
  expect_user_error([&] { open_token_dataset(file, TokenSplit::kVal); }, {file, "empty validation split"});
}

TEST_F(TokenDatasetTest, TruncatedOrForeignFilesAreUserErrors) {
  write("a.txt", std::string(5000, 'z'));
  PrepareOptions o;
  o.inputs = {path("a.txt")};
  prepare(o);
  const std::string file = path("out.h5");
  EXPECT_TRUE(is_hdf5_file(file));
  EXPECT_FALSE(is_hdf5_file(path("a.txt")));
  fs::resize_file(file, fs::file_size(file) / 2);
  expect_user_error([&] { open_token_dataset(file, TokenSplit::kTrain); }, {file});
  expect_user_error([&] { open_token_dataset(path("a.txt"), TokenSplit::kTrain); }, {"a.txt", "HDF5"});
  h5::File other = h5::File::create(path("other.h5"));
  other.close();
  expect_user_error([&] { open_token_dataset(path("other.h5"), TokenSplit::kTrain); }, {"other.h5", "ringwise_kind"});
}

TEST_F(TokenDatasetTest, PrefetchingLoaderGivesTheSynchronousBatches) {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += static_cast<char>('a' + (i * 31 + i / 7) % 26);
  write("t.txt", text);
  PrepareOptions o;
  o.inputs = {path("t.txt")};
  prepare(o);
  auto src = open_token_dataset(path("out.h5"), TokenSplit::kTrain);
  const int B = 3, T = 16, micro = 2;
  BatchLoader loader(*src, B, T, 42, 1, 2);
  BatchPrefetcher prefetcher(loader, micro);
  auto expect_step = [&](int64_t step, const StepBatches& got) {
    std::vector<int32_t> in(B * T), tg(B * T);
    for (int m = 0; m < micro; ++m) {
      loader.fill(step, m, in.data(), tg.data());
      EXPECT_EQ(std::vector<int32_t>(got.inputs.begin() + m * B * T, got.inputs.begin() + (m + 1) * B * T), in);
      EXPECT_EQ(std::vector<int32_t>(got.targets.begin() + m * B * T, got.targets.begin() + (m + 1) * B * T), tg);
    }
  };
  expect_step(0, prefetcher.get(0));  // nothing prefetched: read now
  for (int64_t step = 1; step < 6; ++step) {
    prefetcher.prefetch(step);
    expect_step(step, prefetcher.get(step));
  }
  prefetcher.prefetch(9);
  expect_step(7, prefetcher.get(7));  // a different step than prefetched is read now
  expect_step(9, prefetcher.get(9));  // the prefetched step is still there
}

}  // namespace
}  // namespace rw
