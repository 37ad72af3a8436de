// The GGUF reader (data/gguf_file.h) on files written byte by byte here, and its dequantisation
// kernels (data/gguf_dequant.h) on blocks whose values are computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/check.h"
#include "data/gguf_dequant.h"
#include "data/gguf_file.h"
#include "tests/gguf_test_support.h"
#include "tests/test_support.h"

namespace rw {
namespace {

using test::GgufWriter;

std::string bytes_of(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s += static_cast<char>(b);
  return s;
}

std::vector<float> dequantise(uint32_t type, const std::string& block, size_t blocks = 1) {
  std::vector<float> out(blocks * ggml_type_info(type)->block_elems);
  gguf_dequantise(type, reinterpret_cast<const unsigned char*>(block.data()), blocks, out.data());
  return out;
}

TEST(GgufDequant, Q8_0IsScaleTimesSignedBytes) {
  std::string block = bytes_of({0x00, 0x38});  // d = 0.5 (f16 0x3800)
  for (int j = 0; j < 32; ++j) block += static_cast<char>(j == 0 ? -128 : j == 1 ? 127 : j - 16);
  const std::vector<float> x = dequantise(kGgmlQ8_0, block);
  EXPECT_EQ(x[0], -64.0f);
  EXPECT_EQ(x[1], 63.5f);
  for (int j = 2; j < 32; ++j) EXPECT_EQ(x[j], 0.5f * (j - 16)) << j;
}

TEST(GgufDequant, Q4_0LowNibblesFirstThenHigh) {
  std::string block = bytes_of({0x00, 0x40});  // d = 2 (f16 0x4000)
  block += static_cast<char>(0x3a);            // element 0: 0xa -> (10 - 8) * 2 = 4; element 16: 3 -> -10
  for (int j = 1; j < 16; ++j) block += static_cast<char>(0xf0);  // low 0 -> -16, high 15 -> 14
  const std::vector<float> x = dequantise(kGgmlQ4_0, block);
  EXPECT_EQ(x[0], 4.0f);
  EXPECT_EQ(x[16], -10.0f);
  for (int j = 1; j < 16; ++j) {
    EXPECT_EQ(x[j], -16.0f) << j;
    EXPECT_EQ(x[j + 16], 14.0f) << j;
  }
}

TEST(GgufDequant, Q4_1IsScaleTimesNibblePlusMin) {
  std::string block = bytes_of({0x00, 0x34, 0x00, 0xbc});  // d = 0.25 (0x3400), m = -1 (0xbc00)
  block += static_cast<char>(0x5f);                        // element 0: 15 -> 2.75; element 16: 5 -> 0.25
  for (int j = 1; j < 16; ++j) block += static_cast<char>(j);  // element j: j * 0.25 - 1; element j+16: -1
  const std::vector<float> x = dequantise(kGgmlQ4_1, block + block, 2);
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(x[32 * b], 2.75f);
    EXPECT_EQ(x[32 * b + 16], 0.25f);
    for (int j = 1; j < 16; ++j) {
      EXPECT_EQ(x[32 * b + j], 0.25f * j - 1.0f) << j;
      EXPECT_EQ(x[32 * b + j + 16], -1.0f) << j;
    }
  }
}

TEST(GgufDequant, HalfBfloatAndFloat) {
  EXPECT_EQ(dequantise(kGgmlF16, bytes_of({0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00}), 3),
            (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(dequantise(kGgmlBF16, bytes_of({0x80, 0x3f, 0x40, 0xc0}), 2), (std::vector<float>{1.0f, -3.0f}));
  const float f[2] = {1.5f, -7.25f};
  EXPECT_EQ(dequantise(kGgmlF32, std::string(reinterpret_cast<const char*>(f), 8), 2),
            (std::vector<float>{1.5f, -7.25f}));
}

TEST(GgufDequant, TypeTable) {
  EXPECT_EQ(ggml_type_name(kGgmlQ4_1), "Q4_1");
  EXPECT_EQ(ggml_type_name(14), "Q6_K");
  EXPECT_EQ(ggml_type_name(4), "type 4");  // removed from ggml
  EXPECT_EQ(ggml_type_info(14)->block_bytes, 210u);
  EXPECT_FALSE(ggml_type_info(14)->dequantisable);
}

class GgufFileTest : public test::TempDirTest {
 protected:
  // Every metadata type the getters read, and three tensors of different types.
  GgufWriter sample() const {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.block_count", 30);
    w.add_i64("big", -5000000000);
    w.add_f32("llama.rope.freq_base", 100000.0f);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "a", "\xc4\xa0" "b"});
    w.add_i32_array("tokenizer.ggml.token_type", {2, 1, -1});
    w.add_f32_array("tokenizer.ggml.scores", {0.5f, -1.0f});
    w.add_f32_tensor("norm", {3}, {1.0f, 2.0f, 3.0f});
    std::string q8 = bytes_of({0x00, 0x3c});  // d = 1: values are the bytes
    for (int j = 0; j < 64; ++j) q8 += static_cast<char>(j % 32 - 8);
    q8.insert(34, bytes_of({0x00, 0x40}));  // the second block: d = 2
    q8.erase(36 + 32);
    w.add_tensor("embed", {32, 2}, kGgmlQ8_0, q8);
    w.add_tensor("k_quant", {256}, 14, std::string(210, '\0'));
    return w;
  }

  GgufFile open_bytes(const std::string& bytes) const {
    std::ofstream(path("f.gguf"), std::ios::binary) << bytes;
    return GgufFile::open(path("f.gguf"));
  }

  // The UserError message of opening `bytes`, "" when it opens.
  std::string open_error(const std::string& bytes) const {
    try {
      open_bytes(bytes);
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(GgufFileTest, ReadsMetadataAndTensors) {
  const GgufFile f = open_bytes(sample().bytes());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("big"), -5000000000);
  EXPECT_EQ(f.get_float("llama.rope.freq_base"), 100000.0);
  EXPECT_EQ(f.get_int("tokenizer.ggml.add_bos_token"), 1);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"<unk>", "a", "\xc4\xa0" "b"}));
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type"), (std::vector<int64_t>{2, 1, -1}));
  EXPECT_EQ(f.get_float_array("tokenizer.ggml.scores"), (std::vector<double>{0.5, -1.0}));
  EXPECT_TRUE(f.has("big"));
  EXPECT_FALSE(f.has("nothing"));

  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[1].name, "embed");
  EXPECT_EQ(f.tensors()[1].dims, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(f.read_f32("norm"), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  const std::vector<float> embed = f.read_f32("embed");
  ASSERT_EQ(embed.size(), 64u);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(embed[j], j - 8.0f) << j;
    EXPECT_EQ(embed[32 + j], 2.0f * (j - 8)) << j;
  }
}

