#include "data/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/check.h"
#include "core/dtype.h"

// The format is little-endian; reading and writing copy bytes as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace rw::safetensors {
namespace {

using nlohmann::json;

// The reference implementation's limit: a larger header is a corrupt length, not a real model.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

size_t dtype_bytes(DType t) { return t == DType::F32 ? 4 : 2; }

bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}};
  for (const auto& [name, dtype] : kNames) {
    if (s == name) {
      *out = dtype;
      return true;
    }
  }
  return false;
}

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

TensorInfo parse_entry(const std::string& path, const std::string& name, const json& e) {
  const std::string where = path + ": tensor '" + name + "'";
  RW_USER_CHECK(e.is_object(), "%s: header entry is not a JSON object", where.c_str());
  RW_USER_CHECK(e.contains("dtype") && e["dtype"].is_string(), "%s: missing or non-string \"dtype\"", where.c_str());
  TensorInfo t;
  t.name = name;
  const std::string dtype = e["dtype"].get<std::string>();
  RW_USER_CHECK(parse_dtype(dtype, &t.dtype), "%s: dtype %s is not supported (ringwise reads F32, F16, BF16)",
                where.c_str(), dtype.c_str());

  RW_USER_CHECK(e.contains("shape") && e["shape"].is_array(), "%s: missing or non-array \"shape\"", where.c_str());
  uint64_t numel = 1;
  for (const json& d : e["shape"]) {
    RW_USER_CHECK(d.is_number_unsigned(), "%s: shape %s has an entry that is not a non-negative integer", where.c_str(),
                  e["shape"].dump().c_str());
    const uint64_t n = d.get<uint64_t>();
    RW_USER_CHECK(n <= static_cast<uint64_t>(INT64_MAX) && !__builtin_mul_overflow(numel, n, &numel),
                  "%s: shape %s is too large", where.c_str(), e["shape"].dump().c_str());
    t.shape.push_back(static_cast<int64_t>(n));
  }

  const json& offsets = e.contains("data_offsets") ? e["data_offsets"] : json();
  RW_USER_CHECK(
      offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
      "%s: \"data_offsets\" must be [begin, end], two non-negative integers", where.c_str());
  t.begin = offsets[0].get<uint64_t>();
  t.end = offsets[1].get<uint64_t>();
  RW_USER_CHECK(t.begin <= t.end, "%s: data_offsets [%llu, %llu] end before they begin", where.c_str(),
                static_cast<unsigned long long>(t.begin), static_cast<unsigned long long>(t.end));
  uint64_t bytes = 0;
  RW_USER_CHECK(!__builtin_mul_overflow(numel, dtype_bytes(t.dtype), &bytes) && bytes == t.end - t.begin,
                "%s: shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu", where.c_str(),
                e["shape"].dump().c_str(), dtype.c_str(), static_cast<unsigned long long>(bytes),
                static_cast<unsigned long long>(t.begin), static_cast<unsigned long long>(t.end),
                static_cast<unsigned long long>(t.end - t.begin));
  return t;
}

