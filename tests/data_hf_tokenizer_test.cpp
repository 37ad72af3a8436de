// Hugging Face byte-level BPE tokenizers against the `tokenizers` package: the ids it gave for each
// test string and for every fortune file (tests/reference/hf_tokenizer_reference.py recorded them).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "core/check.h"
#include "data/dataset_writer.h"
#include "data/hdf5_tokens.h"
#include "data/token_source.h"
#include "data/tokenizer.h"
#include "data/unicode_class.h"
#include "tests/gguf_test_support.h"
#include "tests/test_support.h"

namespace rw {
namespace {

using nlohmann::json;

const std::string kReference = std::string(RINGWISE_SOURCE_DIR) + "/tests/reference/";
const std::string kTiny = kReference + "tiny_tokenizer.json";
const char* kFortunes = "/usr/share/games/fortunes";

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot read " + path);
  return json::parse(in);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

const json& expected() {
  static const json j = read_json(kReference + "hf_tokenizer_expected.json");
  return j;
}

std::string erase_all(std::string text, const std::string& what) {
  for (size_t at; (at = text.find(what)) != std::string::npos;) text.erase(at, what.size());
  return text;
}

// Every test string encodes to the reference ids, and those decode to the reference text except that
// decode() drops the end-of-document token (`eod_text`).
void expect_reference_encodings(const Tokenizer& tok, const std::string& which, const std::string& eod_text) {
  const json& strings = expected()["strings"];
  const json& cases = expected()[which];
  ASSERT_EQ(strings.size(), cases.size());
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string text = strings[i];
    const std::vector<int32_t> ids = cases[i]["ids"];
    EXPECT_EQ(tok.encode(text), ids) << which << " string " << i << ": \"" << text << "\"";
    EXPECT_EQ(tok.decode(ids), erase_all(cases[i]["decoded"], eod_text)) << which << " string " << i;
  }
}

// Classes by the Unicode general category (letters L*, numbers N*, White_Space), picked by hand.
TEST(UnicodeClass, HandPickedCodePoints) {
  for (uint32_t c : {0x41u, 0xE9u, 0x3B1u, 0x436u, 0x5D0u, 0x645u, 0x957Fu, 0xD55Cu, 0x3042u, 0x20000u})
    EXPECT_EQ(char_class(c), CharClass::kLetter) << std::hex << c;
  for (uint32_t c : {0x37u, 0x663u, 0x967u, 0xFF13u, 0x216Bu, 0x2460u, 0xBDu})  // Nd, Nl (Roman XII), No
    EXPECT_EQ(char_class(c), CharClass::kNumber) << std::hex << c;
  for (uint32_t c : {0x20u, 0x09u, 0x0Au, 0x0Du, 0x85u, 0xA0u, 0x2003u, 0x2028u, 0x3000u})
    EXPECT_EQ(char_class(c), CharClass::kSpace) << std::hex << c;
  // U+001C..U+001F are not White_Space; punctuation, symbols, emoji and marks are none of the three.
  for (uint32_t c : {0x1Cu, 0x21u, 0x27u, 0xFF0Cu, 0x3002u, 0x2764u, 0x1F642u, 0x301u, 0xFE0Fu})
    EXPECT_EQ(char_class(c), CharClass::kOther) << std::hex << c;
}

// Valid UTF-8 decodes to its code point; anything else is one byte of class kOther.
TEST(UnicodeClass, Utf8Decoding) {
  const auto at = [](const std::string& s) { return code_point_at(s, 0); };
  EXPECT_EQ(at("\xF0\x9F\x99\x82").value, 0x1F642u);
  EXPECT_EQ(at("\xF0\x9F\x99\x82").bytes, 4u);
  EXPECT_EQ(at("\xE9\x95\xBF").value, 0x957Fu);
  EXPECT_EQ(at("\xE9\x95\xBF").cls, CharClass::kLetter);
  for (const std::string bad :
       {"\xC3", "\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80", "\xFF"}) {
    EXPECT_EQ(at(bad).bytes, 1u) << bad.size();
    EXPECT_EQ(at(bad).cls, CharClass::kOther) << bad.size();
  }
}

// The message of the UserError that opening `spec` throws ("" and a test failure when none).
std::string open_error(const std::string& spec) {
  try {
    open_tokenizer(spec);
  } catch (const UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UserError opening " << spec;
  return "";
}

TEST(HfTokenizer, TinyTokenizerJsonMatchesTokenizersPackage) {
  const auto tok = open_tokenizer("hf:" + kTiny);
  EXPECT_EQ(tok->name(), "hf:" + kTiny);
  EXPECT_EQ(tok->eod_token(), 0);  // <|endoftext|>, the first special token the script trained with
  EXPECT_EQ(tok->vocab_size(), 659);
  expect_reference_encodings(*tok, "tiny", "<|endoftext|>");
}

TEST(HfTokenizer, Llama3SplitPatternMatchesTokenizersPackage) {
  const auto tok = open_tokenizer("hf:" + kReference + "tiny_tokenizer_llama3.json");
  expect_reference_encodings(*tok, "tiny_llama3", "<|endoftext|>");
}

// The tiny tokenizer has a token for every byte, so any bytes at all, UTF-8 or not, come back.
TEST(HfTokenizer, ArbitraryBytesRoundTrip) {
  const auto tok = open_tokenizer("hf:" + kTiny);
  uint64_t state = 12345;
  for (int trial = 0; trial < 200; ++trial) {
    std::string text(trial % 50, '\0');
    for (char& c : text) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      // Mostly letters, digits and spaces, so that merges and added tokens get their turn too.
      const int r = static_cast<int>(state >> 56);
      c = r < 64 ? "ab 1\n<|im_end|>'s"[r % 16] : static_cast<char>(r);
    }
    EXPECT_EQ(tok->decode(tok->encode(text)), erase_all(text, "<|endoftext|>")) << "trial " << trial;
  }
}

class HfTokenizerFiles : public test::TempDirTest {};

// Merges as "left right" strings (older tokenizer.json files) read the same as [left, right] pairs;
// a tokenizer_config.json beside the file chooses the end-of-document token.
TEST_F(HfTokenizerFiles, StringMergesAndConfigEos) {
  json j = read_json(kTiny);
  for (json& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  write_text(path("tokenizer.json"), j.dump());
  write_text(path("tokenizer_config.json"), R"({"eos_token": {"content": "<|im_end|>"}})");
  const auto tok = open_tokenizer("hf:" + dir_);  // the directory stands for its tokenizer.json
  EXPECT_EQ(tok->name(), "hf:" + dir_);
  EXPECT_EQ(tok->eod_token(), 2);
  expect_reference_encodings(*tok, "tiny", "<|im_end|>");
}

TEST_F(HfTokenizerFiles, BadFilesNameTheFileAndField) {
  const std::string missing = path("missing.json");
  EXPECT_NE(open_error("hf:" + missing).find(missing), std::string::npos);

  write_text(path("bad.json"), "{\"model\": ");
  std::string e = open_error("hf:" + path("bad.json"));
  EXPECT_NE(e.find(path("bad.json")), std::string::npos) << e;
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;

  // Each change to the tiny tokenizer, and the field its error must name.
  const std::vector<std::pair<std::function<void(json&)>, std::string>> damage = {
      {[](json& j) { j["model"]["type"] = "WordPiece"; }, "model.type"},
      {[](json& j) { j["model"].erase("vocab"); }, "model.vocab"},
      {[](json& j) {
         j["model"]["merges"][3] = json::array({"no-such-token", "x"});
       },
       "merges[3]"},
      {[](json& j) { j["model"]["merges"][5] = "nospace"; }, "model.merges[5]"},
      {[](json& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback"},
      {[](json& j) {
         j["pre_tokenizer"] = {{"type", "Metaspace"}};
       },
       "pre_tokenizer.type"},
      {[](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; },
       "pre_tokenizer.pretokenizers[1].add_prefix_space"},
      {[](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = false; },
       "pre_tokenizer.pretokenizers[0].individual_digits"},
      {[](json& j) {
         j["normalizer"] = {{"type", "NFC"}};
       },
       "normalizer"},
      {[](json& j) { j["added_tokens"][1]["lstrip"] = true; }, "added_tokens[1].lstrip"},
      {[](json& j) { j["model"]["unk_token"] = "<unk>"; }, "model.unk_token"},
  };
  for (const auto& [change, field] : damage) {
    json j = read_json(kTiny);
    change(j);
    write_text(path("damaged.json"), j.dump());
    e = open_error("hf:" + path("damaged.json"));
    EXPECT_NE(e.find(path("damaged.json")), std::string::npos) << e;
    EXPECT_NE(e.find(field), std::string::npos) << "expected '" << field << "' in: " << e;
  }
  write_text(path("tokenizer.json"), read_text(kTiny));
  write_text(path("tokenizer_config.json"), R"({"eos_token": "<|no such token|>"})");
  e = open_error("hf:" + path("tokenizer.json"));
  EXPECT_NE(e.find(path("tokenizer_config.json")), std::string::npos) << e;
  EXPECT_NE(e.find("eos_token"), std::string::npos) << e;
}

// `ringwise prepare` encodes a document longer than its 1 MB block in parts, which must give the ids
// of encoding it whole. Each text ends its first megabyte where a cut before the last whitespace
// byte would change them: LLaMA-3 keeps ".\n" together, GPT-2 a run of spaces ("zz  " + "  delta").
TEST_F(HfTokenizerFiles, LongDocumentsPrepareToTheIdsOfWholeEncoding) {
  const size_t kBlock = 1 << 20;
  for (const std::string name : {"tiny_tokenizer_llama3.json", "tiny_tokenizer.json"}) {
    std::string text;
    while (text.size() < kBlock - 64) text += "alpha beta gamma.\n";
    const bool llama3 = name == "tiny_tokenizer_llama3.json";
    text += std::string(kBlock - text.size() - (llama3 ? 0 : 2), 'z');
    if (!llama3) text += "  ";
    while (text.size() < kBlock + 50000) text += "  delta epsilon.\n";
    write_text(path("long.txt"), text);
    PrepareOptions o;
    o.inputs = {path("long.txt")};
    o.output = path("long.h5");
    o.tokenizer = "hf:" + kReference + name;
    o.val_fraction = 0;
    o.force = true;
    prepare_dataset(o, [](const PrepareStats&) {});
    std::vector<int32_t> want = open_tokenizer(o.tokenizer)->encode(text);
    want.push_back(0);  // <|endoftext|>
    const auto tokens = open_token_dataset(o.output, TokenSplit::kTrain);
    std::vector<int32_t> got(tokens->size());
    tokens->read(0, tokens->size(), got.data());
    EXPECT_EQ(got == want, true) << name << ": " << got.size() << " ids, whole encoding " << want.size();
    EXPECT_EQ(read_token_dataset_info(o.output).tokenizer, o.tokenizer);  // the spec that reopens it
  }
}

// The tiny tokenizer as GGUF metadata, as llama.cpp's converter writes it: tokens by id, token types
// (3 = control for the special tokens), "left right" merges, eos, and pre "smollm" (Digits, then
// the GPT-2 pattern, which is what the tiny tokenizer was trained with).
// With `replaced_key`, `replacement` writes that entry instead.
using GgufEntry = std::function<void(test::GgufWriter&)>;
test::GgufWriter tiny_as_gguf(const std::string& replaced_key = "", const GgufEntry& replacement = {}) {
  const json j = read_json(kTiny);
  std::vector<std::string> tokens(j["model"]["vocab"].size());
  for (const auto& [token, id] : j["model"]["vocab"].items()) tokens.at(id.get<size_t>()) = token;
  std::vector<int32_t> types(tokens.size(), 1);
  for (const json& t : j["added_tokens"]) types.at(t["id"].get<size_t>()) = 3;
  std::vector<std::string> merges;
  for (const json& m : j["model"]["merges"]) merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  const std::vector<std::pair<std::string, GgufEntry>> entries = {
      {"tokenizer.ggml.model", [](test::GgufWriter& w) { w.add_string("tokenizer.ggml.model", "gpt2"); }},
      {"tokenizer.ggml.pre", [](test::GgufWriter& w) { w.add_string("tokenizer.ggml.pre", "smollm"); }},
      {"tokenizer.ggml.tokens", [&](test::GgufWriter& w) { w.add_string_array("tokenizer.ggml.tokens", tokens); }},
      {"tokenizer.ggml.token_type", [&](test::GgufWriter& w) { w.add_i32_array("tokenizer.ggml.token_type", types); }},
      {"tokenizer.ggml.merges", [&](test::GgufWriter& w) { w.add_string_array("tokenizer.ggml.merges", merges); }},
      {"tokenizer.ggml.eos_token_id", [](test::GgufWriter& w) { w.add_u32("tokenizer.ggml.eos_token_id", 0); }},
  };
  test::GgufWriter w;
  for (const auto& [key, write] : entries) (key == replaced_key ? replacement : write)(w);
  return w;
}

TEST_F(HfTokenizerFiles, GgufMetadataTokenizerMatchesTokenizersPackage) {
  tiny_as_gguf().write(path("tiny.gguf"));
  const auto tok = open_tokenizer("gguf:" + path("tiny.gguf"));
  EXPECT_EQ(tok->name(), "gguf:" + path("tiny.gguf"));
  EXPECT_EQ(tok->eod_token(), 0);
  expect_reference_encodings(*tok, "tiny", "<|endoftext|>");
}

TEST_F(HfTokenizerFiles, BadGgufTokenizersNameTheFileAndKey) {
  // The tiny tokenizer's metadata with one entry replaced, and what the error must say.
  const std::vector<std::tuple<std::string, GgufEntry, std::string>> damage = {
      {"tokenizer.ggml.model", [](test::GgufWriter& w) { w.add_string("tokenizer.ggml.model", "llama"); },
       "tokenizer.ggml.model is \"llama\""},
      {"tokenizer.ggml.pre", [](test::GgufWriter& w) { w.add_string("tokenizer.ggml.pre", "qwen2"); },
       "tokenizer.ggml.pre \"qwen2\""},
      {"tokenizer.ggml.merges",
       [](test::GgufWriter& w) {
         w.add_string_array("tokenizer.ggml.merges", {"a b", "ab"});
       },
       "tokenizer.ggml.merges[1]"},
      {"tokenizer.ggml.token_type",
       [](test::GgufWriter& w) {
         w.add_i32_array("tokenizer.ggml.token_type", {1, 1});
       },
       "tokenizer.ggml.token_type"},
      {"tokenizer.ggml.eos_token_id", [](test::GgufWriter& w) { w.add_u32("tokenizer.ggml.eos_token_id", 1000000); },
       "eos_token_id"},
      {"tokenizer.ggml.tokens", [](test::GgufWriter&) {}, "tokenizer.ggml.tokens"},
  };
  for (const auto& [key, replacement, message] : damage) {
    test::GgufWriter w = tiny_as_gguf(key, replacement);
    w.write(path("bad.gguf"));
    const std::string e = open_error("gguf:" + path("bad.gguf"));
    EXPECT_NE(e.find(path("bad.gguf")), std::string::npos) << e;
    EXPECT_NE(e.find(message), std::string::npos) << "expected '" << message << "' in: " << e;
  }
}

TEST(HfTokenizer, SmolLM2GgufMatchesTokenizersPackage) {
  const std::string gguf = test::smollm2_gguf();
  REQUIRE_SMOLLM2(gguf);
  const auto tok = open_tokenizer("gguf:" + gguf);
  EXPECT_EQ(tok->name(), "gguf:" + gguf);
  EXPECT_EQ(tok->vocab_size(), 49152);
  EXPECT_EQ(tok->eod_token(), 2);  // tokenizer.ggml.eos_token_id: <|im_end|>
  expect_reference_encodings(*tok, "smollm2", "<|im_end|>");
}

// FNV-1a over the ids' 32-bit little-endian bytes, as the reference script computes it.
uint64_t fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id : ids)
    for (int b = 0; b < 4; ++b) h = (h ^ ((static_cast<uint32_t>(id) >> (8 * b)) & 0xFF)) * 0x100000001B3ull;
  return h;
}

// 2.6 MB of English prose, verse, code and ASCII art: every fortune file's ids, by count and checksum.
TEST(HfTokenizer, SmolLM2EncodesEveryFortuneFileAsTokenizersPackage) {
  const std::string gguf = test::smollm2_gguf();
  REQUIRE_SMOLLM2(gguf);
  if (!std::filesystem::exists(kFortunes)) GTEST_SKIP() << kFortunes << " is absent";
  const auto tok = open_tokenizer("gguf:" + gguf);
  const json& want = expected()["smollm2_fortunes"];
  for (size_t i = 0; i < want["files"].size(); ++i) {
    const std::string file = want["files"][i];
    const std::vector<int32_t> ids = tok->encode(read_text(std::string(kFortunes) + "/" + file));
    EXPECT_EQ(static_cast<int64_t>(ids.size()), want["tokens"][i].get<int64_t>()) << file;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(ids)));
    EXPECT_EQ(std::string(hex), want["fnv1a"][i].get<std::string>()) << file;
  }
}

}  // namespace
}  // namespace rw