TEST_F(GgufFileTest, GettersNameTheKeyAndItsType) {
  const GgufFile f = open_bytes(sample().bytes());
  auto message = [](auto get) {
    try {
      get();
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message([&] { f.get_string("missing.key"); }).find("no metadata key 'missing.key'"), std::string::npos);
  const std::string wrong = message([&] { f.get_int("general.architecture"); });
  EXPECT_NE(wrong.find("f.gguf: metadata key 'general.architecture' is string, not an integer"), std::string::npos)
      << wrong;
  EXPECT_NE(message([&] { f.get_float("llama.block_count"); }).find("is uint32, not a float"), std::string::npos);
  EXPECT_NE(message([&] { f.get_string_array("tokenizer.ggml.token_type"); }).find("is array of int32"),
            std::string::npos);
  const std::string k_quant = message([&] { f.read_f32("k_quant"); });
  EXPECT_NE(k_quant.find("tensor 'k_quant' has type Q6_K, which ringwise cannot dequantise"), std::string::npos)
      << k_quant;
  EXPECT_NE(message([&] { f.read_f32("absent"); }).find("no tensor 'absent'"), std::string::npos);
}

TEST_F(GgufFileTest, EveryTruncationIsAUserError) {
  const std::string whole = sample().bytes();
  for (size_t n = 0; n < whole.size(); ++n) {
    const std::string error = open_error(whole.substr(0, n));
    EXPECT_NE(error, "") << "truncated to " << n << " bytes";
    EXPECT_NE(error.find("f.gguf"), std::string::npos) << error;
  }
}

TEST_F(GgufFileTest, DamageIsNamed) {
  const std::string good = sample().bytes();
  auto damaged = [&](size_t at, const std::string& bytes) { return std::string(good).replace(at, bytes.size(), bytes); };
  EXPECT_NE(open_error(damaged(0, "GGML")).find("not a GGUF file"), std::string::npos);
  std::string v1 = damaged(4, bytes_of({1, 0, 0, 0}));
  EXPECT_NE(open_error(v1).find("GGUF version 1 is not supported"), std::string::npos);

  GgufWriter unknown_value;
  unknown_value.add_raw("odd", bytes_of({13, 0, 0, 0}));
  EXPECT_NE(open_error(unknown_value.bytes()).find("metadata key 'odd' has unknown value type 13"), std::string::npos);

  GgufWriter nested;
  nested.add_raw("nest", bytes_of({9, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_NE(open_error(nested.bytes()).find("metadata key 'nest' is an array of unknown or nested type"),
            std::string::npos);

  GgufWriter huge_array;
  huge_array.add_raw("tokens", bytes_of({9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_NE(open_error(huge_array.bytes()).find("metadata key 'tokens' claims 72057594037927936 elements"),
            std::string::npos);

  GgufWriter twice;
  twice.add_u32("a", 1);
  twice.add_u32("a", 2);
  EXPECT_NE(open_error(twice.bytes()).find("metadata key 'a' appears twice"), std::string::npos);

  GgufWriter unknown_tensor;
  unknown_tensor.add_tensor("t", {32}, 4, std::string(20, '\0'));
  EXPECT_NE(open_error(unknown_tensor.bytes()).find("tensor 't' has unknown tensor type 4"), std::string::npos);

  GgufWriter partial_block;
  partial_block.add_tensor("t", {16}, kGgmlQ4_1, std::string(20, '\0'));
  EXPECT_NE(open_error(partial_block.bytes()).find("tensor 't' rows of 16 values are not a whole number of Q4_1"),
            std::string::npos);

  GgufWriter short_data;
  short_data.add_tensor("t", {64}, kGgmlQ4_1, std::string(20, '\0'));  // two blocks declared, one stored
  const std::string past = open_error(short_data.bytes());
  EXPECT_NE(past.find("tensor 't' (40 bytes at data offset 0) runs past the end of the file"), std::string::npos)
      << past;

  GgufWriter misaligned;
  misaligned.add_u32("general.alignment", 64);
  misaligned.add_f32_tensor("a", {1}, {1.0f});
  misaligned.add_f32_tensor("b", {1}, {2.0f});  // at offset 32
  EXPECT_NE(open_error(misaligned.bytes()).find("tensor 'b' offset 32 is not a multiple of the alignment 64"),
            std::string::npos);
}

TEST_F(GgufFileTest, MissingFileIsNamed) {
  try {
    GgufFile::open(path("absent.gguf"));
    FAIL() << "opened a missing file";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open " + path("absent.gguf")), std::string::npos);
  }
}

}  // namespace
}  // namespace rw
