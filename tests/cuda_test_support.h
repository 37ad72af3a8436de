// Helpers shared by the CUDA tests: a device copy of a host vector, and the skip without a GPU.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

namespace rw::test {

inline bool have_cuda_device() {
  int devices = 0;
  return cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
}

// A device copy of a host vector, freed on scope exit.
template <typename T>
class DeviceVec {
 public:
  explicit DeviceVec(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr_, bytes()), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceVec() { cudaFree(ptr_); }
  DeviceVec(const DeviceVec&) = delete;
  DeviceVec& operator=(const DeviceVec&) = delete;
  T* get() const { return ptr_; }
  std::vector<T> host() const {
    std::vector<T> out(n_);
    EXPECT_EQ(cudaMemcpy(out.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }

 private:
  size_t bytes() const { return n_ > 0 ? n_ * sizeof(T) : 1; }  // cudaMalloc(0) hands back no pointer
  T* ptr_ = nullptr;
  size_t n_;
};

}  // namespace rw::test
