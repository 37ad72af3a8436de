#include "data/gguf_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/check.h"
#include "data/gguf_dequant.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF reading assumes a little-endian host");

namespace rw {
namespace {

enum ValueType : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64, kValueTypes
};
constexpr const char* kValueTypeNames[kValueTypes] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                                      "bool",  "string", "array",  "uint64", "int64", "float64"};
// Bytes of a scalar value; a string's length prefix for strings (its least size).
constexpr uint64_t kValueBytes[kValueTypes] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 0, 8, 8, 8};

bool is_integer(uint32_t t) { return t <= kI32 || t == kBool || t == kU64 || t == kI64; }
bool is_real(uint32_t t) { return t == kF32 || t == kF64; }

std::string value_type_name(uint32_t type, uint32_t array_type) {
  if (type == kArray) return "array of " + std::string(kValueTypeNames[array_type]);
  return kValueTypeNames[type];
}

constexpr uint32_t kDefaultAlignment = 32;  // when general.alignment is absent
constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS
constexpr size_t kChunkBytes = 4u << 20;    // what one pread brings in

// An open file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    RW_USER_CHECK(fd_ >= 0, "cannot open %s: %s", path.c_str(), std::strerror(errno));
    struct stat st {};
    const bool regular = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    size_ = static_cast<uint64_t>(st.st_size);
    if (!regular) {
      ::close(fd_);
      throw UserError(path + ": not a regular file");
    }
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  uint64_t size() const { return size_; }

  // Exactly n bytes at `offset`; UserError naming `what` when the file ends first.
  void read_at(uint64_t offset, void* out, size_t n, const std::string& path, const std::string& what) const {
    auto* p = static_cast<char*>(out);
    while (n > 0) {
      const ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      RW_USER_CHECK(got >= 0, "%s: reading %s at byte %llu failed: %s", path.c_str(), what.c_str(),
                    static_cast<unsigned long long>(offset), std::strerror(errno));
      RW_USER_CHECK(got > 0, "%s: truncated: the file ends at byte %llu, inside %s", path.c_str(),
                    static_cast<unsigned long long>(offset), what.c_str());
      p += got;
      n -= static_cast<size_t>(got);
      offset += static_cast<uint64_t>(got);
    }
  }

 private:
  int fd_;
  uint64_t size_ = 0;
};

// Reads the header front to back through a buffer of kChunkBytes; every read names its field.
class HeaderCursor {
 public:
  HeaderCursor(const Fd& fd, const std::string& path) : fd_(fd), path_(path) {}

  uint64_t offset() const { return offset_; }
  uint64_t left() const { return fd_.size() - offset_; }

  void read(void* out, size_t n, const std::string& what) {
    RW_USER_CHECK(n <= left(), "%s: truncated: %s at byte %llu needs %zu bytes, the file has %llu left",
                  path_.c_str(), what.c_str(), static_cast<unsigned long long>(offset_), n,
                  static_cast<unsigned long long>(left()));
    auto* p = static_cast<unsigned char*>(out);
    while (n > 0) {
      if (offset_ >= buf_start_ + buf_.size() || offset_ < buf_start_) {
        buf_start_ = offset_;
        buf_.resize(static_cast<size_t>(std::min<uint64_t>(kChunkBytes, left())));
        fd_.read_at(buf_start_, buf_.data(), buf_.size(), path_, what);
      }
      const size_t at = static_cast<size_t>(offset_ - buf_start_), take = std::min(n, buf_.size() - at);
      std::memcpy(p, buf_.data() + at, take);
      p += take;
      n -= take;
      offset_ += take;
    }
  }
  template <class T>
  T scalar(const std::string& what) {
    T v;
    read(&v, sizeof v, what);
    return v;
  }
  std::string string(const std::string& what) {
    const uint64_t n = scalar<uint64_t>(what + " length");
    RW_USER_CHECK(n <= left(), "%s: %s at byte %llu claims %llu bytes, more than the %llu left in the file",
                  path_.c_str(), what.c_str(), static_cast<unsigned long long>(offset_ - 8),
                  static_cast<unsigned long long>(n), static_cast<unsigned long long>(left()));
    std::string s(static_cast<size_t>(n), '\0');
    read(s.data(), s.size(), what);
    return s;
  }

