// A thin, checked layer over the HDF5 C API: every call's result is checked, failures name the file
// and the object, and handles close themselves. Datasets and checkpoints are built on it; everything
// it writes is plain HDF5 that h5py reads.
//
// Errors: a file that is missing, not HDF5, or lacks/mistypes an object the caller asked for is the
// user's to fix (rw::UserError, exit code 2); an I/O failure while reading or writing is a
// std::runtime_error carrying HDF5's own message.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rw::h5 {

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  void reset();
  hid_t release() {  // gives up ownership without closing
    hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

// The element types ringwise stores. HDF5 converts between numeric types of the same kind on read.
template <typename T> hid_t native_type();

struct DatasetInfo {
  Shape shape;
  bool is_float = false;   // H5T_FLOAT, else H5T_INTEGER (other classes are rejected)
  bool is_signed = true;   // integers only: false for uint16 etc.
  size_t element_size = 0; // bytes per element in the file
  std::string compression = "none";  // "deflate level N" when the dataset is deflate-compressed
  bool checksum = false;   // Fletcher-32 per chunk, which HDF5 verifies on every read
  std::string type_name() const;  // "float32", "uint16", ...
};

class File {
 public:
  // Creates (truncating) a new file for writing.
  static File create(const std::string& path);
  // Opens an existing file; UserError when it is missing or not an HDF5 file.
  static File open(const std::string& path, bool writable = false);

  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }

  // Whether a group or dataset exists at an absolute or relative path ("optimizer/exp_avg/x").
  bool has(const std::string& object) const;
  // Names directly under a group, in HDF5's (alphabetical) order.
  std::vector<std::string> list(const std::string& group) const;
  DatasetInfo info(const std::string& dataset) const;  // UserError if missing

  // Writes a whole dataset (intermediate groups created). Chunked and deflate-compressed when
  // `compress` > 0 (level 1-9); chunked with a Fletcher-32 checksum per chunk when `checksum`.
  template <typename T>
  void write(const std::string& dataset, const T* data, const Shape& shape, int compress = 0, bool checksum = false);
  // Reads a whole dataset whose shape must equal `shape` and whose kind (float or integer) must
  // match T; UserError naming the file, dataset, expected and found shape/type otherwise, and
  // when a checksummed dataset's bytes no longer match their checksum.
  template <typename T>
  void read(const std::string& dataset, T* out, const Shape& shape) const;
  // Reads elements [offset, offset + count) of a 1-D dataset.
  template <typename T>
  void read_range(const std::string& dataset, int64_t offset, int64_t count, T* out) const;

  // Attributes on a group or dataset ("/" is the file itself).
  void set_attr(const std::string& object, const std::string& key, const std::string& value);
  void set_attr(const std::string& object, const std::string& key, int64_t value);
  void set_attr(const std::string& object, const std::string& key, double value);
  bool has_attr(const std::string& object, const std::string& key) const;
  std::string attr_string(const std::string& object, const std::string& key) const;  // UserError if missing
  int64_t attr_int(const std::string& object, const std::string& key) const;
  double attr_double(const std::string& object, const std::string& key) const;

  // Pushes everything written so far to the operating system (H5Fflush); callers fsync via
  // fsync_path() after close() for durability.
  void flush();
  // Closes the file now (also done by the destructor), reporting errors the destructor would hide.
  void close();

 private:
  File(std::string path, Handle file) : path_(std::move(path)), file_(std::move(file)) {}
  Handle open_dataset(const std::string& dataset) const;
  Handle open_object(const std::string& object) const;
  std::string where(const std::string& object) const { return path_ + ":" + object; }

  std::string path_;
  Handle file_;
};

// A 1-D dataset that grows by appending (chunked, unlimited), for streaming writers such as
// `ringwise prepare`: memory stays at one chunk whatever the total size.
template <typename T>
class Appender {
 public:
  Appender(File& file, const std::string& dataset, int64_t chunk = 1 << 20, int compress = 0);
  void append(const T* data, int64_t n);
  int64_t size() const { return size_; }

 private:
  File& file_;
  std::string name_;
  Handle dataset_;
  int64_t size_ = 0;
};

// fsync a file or directory by path (after a rename, the directory too) so a crash cannot lose it.
void fsync_path(const std::string& path);

}  // namespace rw::h5
