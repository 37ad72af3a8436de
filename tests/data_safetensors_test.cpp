// The safetensors reader and writer: exact round trips, a file built byte by byte from the spec,
// half and bfloat16 conversion against hand-computed values, and a UserError naming the file and
// tensor for every kind of damage.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "core/check.h"
#include "data/safetensors.h"

namespace rw::safetensors {
namespace {

namespace fs = std::filesystem;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ringwise_st_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A file of the given header text and data bytes, the length prefix computed here.
  std::string file_with(const std::string& header, const std::string& data, const std::string& name = "t.safetensors") {
    std::ofstream out(path(name), std::ios::binary);
    out << le64(header.size()) << header << data;
    return path(name);
  }

  // The message of the UserError that opening `file` (and reading `tensor` when given) raises.
  std::string open_error(const std::string& file, const std::string& tensor = "", Shape shape = {}) {
    try {
      Reader r(file);
      std::vector<float> out(64);
      if (!tensor.empty()) r.read(tensor, out.data(), shape);
    } catch (const UserError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no UserError for " << file;
    return "";
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, WriteThenReadIsExact) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> a(6 * 5), b(7), c(1);
  for (float& x : a) x = normal(gen);
  for (float& x : b) x = normal(gen);
  b[3] = -0.0f;
  b[4] = 1e-40f;  // subnormal
  c[0] = 123.456f;
  const std::string file = path("rt.safetensors");
  write(file, {{"z.weight", {6, 5}, a.data()}, {"a.bias", {7}, b.data()}, {"scalar", {}, c.data()}},
        {{"format", "pt"}, {"note", "hello"}});

  Reader r(file);
  ASSERT_EQ(r.tensors().size(), 3u);
  EXPECT_EQ(r.tensors()[0].name, "a.bias");  // name order
  EXPECT_EQ(r.tensors()[2].name, "z.weight");
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.metadata().at("note"), "hello");
  std::vector<float> a2(a.size()), b2(b.size()), c2(1);
  r.read("z.weight", a2.data(), {6, 5});
  r.read("a.bias", b2.data(), {7});
  r.read("scalar", c2.data(), {});
  EXPECT_EQ(std::memcmp(a.data(), a2.data(), a.size() * 4), 0);
  EXPECT_EQ(std::memcmp(b.data(), b2.data(), b.size() * 4), 0);
  EXPECT_EQ(std::memcmp(c.data(), c2.data(), 4), 0);

  // The header is padded so the data section, and so every F32 tensor, starts 8-byte aligned.
  std::ifstream in(file, std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(fs::file_size(file), 8 + n + (a.size() + b.size() + c.size()) * 4);
}

TEST_F(SafetensorsTest, ReadsAHandBuiltFile) {
  // Three tensors, listed out of order, of the three dtypes, with trailing header padding:
  //   a F32 [2] = 1.0, -2.5 (0x3f800000, 0xc0200000)
  //   b F16 [2] = 1.0, -2.0 (0x3c00, 0xc000)
  //   c BF16 [1, 2] = 1.0, 3.0 (0x3f80, 0x4040)
  const std::string header = R"({"c":{"dtype":"BF16","shape":[1,2],"data_offsets":[12,16]},)"
                             R"("__metadata__":{"format":"pt"},)"
                             R"("b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   )";
  const std::string data(
      "\x00\x00\x80\x3f\x00\x00\x20\xc0"
      "\x00\x3c\x00\xc0"
      "\x80\x3f\x40\x40",
      16);
  Reader r(file_with(header, data));
  ASSERT_EQ(r.tensors().size(), 3u);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  const TensorInfo* c = r.find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, DType::BF16);
  EXPECT_EQ(c->shape, (Shape{1, 2}));
  EXPECT_EQ(r.find("d"), nullptr);
  float a[2], b[2], cv[2];
  r.read("a", a, {2});
  r.read("b", b, {2});
  r.read("c", cv, {1, 2});
  EXPECT_EQ(a[0], 1.0f);
  EXPECT_EQ(a[1], -2.5f);
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], -2.0f);
  EXPECT_EQ(cv[0], 1.0f);
  EXPECT_EQ(cv[1], 3.0f);
}