 private:
  const Fd& fd_;
  const std::string& path_;
  uint64_t offset_ = 0;
  uint64_t buf_start_ = 0;
  std::vector<unsigned char> buf_;
};

// One scalar of `type` into an integer or a real; uint64 above INT64_MAX is refused.
void read_scalar(HeaderCursor& in, uint32_t type, int64_t* integer, double* real, const std::string& path,
                 const std::string& what) {
  switch (type) {
    case kU8: *integer = in.scalar<uint8_t>(what); return;
    case kI8: *integer = in.scalar<int8_t>(what); return;
    case kU16: *integer = in.scalar<uint16_t>(what); return;
    case kI16: *integer = in.scalar<int16_t>(what); return;
    case kU32: *integer = in.scalar<uint32_t>(what); return;
    case kI32: *integer = in.scalar<int32_t>(what); return;
    case kI64: *integer = in.scalar<int64_t>(what); return;
    case kBool: {
      const uint8_t b = in.scalar<uint8_t>(what);
      RW_USER_CHECK(b <= 1, "%s: %s is a bool of value %u (not 0 or 1)", path.c_str(), what.c_str(), b);
      *integer = b;
      return;
    }
    case kU64: {
      const uint64_t v = in.scalar<uint64_t>(what);
      RW_USER_CHECK(v <= static_cast<uint64_t>(INT64_MAX), "%s: %s = %llu does not fit in int64", path.c_str(),
                    what.c_str(), static_cast<unsigned long long>(v));
      *integer = static_cast<int64_t>(v);
      return;
    }
    case kF32: *real = in.scalar<float>(what); return;
    case kF64: *real = in.scalar<double>(what); return;
    default: RW_CHECK(false, "read_scalar of value type %u", type);
  }
}

GgufFile::Value read_value(HeaderCursor& in, const std::string& path, const std::string& what) {
  GgufFile::Value v;
  const uint64_t type_at = in.offset();
  v.type = in.scalar<uint32_t>(what + " type");
  RW_USER_CHECK(v.type < kValueTypes, "%s: %s has unknown value type %u (at byte %llu)", path.c_str(), what.c_str(),
                v.type, static_cast<unsigned long long>(type_at));
  if (v.type == kString) {
    v.string = in.string(what);
  } else if (v.type != kArray) {
    read_scalar(in, v.type, &v.integer, &v.real, path, what);
  } else {
    v.array_type = in.scalar<uint32_t>(what + " element type");
    RW_USER_CHECK(v.array_type < kValueTypes && v.array_type != kArray,
                  "%s: %s is an array of unknown or nested type %u (at byte %llu)", path.c_str(), what.c_str(),
                  v.array_type, static_cast<unsigned long long>(in.offset() - 4));
    const uint64_t n = in.scalar<uint64_t>(what + " length");
    RW_USER_CHECK(n <= in.left() / kValueBytes[v.array_type],
                  "%s: %s claims %llu elements of %s, more than the %llu bytes left in the file hold", path.c_str(),
                  what.c_str(), static_cast<unsigned long long>(n), kValueTypeNames[v.array_type],
                  static_cast<unsigned long long>(in.left()));
    for (uint64_t i = 0; i < n; ++i) {
      const std::string element = what + "[" + std::to_string(i) + "]";
      if (v.array_type == kString) {
        v.strings.push_back(in.string(element));
      } else {
        int64_t integer = 0;
        double real = 0;
        read_scalar(in, v.array_type, &integer, &real, path, element);
        if (is_real(v.array_type))
          v.reals.push_back(real);
        else
          v.integers.push_back(integer);
      }
    }
  }
  return v;
}

// A key holding another type than its getter's: the message names both.
void check_type(bool ok, const std::string& path, const std::string& key, const GgufFile::Value& v,
                const char* wanted) {
  RW_USER_CHECK(ok, "%s: metadata key '%s' is %s, not %s", path.c_str(), key.c_str(),
                value_type_name(v.type, v.array_type).c_str(), wanted);
}

