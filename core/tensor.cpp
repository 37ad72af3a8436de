#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/check.h"

namespace rw {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape) RW_CHECK(d >= 0, "negative dimension in %s", shape_str(shape).c_str());
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  size_t bytes = t.nbytes();
  void* p = device_alloc(device, bytes ? bytes : 64);
  t.storage_ = std::shared_ptr<void>(p, [device](void* q) { device_free(device, q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::view(int64_t offset, Shape shape) const {
  RW_CHECK(offset >= 0 && offset + shape_numel(shape) <= numel(), "view %s at %lld outside %s",
           shape_str(shape).c_str(), static_cast<long long>(offset), shape_str(shape_).c_str());
  Tensor t = *this;
  t.shape_ = std::move(shape);
  t.data_ = static_cast<char*>(data_) + offset * dtype_size(dtype_);
  return t;
}

void Tensor::zero_() { device_memset_zero(device_, data_, nbytes()); }

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  device_copy(t.data_, device, data_, device_, nbytes());
  return t;
}

#ifndef RINGWISE_HAVE_CUDA
// Without CUDA the GPU branches fail with a message the user can act on.
static void no_cuda() { throw UserError("this ringwise was built without CUDA (configure with -DRINGWISE_CUDA=ON)"); }
void* cuda_alloc(size_t) { no_cuda(); return nullptr; }
void cuda_free(void*) {}
void cuda_memset_zero(void*, size_t) { no_cuda(); }
void cuda_copy(void*, Device, const void*, Device, size_t) { no_cuda(); }
#else
void* cuda_alloc(size_t bytes);
void cuda_free(void* ptr);
void cuda_memset_zero(void* ptr, size_t bytes);
void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
#endif

void* device_alloc(Device device, size_t bytes) {
  if (device == Device::CUDA) return cuda_alloc(bytes);
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  RW_CHECK(p != nullptr, "out of host memory allocating %zu bytes", bytes);
  return p;
}

void device_free(Device device, void* ptr) {
  if (device == Device::CUDA) cuda_free(ptr);
  else std::free(ptr);
}

void device_memset_zero(Device device, void* ptr, size_t bytes) {
  if (device == Device::CUDA) cuda_memset_zero(ptr, bytes);
  else std::memset(ptr, 0, bytes);
}

void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device == Device::CPU && src_device == Device::CPU) std::memcpy(dst, src, bytes);
  else cuda_copy(dst, dst_device, src, src_device, bytes);
}

}  // namespace rw