TEST_F(SafetensorsTest, HalfConversionMatchesHandComputedValues) {
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);        // 1365/4096
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);               // largest half
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(half_to_float(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(half_to_float(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(half_to_float(0x8000)));
  EXPECT_EQ(half_to_float(0x7c00), INFINITY);
  EXPECT_EQ(half_to_float(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(half_to_float(0x7e00)));
  EXPECT_TRUE(std::isnan(half_to_float(0x7c01)));
#ifdef __FLT16_MAX__
  // Every one of the 65536 halves against the compiler's own _Float16 conversion.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    _Float16 f16;
    std::memcpy(&f16, &h, 2);
    const float want = static_cast<float>(f16), got = half_to_float(h);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << bits;
    } else {
      ASSERT_EQ(std::memcmp(&want, &got, 4), 0) << std::hex << bits;
    }
  }
#endif
}

TEST_F(SafetensorsTest, Bf16TensorsConvertExactly) {
  // 0x4049 = 3.140625, 0xbf00 = -0.5, 0x0001 = 2^-133 (subnormal), 0x7f80 = infinity.
  const std::string header = R"({"x":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})";
  const std::string data("\x49\x40\x00\xbf\x01\x00\x80\x7f", 8);
  Reader r(file_with(header, data));
  float x[4];
  r.read("x", x, {4});
  EXPECT_EQ(x[0], 3.140625f);
  EXPECT_EQ(x[1], -0.5f);
  EXPECT_EQ(x[2], std::ldexp(1.0f, -133));
  EXPECT_EQ(x[3], INFINITY);
}

// Each damaged file names the file, and the tensor when one is at fault.
TEST_F(SafetensorsTest, DamagedFilesAreUserErrorsNamingFileAndTensor) {
  const std::string d8(8, '\0');
  auto expect_error = [&](const std::string& file, const std::string& tensor, const std::string& words) {
    const std::string msg = open_error(file);
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    if (!tensor.empty()) {
      EXPECT_NE(msg.find("'" + tensor + "'"), std::string::npos) << msg;
    }
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  };
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, int b, int e) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(b) + "," + std::to_string(e) + "]}";
  };

  expect_error(path("missing.safetensors"), "", "cannot open");
  {
    std::ofstream(path("short.safetensors"), std::ios::binary) << "abc";
    expect_error(path("short.safetensors"), "", "shorter than");
  }
  {
    std::ofstream(path("huge.safetensors"), std::ios::binary) << le64(1000) << "{}";
    expect_error(path("huge.safetensors"), "", "header length 1000");
  }
  expect_error(file_with("[1, 2]", ""), "", "does not start with a JSON object");
  expect_error(file_with("{\"a\": ", d8), "", "not valid JSON");
  expect_error(file_with("{" + entry("w", "I64", "[1]", 0, 8) + "}", d8), "w", "dtype I64");
  expect_error(file_with("{" + entry("w", "F32", "[-2]", 0, 8) + "}", d8), "w", "non-negative integer");
  expect_error(file_with("{" + entry("w", "F32", "[1.5]", 0, 8) + "}", d8), "w", "non-negative integer");
  expect_error(file_with("{" + entry("w", "F32", "[3]", 0, 8) + "}", d8), "w", "needs 12 bytes");
  expect_error(file_with("{" + entry("w", "F32", "[4294967296,4294967296]", 0, 8) + "}", d8), "w", "too large");
  expect_error(file_with("{" + entry("w", "F32", "[0]", 8, 0) + "}", d8), "w", "end before they begin");
  expect_error(file_with(R"({"w":{"dtype":"F32","shape":[2]}})", d8), "w", "data_offsets");
  expect_error(file_with(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", d8), "w", "dtype");
  expect_error(file_with(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", d8), "w", "shape");
  expect_error(file_with(R"({"w":[1]})", d8), "w", "not a JSON object");
  expect_error(file_with("{" + entry("w", "F32", "[2]", 0, 8) + "," + entry("v", "F16", "[2]", 4, 8) + "}", d8), "v",
               "overlap");
  expect_error(file_with("{" + entry("w", "F32", "[1]", 4, 8) + "}", d8), "w", "hole");
  expect_error(file_with("{" + entry("w", "F32", "[4]", 0, 16) + "}", d8), "w", "run past the data section");
  expect_error(file_with("{" + entry("w", "F32", "[1]", 0, 4) + "}", d8), "", "cover only 4");
  expect_error(file_with(R"({"__metadata__":{"format":1}})", ""), "", "__metadata__ value 'format'");
  expect_error(file_with(R"({"__metadata__":[]})", ""), "", "__metadata__ is not a JSON object");

  // A valid file, asked for a tensor it lacks or with the wrong shape.
  const std::string ok = file_with("{" + entry("w", "F32", "[2]", 0, 8) + "}", d8, "ok.safetensors");
  EXPECT_NE(open_error(ok, "v", {2}).find("no tensor 'v'"), std::string::npos);
  const std::string msg = open_error(ok, "w", {2, 1});
  EXPECT_NE(msg.find(ok + ": tensor 'w' has shape [2], expected [2, 1]"), std::string::npos) << msg;
}

}  // namespace
}  // namespace rw::safetensors
