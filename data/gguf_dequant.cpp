#include "data/gguf_dequant.h"

#include <cstring>

#include "core/check.h"
#include "core/dtype.h"
#include "data/safetensors.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF reading assumes a little-endian host");

namespace rw {
namespace {

// Sizes from ggml's block structs (ggml-common.h); codes 4 and 5 were removed from ggml, 9 (Q8_1)
// is a dot-product intermediate that files do not hold, and 31-33, 36-38 were repacked variants.
struct TypeEntry {
  uint32_t code;
  GgmlTypeInfo info;
};
constexpr TypeEntry kTypes[] = {
    {0, {"F32", 1, 4, true}},          {1, {"F16", 1, 2, true}},         {2, {"Q4_0", 32, 18, true}},
    {3, {"Q4_1", 32, 20, true}},       {6, {"Q5_0", 32, 22, false}},     {7, {"Q5_1", 32, 24, false}},
    {8, {"Q8_0", 32, 34, true}},       {10, {"Q2_K", 256, 84, false}},   {11, {"Q3_K", 256, 110, false}},
    {12, {"Q4_K", 256, 144, false}},   {13, {"Q5_K", 256, 176, false}},  {14, {"Q6_K", 256, 210, false}},
    {15, {"Q8_K", 256, 292, false}},   {16, {"IQ2_XXS", 256, 66, false}}, {17, {"IQ2_XS", 256, 74, false}},
    {18, {"IQ3_XXS", 256, 98, false}}, {19, {"IQ1_S", 256, 50, false}},  {20, {"IQ4_NL", 32, 18, false}},
    {21, {"IQ3_S", 256, 110, false}},  {22, {"IQ2_S", 256, 82, false}},  {23, {"IQ4_XS", 256, 136, false}},
    {24, {"I8", 1, 1, false}},         {25, {"I16", 1, 2, false}},       {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},        {28, {"F64", 1, 8, false}},       {29, {"IQ1_M", 256, 56, false}},
    {30, {"BF16", 1, 2, true}},        {34, {"TQ1_0", 256, 54, false}},  {35, {"TQ2_0", 256, 66, false}},
    {39, {"MXFP4", 32, 17, false}},
};

uint16_t load_u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float load_half(const unsigned char* p) { return safetensors::half_to_float(load_u16(p)); }

// 32 four-bit values q (byte j: element j low, element j + 16 high) as scale * q + offset.
void unpack_nibbles(const unsigned char* nibbles, float scale, float offset, float* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = scale * static_cast<float>(nibbles[j] & 0x0f) + offset;
    out[j + 16] = scale * static_cast<float>(nibbles[j] >> 4) + offset;
  }
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  for (const TypeEntry& e : kTypes)
    if (e.code == type) return &e.info;
  return nullptr;
}

std::string ggml_type_name(uint32_t type) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  return info ? info->name : "type " + std::to_string(type);
}

void gguf_dequantise(uint32_t type, const unsigned char* src, size_t blocks, float* out) {
  switch (type) {
    case kGgmlF32:
      std::memcpy(out, src, blocks * 4);
      return;
    case kGgmlF16:
      for (size_t i = 0; i < blocks; ++i) out[i] = load_half(src + 2 * i);
      return;
    case kGgmlBF16:
      for (size_t i = 0; i < blocks; ++i) out[i] = bf16_to_float(bf16{load_u16(src + 2 * i)});
      return;
    case kGgmlQ8_0:
      for (size_t b = 0; b < blocks; ++b, src += 34, out += 32) {
        const float d = load_half(src);
        for (int j = 0; j < 32; ++j) out[j] = d * static_cast<float>(static_cast<int8_t>(src[2 + j]));
      }
      return;
    case kGgmlQ4_0:
      for (size_t b = 0; b < blocks; ++b, src += 18, out += 32) {
        const float d = load_half(src);  // d * q - 8d equals d * (q - 8) exactly: 11-bit d, 4-bit q
        unpack_nibbles(src + 2, d, -8.0f * d, out);
      }
      return;
    case kGgmlQ4_1:
      for (size_t b = 0; b < blocks; ++b, src += 20, out += 32) unpack_nibbles(src + 4, load_half(src), load_half(src + 2), out);
      return;
    default:
      RW_CHECK(false, "gguf_dequantise called for %s", ggml_type_name(type).c_str());
  }
}

}  // namespace rw