GgufFile::TensorInfo read_tensor_info(HeaderCursor& in, const std::string& path, uint64_t index) {
  GgufFile::TensorInfo t;
  t.name = in.string("tensor info " + std::to_string(index) + " name");
  const std::string what = "tensor '" + t.name + "'";
  const uint32_t n_dims = in.scalar<uint32_t>(what + " dimension count");
  RW_USER_CHECK(n_dims >= 1 && n_dims <= kMaxDims, "%s: %s has %u dimensions (GGUF allows 1 to %u)", path.c_str(),
                what.c_str(), n_dims, kMaxDims);
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t n = in.scalar<uint64_t>(what + " dimension " + std::to_string(d));
    RW_USER_CHECK(n >= 1 && n <= static_cast<uint64_t>(INT64_MAX) && !__builtin_mul_overflow(numel, n, &numel) &&
                      numel <= static_cast<uint64_t>(INT64_MAX),
                  "%s: %s dimension %u = %llu is zero or too large", path.c_str(), what.c_str(), d,
                  static_cast<unsigned long long>(n));
    t.dims.push_back(static_cast<int64_t>(n));
  }
  t.type = in.scalar<uint32_t>(what + " type");
  const GgmlTypeInfo* info = ggml_type_info(t.type);
  RW_USER_CHECK(info, "%s: %s has unknown tensor type %u", path.c_str(), what.c_str(), t.type);
  RW_USER_CHECK(t.dims[0] % info->block_elems == 0,
                "%s: %s rows of %lld values are not a whole number of %s blocks (%u values each)", path.c_str(),
                what.c_str(), static_cast<long long>(t.dims[0]), info->name, info->block_elems);
  RW_USER_CHECK(numel / info->block_elems <= UINT64_MAX / info->block_bytes, "%s: %s is too large", path.c_str(),
                what.c_str());
  t.offset = in.scalar<uint64_t>(what + " offset");
  return t;
}

uint64_t tensor_bytes(const GgufFile::TensorInfo& t) {
  const GgmlTypeInfo* info = ggml_type_info(t.type);
  return t.numel() / info->block_elems * info->block_bytes;  // read_tensor_info checked it fits
}

}  // namespace

uint64_t GgufFile::TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);
  return n;
}

GgufFile GgufFile::open(const std::string& path) {
  const Fd fd(path);
  HeaderCursor in(fd, path);
  GgufFile f;
  f.path_ = path;
  char magic[4];
  in.read(magic, 4, "the magic number");
  RW_USER_CHECK(std::memcmp(magic, "GGUF", 4) == 0, "%s: not a GGUF file (it does not start with \"GGUF\")",
                path.c_str());
  f.version_ = in.scalar<uint32_t>("the version");
  RW_USER_CHECK(f.version_ == 2 || f.version_ == 3,
                "%s: GGUF version %u is not supported (ringwise reads versions 2 and 3, little-endian)", path.c_str(),
                f.version_);
  const uint64_t n_tensors = in.scalar<uint64_t>("the tensor count");
  const uint64_t n_kv = in.scalar<uint64_t>("the metadata count");
  // Each entry takes at least a few bytes: counts beyond the file's size are damage, not big models.
  RW_USER_CHECK(n_tensors <= fd.size() / 8 && n_kv <= fd.size() / 8,
                "%s: header claims %llu tensors and %llu metadata entries, impossible in %llu bytes", path.c_str(),
                static_cast<unsigned long long>(n_tensors), static_cast<unsigned long long>(n_kv),
                static_cast<unsigned long long>(fd.size()));

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = in.string("metadata entry " + std::to_string(i) + " key");
    RW_USER_CHECK(!f.metadata_.count(key), "%s: metadata key '%s' appears twice", path.c_str(), key.c_str());
    Value v = read_value(in, path, "metadata key '" + key + "'");
    f.metadata_.emplace(std::move(key), std::move(v));
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t = read_tensor_info(in, path, i);
    RW_USER_CHECK(!f.find(t.name), "%s: tensor '%s' appears twice", path.c_str(), t.name.c_str());
    f.tensors_.push_back(std::move(t));
  }

  uint64_t alignment = kDefaultAlignment;
  if (f.has("general.alignment")) {
    const int64_t a = f.get_int("general.alignment");
    RW_USER_CHECK(a > 0 && (a & (a - 1)) == 0 && a <= (1 << 30),
                  "%s: metadata key 'general.alignment' = %lld is not a power of two", path.c_str(),
                  static_cast<long long>(a));
    alignment = static_cast<uint64_t>(a);
  }
  f.data_start_ = (in.offset() + alignment - 1) / alignment * alignment;
  const uint64_t data_size = fd.size() >= f.data_start_ ? fd.size() - f.data_start_ : 0;
  for (const TensorInfo& t : f.tensors_) {
    const uint64_t bytes = tensor_bytes(t);
    RW_USER_CHECK(t.offset % alignment == 0, "%s: tensor '%s' offset %llu is not a multiple of the alignment %llu",
                  path.c_str(), t.name.c_str(), static_cast<unsigned long long>(t.offset),
                  static_cast<unsigned long long>(alignment));
    RW_USER_CHECK(t.offset <= data_size && bytes <= data_size - t.offset,
                  "%s: tensor '%s' (%llu bytes at data offset %llu) runs past the end of the file (%llu bytes of "
                  "tensor data from byte %llu)",
                  path.c_str(), t.name.c_str(), static_cast<unsigned long long>(bytes),
                  static_cast<unsigned long long>(t.offset), static_cast<unsigned long long>(data_size),
                  static_cast<unsigned long long>(f.data_start_));
  }
  return f;
}

