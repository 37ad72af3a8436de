// The Hugging Face safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}),
// then the raw little-endian tensor bytes, offsets relative to the end of the header.
//
// Reading maps the file and checks all of it before any tensor is handed out: a sane header
// length, valid JSON, known dtypes, shape * element size equal to each byte range, and ranges that
// tile the data section exactly (no overlap, no hole, nothing past the end), as the spec requires.
// Every failure is a UserError naming the file and, where there is one, the tensor.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rw::safetensors {

// The dtypes ringwise reads; all are converted to float32. It writes only F32.
enum class DType { F32, F16, BF16 };

// IEEE half precision to float, exactly (every half is a float): subnormals, infinities, NaN.
float half_to_float(uint16_t bits);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;                  // empty for a scalar
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

// A read-only view of one safetensors file, memory-mapped: opening costs the header only, and
// read() touches just the bytes of the tensor asked for.
class Reader {
 public:
  explicit Reader(const std::string& path);  // validates the whole header; UserError otherwise
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in name order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  // Tensor `name` converted to float32, checked to have `shape`; UserError naming file and tensor.
  void read(const std::string& name, float* out, const Shape& shape) const;

 private:
  std::string path_;
  const unsigned char* map_ = nullptr;
  size_t map_size_ = 0;
  const unsigned char* data_ = nullptr;  // start of the data section
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One float32 tensor to write; `data` holds shape_numel(shape) values.
struct F32Tensor {
  std::string name;
  Shape shape;
  const float* data;
};

// Writes a safetensors file of F32 tensors (laid out in name order, the header padded with spaces
// to a multiple of 8 bytes so every tensor is 8-byte aligned). Overwrites `path`; std::runtime_error
// on an I/O failure.
void write(const std::string& path, const std::vector<F32Tensor>& tensors,
           const std::map<std::string, std::string>& metadata);

}  // namespace rw::safetensors
