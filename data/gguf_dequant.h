// The ggml tensor types of GGUF files: their names and storage sizes, and dequantisation to float32
// of the ones ringwise imports. A ggml tensor is stored as rows of blocks: `block_elems` values in
// `block_bytes` bytes, rows a whole number of blocks.
//
//   F32, F16, BF16  one value per block, little-endian
//   Q8_0  {f16 d; int8 q[32]}            x = d * q
//   Q4_0  {f16 d; uint8 nibbles[16]}     x = d * (q - 8), q in 0..15
//   Q4_1  {f16 d; f16 m; uint8 nibbles[16]}  x = d * q + m
// In the 4-bit blocks, byte j holds element j in its low nibble and element j + 16 in its high one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace rw {

// The codes of the types ringwise dequantises (ggml's enum ggml_type).
enum GgmlType : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ4_1 = 3, kGgmlQ8_0 = 8, kGgmlBF16 = 30 };

struct GgmlTypeInfo {
  const char* name;  // "Q4_1"
  uint32_t block_elems;
  uint32_t block_bytes;
  bool dequantisable;  // whether gguf_dequantise reads it
};

// nullptr for a type code ggml does not define as a storage type.
const GgmlTypeInfo* ggml_type_info(uint32_t type);
// The type's name, or "type N" for an unknown code.
std::string ggml_type_name(uint32_t type);

// Converts `blocks` blocks of `type` at `src` to blocks * block_elems floats at `out`.
// RW_CHECK that the type is dequantisable (callers check first, to name the tensor).
void gguf_dequantise(uint32_t type, const unsigned char* src, size_t blocks, float* out);

}  // namespace rw