const GgufFile::Value& GgufFile::get(const std::string& key, const char* wanted) const {
  auto it = metadata_.find(key);
  RW_USER_CHECK(it != metadata_.end(), "%s: no metadata key '%s' (%s expected)", path_.c_str(), key.c_str(), wanted);
  return it->second;
}

std::string GgufFile::get_string(const std::string& key) const {
  const Value& v = get(key, "a string");
  check_type(v.type == kString, path_, key, v, "a string");
  return v.string;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const Value& v = get(key, "an integer");
  check_type(is_integer(v.type), path_, key, v, "an integer");
  return v.integer;
}

double GgufFile::get_float(const std::string& key) const {
  const Value& v = get(key, "a float");
  check_type(is_real(v.type), path_, key, v, "a float");
  return v.real;
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const Value& v = get(key, "an array of strings");
  check_type(v.type == kArray && v.array_type == kString, path_, key, v, "an array of strings");
  return v.strings;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const Value& v = get(key, "an array of integers");
  check_type(v.type == kArray && is_integer(v.array_type), path_, key, v, "an array of integers");
  return v.integers;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const Value& v = get(key, "an array of floats");
  check_type(v.type == kArray && is_real(v.array_type), path_, key, v, "an array of floats");
  return v.reals;
}

const GgufFile::TensorInfo* GgufFile::find(const std::string& tensor_name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == tensor_name) return &t;
  return nullptr;
}

std::vector<float> GgufFile::read_f32(const std::string& tensor_name) const {
  const TensorInfo* t = find(tensor_name);
  RW_USER_CHECK(t, "%s: no tensor '%s'", path_.c_str(), tensor_name.c_str());
  const GgmlTypeInfo* info = ggml_type_info(t->type);
  RW_USER_CHECK(info->dequantisable,
                "%s: tensor '%s' has type %s, which ringwise cannot dequantise (it reads F32, F16, BF16, Q8_0, Q4_0, "
                "Q4_1)",
                path_.c_str(), tensor_name.c_str(), info->name);
  const Fd fd(path_);
  const uint64_t bytes = tensor_bytes(*t);
  RW_USER_CHECK(data_start_ + t->offset + bytes <= fd.size(), "%s: tensor '%s' runs past the end of the file",
                path_.c_str(), tensor_name.c_str());
  std::vector<float> out(static_cast<size_t>(t->numel()));
  const uint64_t chunk_blocks = std::max<uint64_t>(1, kChunkBytes / info->block_bytes);
  std::vector<unsigned char> buf(static_cast<size_t>(std::min(bytes, chunk_blocks * info->block_bytes)));
  const uint64_t blocks = bytes / info->block_bytes;
  for (uint64_t b = 0; b < blocks; b += chunk_blocks) {
    const uint64_t n = std::min(chunk_blocks, blocks - b);
    fd.read_at(data_start_ + t->offset + b * info->block_bytes, buf.data(), static_cast<size_t>(n * info->block_bytes),
               path_, "tensor '" + tensor_name + "'");
    gguf_dequantise(t->type, buf.data(), static_cast<size_t>(n), out.data() + b * info->block_elems);
  }
  return out;
}

}  // namespace rw