// The spec requires the byte ranges to tile the data section: no overlap, no hole, no excess.
void check_tiling(const std::string& path, std::vector<TensorInfo> tensors, uint64_t data_size) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const TensorInfo& t : tensors) {
    RW_USER_CHECK(t.begin >= at,
                  "%s: tensor '%s' data_offsets [%llu, %llu] overlap the previous tensor's (ending at %llu)",
                  path.c_str(), t.name.c_str(), static_cast<unsigned long long>(t.begin),
                  static_cast<unsigned long long>(t.end), static_cast<unsigned long long>(at));
    RW_USER_CHECK(t.begin == at, "%s: tensor '%s' starts at byte %llu, leaving a hole after byte %llu", path.c_str(),
                  t.name.c_str(), static_cast<unsigned long long>(t.begin), static_cast<unsigned long long>(at));
    RW_USER_CHECK(t.end <= data_size,
                  "%s: tensor '%s' data_offsets [%llu, %llu] run past the data section (%llu bytes)", path.c_str(),
                  t.name.c_str(), static_cast<unsigned long long>(t.begin), static_cast<unsigned long long>(t.end),
                  static_cast<unsigned long long>(data_size));
    at = t.end;
  }
  RW_USER_CHECK(at == data_size, "%s: the data section has %llu bytes but the tensors cover only %llu", path.c_str(),
                static_cast<unsigned long long>(data_size), static_cast<unsigned long long>(at));
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {  // infinity or NaN: all-ones exponent, mantissa (payload) kept
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {  // normal: rebias the exponent from 15 to 127
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal half = mant * 2^-24: shift it up into a normal float
    int e = 113;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

Reader::Reader(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  RW_USER_CHECK(fd >= 0, "cannot open %s: %s", path.c_str(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UserError(path + ": not a regular file");
  }
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    throw UserError(format("%s: not a safetensors file (%zu bytes, shorter than the 8-byte header length)",
                           path.c_str(), map_size_));
  }
  void* m = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED) throw std::runtime_error(format("mmap %s failed: %s", path.c_str(), std::strerror(map_errno)));
  map_ = static_cast<const unsigned char*>(m);

  try {
    const uint64_t header_len = read_le64(map_);
    RW_USER_CHECK(header_len <= map_size_ - 8 && header_len <= kMaxHeaderBytes,
                  "%s: header length %llu does not fit the file (%zu bytes) or exceeds 100 MB; not a safetensors file?",
                  path.c_str(), static_cast<unsigned long long>(header_len), map_size_);
    RW_USER_CHECK(header_len >= 2 && map_[8] == '{', "%s: the header does not start with a JSON object", path.c_str());
    json header;
    try {
      header = json::parse(map_ + 8, map_ + 8 + header_len);
    } catch (const json::parse_error& e) {
      throw UserError(path + ": header is not valid JSON: " + e.what());
    }
    RW_USER_CHECK(header.is_object(), "%s: header is not a JSON object", path.c_str());
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        RW_USER_CHECK(value.is_object(), "%s: __metadata__ is not a JSON object", path.c_str());
        for (const auto& [k, v] : value.items()) {
          RW_USER_CHECK(v.is_string(), "%s: __metadata__ value '%s' is not a string", path.c_str(), k.c_str());
          metadata_[k] = v.get<std::string>();
        }
      } else {
        tensors_.push_back(parse_entry(path, key, value));
      }
    }
    data_ = map_ + 8 + header_len;
    check_tiling(path, tensors_, map_size_ - 8 - header_len);
  } catch (...) {
    ::munmap(const_cast<unsigned char*>(map_), map_size_);
    throw;
  }
}

Reader::~Reader() { ::munmap(const_cast<unsigned char*>(map_), map_size_); }

const TensorInfo* Reader::find(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo& t, const std::string& n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

void Reader::read(const std::string& name, float* out, const Shape& shape) const {
  const TensorInfo* t = find(name);
  RW_USER_CHECK(t, "%s: no tensor '%s'", path_.c_str(), name.c_str());
  RW_USER_CHECK(t->shape == shape, "%s: tensor '%s' has shape %s, expected %s", path_.c_str(), name.c_str(),
                shape_str(t->shape).c_str(), shape_str(shape).c_str());
  const unsigned char* src = data_ + t->begin;
  const size_t n = static_cast<size_t>(shape_numel(shape));
  if (t->dtype == DType::F32) {
    std::memcpy(out, src, n * 4);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    out[i] = t->dtype == DType::F16 ? half_to_float(h) : bf16_to_float(bf16{h});
  }
}

void write(const std::string& path, const std::vector<F32Tensor>& tensors,
           const std::map<std::string, std::string>& metadata) {
  std::vector<const F32Tensor*> order;
  for (const F32Tensor& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const F32Tensor* a, const F32Tensor* b) { return a->name < b->name; });

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const F32Tensor* t : order) {
    RW_CHECK(t->name != "__metadata__" && !header.contains(t->name), "tensor name '%s' reserved or repeated",
             t->name.c_str());
    const uint64_t bytes = static_cast<uint64_t>(shape_numel(t->shape)) * 4;
    header[t->name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section, and so each tensor, 8-byte aligned

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(format("cannot create %s: %s", path.c_str(), std::strerror(errno)));
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<uint64_t>(text.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const F32Tensor* t : order)
    out.write(reinterpret_cast<const char*>(t->data), static_cast<std::streamsize>(shape_numel(t->shape) * 4));
  out.flush();
  if (!out) throw std::runtime_error(format("writing %s failed: %s", path.c_str(), std::strerror(errno)));
}

}  // namespace rw::safetensors
