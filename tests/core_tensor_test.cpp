// Tensor storage and views, the bf16 storage type and the user-error check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace rw {
namespace {

TEST(Tensor, EmptyAndZeros) {
  Tensor t = Tensor::empty({4, 256});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.numel(), 1024);
  EXPECT_EQ(t.ndim(), 2);
  EXPECT_EQ(t.dim(-1), 256);
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_EQ(t.device(), Device::CPU);
  EXPECT_EQ(t.nbytes(), 4096u);
  EXPECT_EQ(Tensor::empty({3, 5}, DType::BF16).nbytes(), 30u);
  EXPECT_FALSE(Tensor().defined());

  Tensor z = Tensor::zeros({3, 7});
  for (int64_t i = 0; i < z.numel(); ++i) ASSERT_EQ(z.data<float>()[i], 0.0f);
}

TEST(Tensor, ShapeHelpers) {
  EXPECT_EQ(shape_str({4, 256}), "[4, 256]");
  EXPECT_EQ(shape_str({7}), "[7]");
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_numel({5, 0}), 0);
}

// Every allocation starts on a 64-byte boundary (one AVX-512 register, one cache line), whatever
// its size or element type.
TEST(Tensor, SixtyFourByteAligned) {
  for (int64_t n : {0, 1, 3, 17, 1000})
    for (DType dt : {DType::F32, DType::BF16, DType::I32})
      EXPECT_EQ(reinterpret_cast<uintptr_t>(Tensor::empty({n}, dt).raw()) % 64, 0u) << n << " " << dtype_name(dt);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor flat = Tensor::zeros({10});
  Tensor v = flat.view(4, {2, 3});
  EXPECT_EQ(v.shape(), (Shape{2, 3}));
  EXPECT_EQ(v.data<float>(), flat.data<float>() + 4);
  v.data<float>()[0] = 1.5f;
  EXPECT_EQ(flat.data<float>()[4], 1.5f);
  flat.data<float>()[3] = 2.0f;
  v.zero_();  // zeroes only the view's elements
  EXPECT_EQ(flat.data<float>()[3], 2.0f);
  EXPECT_EQ(flat.data<float>()[4], 0.0f);

  // A view keeps the storage alive after the tensor it came from is gone.
  Tensor survivor;
  {
    Tensor t = Tensor::zeros({8});
    t.data<float>()[7] = 3.0f;
    survivor = t.view(6, {2});
  }
  EXPECT_EQ(survivor.data<float>()[1], 3.0f);
}

TEST(Tensor, ToCpuIsADeepCopy) {
  Tensor a = Tensor::empty({5}, DType::I32);
  for (int i = 0; i < 5; ++i) a.data<int32_t>()[i] = i * i;
  Tensor b = a.to(Device::CPU);
  EXPECT_NE(b.raw(), a.raw());
  EXPECT_EQ(b.shape(), a.shape());
  EXPECT_EQ(b.dtype(), DType::I32);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.data<int32_t>()[i], i * i);
  b.data<int32_t>()[2] = -1;
  EXPECT_EQ(a.data<int32_t>()[2], 4);
}

TEST(Bf16, EveryValueRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    bf16 h{static_cast<uint16_t>(bits)};
    float f = bf16_to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(float_to_bf16(f).bits, h.bits) << "bits " << bits;
  }
}

// bf16 keeps 8 significant bits: near 1 its spacing is 2^-7.
TEST(Bf16, RoundsToNearestEven) {
  auto rt = [](float f) { return bf16_to_float(float_to_bf16(f)); };
  EXPECT_EQ(rt(1.0f + 0x1p-8f), 1.0f);                           // tie: down to the even neighbour
  EXPECT_EQ(rt(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);             // tie: up to the even neighbour
  EXPECT_EQ(rt(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);      // above the tie: up
  EXPECT_EQ(rt(-2.5f), -2.5f);
  EXPECT_EQ(rt(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(rt(std::numeric_limits<float>::quiet_NaN())));
  // A NaN whose payload sits only in the low 16 bits must not round into infinity.
  const uint32_t low_payload_nan = 0x7f800001u;
  float f;
  std::memcpy(&f, &low_payload_nan, sizeof f);
  EXPECT_TRUE(std::isnan(rt(f)));
  for (float x : {0.1f, -3.14159f, 1e-20f, 6.5e4f}) EXPECT_LE(std::fabs(rt(x) - x), std::fabs(x) * 0x1p-9f) << x;
}

TEST(Check, UserCheckThrowsUserErrorWithFormattedMessage) {
  int heads = 6;
  try {
    RW_USER_CHECK(256 % heads == 0, "expected heads to divide d_model=%d, got %d", 256, heads);
    FAIL() << "RW_USER_CHECK did not throw";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "expected heads to divide d_model=256, got 6");
  }
  // On success the message arguments are not evaluated.
  int evaluated = 0;
  RW_USER_CHECK(true, "%d", ++evaluated);
  EXPECT_EQ(evaluated, 0);
}

}  // namespace
}  // namespace rw
