// A small tensor: shape, dtype, device and storage. Storage is shared between a tensor and its
// views (a flat parameter buffer hands out one view per parameter); memory is 64-byte aligned on
// the CPU and comes from cudaMalloc on a GPU.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace rw {

enum class Device : uint8_t { CPU, CUDA };

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[4, 256]"

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Shape shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(Shape shape, DType dtype = DType::F32, Device device = Device::CPU);

  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + shape_.size() : i); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return numel() * dtype_size(dtype_); }
  bool defined() const { return data_ != nullptr; }

  template <typename T>
  T* data() const { return static_cast<T*>(data_); }
  void* raw() const { return data_; }

  // A view of `shape` starting `offset` elements into this tensor's storage.
  Tensor view(int64_t offset, Shape shape) const;
  void zero_();
  // Copy to another device (or a deep copy on the same device).
  Tensor to(Device device) const;

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
};

// Raw device memory, used by Tensor; the CUDA branch lives in core/cuda/device_memory.cu.
void* device_alloc(Device device, size_t bytes);
void device_free(Device device, void* ptr);
void device_memset_zero(Device device, void* ptr, size_t bytes);
void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

}  // namespace rw
