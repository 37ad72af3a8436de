// A checked reader of GGUF files (the llama.cpp model format, version 2 and 3): a header ("GGUF",
// version, tensor count, metadata count), typed key/value metadata, tensor infos (name, dims in
// ggml order with dims[0] the fastest, type, offset), then the tensor data, aligned to
// general.alignment (default 32) and offsets relative to the start of that data section.
//
// open() parses and checks everything but the tensor bytes: the magic, the version, every length
// against the bytes left, known value and tensor types, each tensor's byte range inside the file.
// Any damage is a UserError naming the file and the field or byte offset. Tensors are read on
// demand with pread, one block-aligned chunk at a time, and dequantised to float32
// (data/gguf_dequant.h lists the types).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rw {

class GgufFile {
 public:
  // One metadata value; arrays hold their elements (nested arrays are refused at open()).
  struct Value {
    uint32_t type = 0;  // the GGUF value type code (gguf_value_type_name() names it)
    std::string string;
    int64_t integer = 0;  // every integer type and bool; uint64 above INT64_MAX is refused
    double real = 0;
    uint32_t array_type = 0;
    std::vector<std::string> strings;
    std::vector<int64_t> integers;
    std::vector<double> reals;
  };

  struct TensorInfo {
    std::string name;
    std::vector<int64_t> dims;  // ggml order: dims[0] is the fastest-varying (the row length)
    uint32_t type = 0;          // ggml type code (data/gguf_dequant.h: gguf_type_name)
    uint64_t offset = 0;        // relative to the data section
    uint64_t numel() const;
  };

  static GgufFile open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }

  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  // Each getter is a UserError naming the file and the key when the key is missing or holds
  // another type.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;  // any integer type, bool too
  double get_float(const std::string& key) const;  // f32/f64
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;  // arrays of any integer type
  std::vector<double> get_float_array(const std::string& key) const;  // arrays of f32/f64

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find(const std::string& tensor_name) const;       // nullptr when absent
  // Tensor `tensor_name` dequantised to float32, row-major in ggml order (dims[0] fastest).
  // UserError naming the file and tensor when it is absent or of a type ringwise cannot read.
  std::vector<float> read_f32(const std::string& tensor_name) const;

 private:
  const Value& get(const std::string& key, const char* wanted) const;

  std::string path_;
  uint32_t version_ = 0;
  uint64_t data_start_ = 0;  // absolute file offset of the data section
  std::map<std::string, Value> metadata_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace rw
