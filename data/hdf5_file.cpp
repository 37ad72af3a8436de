#include "data/hdf5_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <type_traits>

#include "core/check.h"

namespace rw::h5 {
namespace {

// HDF5 prints its error stack to stderr by default; ringwise reports errors itself, once.
void silence_hdf5() {
  static const bool done = (H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr), true);
  (void)done;
}

// The most specific description on HDF5's error stack ("bad symbol table node signature", ...).
std::string hdf5_message() {
  std::string msg;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        if (e->desc && *e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg.empty() ? "unknown HDF5 error" : msg;
}

// Every HDF5 call goes through here: a negative result is an I/O failure naming the call and object.
template <typename R>
R checked(R result, const char* call, const std::string& where) {
  if (result < 0) throw std::runtime_error(format("HDF5 %s failed on %s: %s", call, where.c_str(), hdf5_message().c_str()));
  return result;
}
#define RW_H5(call, where) checked((call), #call, (where))

std::string shape_text(const Shape& s) { return shape_str(s); }

Handle make_space(const Shape& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Handle(RW_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "dataspace"), H5Sclose);
}

Handle link_creation_props() {
  Handle lcpl(RW_H5(H5Pcreate(H5P_LINK_CREATE), "link properties"), H5Pclose);
  RW_H5(H5Pset_create_intermediate_group(lcpl.get(), 1), "link properties");
  return lcpl;
}

Handle string_type(size_t n) {
  Handle t(RW_H5(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
  RW_H5(H5Tset_size(t.get(), n == 0 ? 1 : n), "string type");
  RW_H5(H5Tset_cset(t.get(), H5T_CSET_UTF8), "string type");
  return t;
}

template <typename T>
constexpr bool is_float_type() {
  return std::is_floating_point_v<T>;
}

}  // namespace

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && close_) close_(id_);  // close errors surface through File::close()
  id_ = H5I_INVALID_HID;
}

template <> hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t native_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t native_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t native_type<uint8_t>() { return H5T_NATIVE_UINT8; }
template <> hid_t native_type<uint16_t>() { return H5T_NATIVE_UINT16; }
template <> hid_t native_type<uint32_t>() { return H5T_NATIVE_UINT32; }
template <> hid_t native_type<uint64_t>() { return H5T_NATIVE_UINT64; }

std::string DatasetInfo::type_name() const {
  return std::string(is_float ? "float" : is_signed ? "int" : "uint") + std::to_string(8 * element_size);
}

File File::create(const std::string& path) {
  silence_hdf5();
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) throw UserError(format("cannot create HDF5 file %s: %s", path.c_str(), hdf5_message().c_str()));
  return File(path, Handle(id, H5Fclose));
}

File File::open(const std::string& path, bool writable) {
  silence_hdf5();
  std::error_code ec;
  RW_USER_CHECK(std::filesystem::is_regular_file(path, ec), "%s does not exist or is not a file", path.c_str());
  htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  RW_USER_CHECK(is_hdf5 > 0, "%s is not an HDF5 file (or is damaged)", path.c_str());
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw UserError(format("cannot open HDF5 file %s: %s", path.c_str(), hdf5_message().c_str()));
  return File(path, Handle(id, H5Fclose));
}

bool File::has(const std::string& object) const {
  // H5Lexists needs every parent to exist, so walk the path one component at a time.
  std::string prefix;
  size_t start = object.front() == '/' ? 1 : 0;
  prefix = object.front() == '/' ? "/" : "";
  while (start <= object.size()) {
    size_t end = object.find('/', start);
    if (end == std::string::npos) end = object.size();
    if (end > start) {
      prefix += (prefix.empty() || prefix.back() == '/' ? "" : "/") + object.substr(start, end - start);
      htri_t e = H5Lexists(id(), prefix.c_str(), H5P_DEFAULT);
      if (e <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    start = end + 1;
  }
  return true;
}

static herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

std::vector<std::string> File::list(const std::string& group) const {
  Handle g = open_object(group);
  std::vector<std::string> names;
  RW_H5(H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names), where(group));
  return names;
}

Handle File::open_object(const std::string& object) const {
  RW_USER_CHECK(object == "/" || has(object), "%s has no '%s'", path_.c_str(), object.c_str());
  return Handle(RW_H5(H5Oopen(id(), object.c_str(), H5P_DEFAULT), where(object)), H5Oclose);
}

Handle File::open_dataset(const std::string& dataset) const {
  RW_USER_CHECK(has(dataset), "%s has no dataset '%s'", path_.c_str(), dataset.c_str());
  hid_t d = H5Dopen2(id(), dataset.c_str(), H5P_DEFAULT);
  if (d < 0) {
    H5Eclear2(H5E_DEFAULT);
    throw UserError(format("%s: '%s' is not a dataset", path_.c_str(), dataset.c_str()));
  }
  return Handle(d, H5Dclose);
}

DatasetInfo File::info(const std::string& dataset) const {
  Handle d = open_dataset(dataset);
  Handle space(RW_H5(H5Dget_space(d.get()), where(dataset)), H5Sclose);
  int rank = RW_H5(H5Sget_simple_extent_ndims(space.get()), where(dataset));
  std::vector<hsize_t> dims(rank);
  RW_H5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where(dataset));
  Handle type(RW_H5(H5Dget_type(d.get()), where(dataset)), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.get());
  RW_USER_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, "%s: dataset '%s' is not numeric", path_.c_str(),
                dataset.c_str());
  DatasetInfo info;
  info.shape.assign(dims.begin(), dims.end());
  info.is_float = cls == H5T_FLOAT;
  info.element_size = H5Tget_size(type.get());
  info.is_signed = cls == H5T_FLOAT || H5Tget_sign(type.get()) != H5T_SGN_NONE;
  Handle dcpl(RW_H5(H5Dget_create_plist(d.get()), where(dataset)), H5Pclose);
  const int filters = RW_H5(H5Pget_nfilters(dcpl.get()), where(dataset));
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0, level = 0;
    size_t n_values = 1;
    H5Z_filter_t f = RW_H5(H5Pget_filter2(dcpl.get(), i, &flags, &n_values, &level, 0, nullptr, nullptr),
                           where(dataset));
    if (f == H5Z_FILTER_DEFLATE) info.compression = "deflate level " + std::to_string(level);
    if (f == H5Z_FILTER_FLETCHER32) info.checksum = true;
  }
  return info;
}

template <typename T>
void File::write(const std::string& dataset, const T* data, const Shape& shape, int compress, bool checksum) {
  Handle space = make_space(shape);
  Handle dcpl(RW_H5(H5Pcreate(H5P_DATASET_CREATE), where(dataset)), H5Pclose);
  if ((compress > 0 || checksum) && shape_numel(shape) > 0) {
    std::vector<hsize_t> chunk(shape.begin(), shape.end());
    // Chunks of at most about 1M elements along the first axis, as equal as possible: HDF5 stores
    // a partial last chunk at full size, so 1M-element chunks of, say, 1500 rows would waste space.
    const hsize_t rows = std::max<int64_t>(shape[0], 1);
    const hsize_t row = shape_numel(shape) / rows;
    const hsize_t max_rows = std::max<hsize_t>(1, (1u << 20) / std::max<hsize_t>(row, 1));
    const hsize_t n_chunks = (rows + max_rows - 1) / max_rows;
    chunk[0] = (rows + n_chunks - 1) / n_chunks;
    RW_H5(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), where(dataset));
    if (checksum) RW_H5(H5Pset_fletcher32(dcpl.get()), where(dataset));
    if (compress > 0) RW_H5(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(compress)), where(dataset));
  }
  Handle lcpl = link_creation_props();
  Handle d(RW_H5(H5Dcreate2(id(), dataset.c_str(), native_type<T>(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
                 where(dataset)),
           H5Dclose);
  if (shape_numel(shape) > 0)
    RW_H5(H5Dwrite(d.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where(dataset));
}

template <typename T>
void File::read(const std::string& dataset, T* out, const Shape& shape) const {
  DatasetInfo have = info(dataset);
  RW_USER_CHECK(have.shape == shape, "%s: dataset '%s' has shape %s, expected %s", path_.c_str(), dataset.c_str(),
                shape_text(have.shape).c_str(), shape_text(shape).c_str());
  RW_USER_CHECK(have.is_float == is_float_type<T>(), "%s: dataset '%s' holds %s, expected %s values", path_.c_str(),
                dataset.c_str(), have.type_name().c_str(), is_float_type<T>() ? "floating-point" : "integer");
  Handle d = open_dataset(dataset);
  if (shape_numel(shape) == 0) return;
  if (H5Dread(d.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0) return;
  const std::string why = hdf5_message();
  RW_USER_CHECK(!have.checksum || why.find("Fletcher32 checksum") == std::string::npos,
                "%s: dataset '%s' fails its checksum: the file was damaged after it was written", path_.c_str(),
                dataset.c_str());
  throw std::runtime_error(format("HDF5 H5Dread failed on %s: %s", where(dataset).c_str(), why.c_str()));
}

template <typename T>
void File::read_range(const std::string& dataset, int64_t offset, int64_t count, T* out) const {
  Handle d = open_dataset(dataset);
  Handle space(RW_H5(H5Dget_space(d.get()), where(dataset)), H5Sclose);
  hsize_t total = 0;
  RW_USER_CHECK(H5Sget_simple_extent_ndims(space.get()) == 1, "%s: dataset '%s' is not 1-D", path_.c_str(),
                dataset.c_str());
  RW_H5(H5Sget_simple_extent_dims(space.get(), &total, nullptr), where(dataset));
  RW_CHECK(offset >= 0 && count >= 0 && static_cast<hsize_t>(offset + count) <= total,
           "read [%lld, %lld) outside %s (%llu elements)", static_cast<long long>(offset),
           static_cast<long long>(offset + count), where(dataset).c_str(), static_cast<unsigned long long>(total));
  if (count == 0) return;
  hsize_t start = offset, n = count;
  RW_H5(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &n, nullptr), where(dataset));
  Handle mem = make_space({count});
  RW_H5(H5Dread(d.get(), native_type<T>(), mem.get(), space.get(), H5P_DEFAULT, out), where(dataset));
}

void File::set_attr(const std::string& object, const std::string& key, const std::string& value) {
  Handle o = open_object(object);
  if (H5Aexists(o.get(), key.c_str()) > 0) RW_H5(H5Adelete(o.get(), key.c_str()), where(object + "@" + key));
  Handle type = string_type(value.size());
  Handle space(RW_H5(H5Screate(H5S_SCALAR), where(object)), H5Sclose);
  Handle a(RW_H5(H5Acreate2(o.get(), key.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                 where(object + "@" + key)),
           H5Aclose);
  RW_H5(H5Awrite(a.get(), type.get(), value.empty() ? "" : value.data()), where(object + "@" + key));
}

template <typename T>
static void set_numeric_attr(File& f, hid_t obj, const std::string& name, const T& value) {
  if (H5Aexists(obj, name.c_str()) > 0) RW_H5(H5Adelete(obj, name.c_str()), f.path() + "@" + name);
  Handle space(RW_H5(H5Screate(H5S_SCALAR), f.path()), H5Sclose);
  Handle a(RW_H5(H5Acreate2(obj, name.c_str(), native_type<T>(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                 f.path() + "@" + name),
           H5Aclose);
  RW_H5(H5Awrite(a.get(), native_type<T>(), &value), f.path() + "@" + name);
}

void File::set_attr(const std::string& object, const std::string& key, int64_t value) {
  Handle o = open_object(object);
  set_numeric_attr(*this, o.get(), key, value);
}

void File::set_attr(const std::string& object, const std::string& key, double value) {
  Handle o = open_object(object);
  set_numeric_attr(*this, o.get(), key, value);
}

bool File::has_attr(const std::string& object, const std::string& key) const {
  if (object != "/" && !has(object)) return false;
  Handle o = open_object(object);
  htri_t e = H5Aexists(o.get(), key.c_str());
  H5Eclear2(H5E_DEFAULT);
  return e > 0;
}

std::string File::attr_string(const std::string& object, const std::string& key) const {
  RW_USER_CHECK(has_attr(object, key), "%s has no attribute '%s' on '%s'", path_.c_str(), key.c_str(), object.c_str());
  Handle o = open_object(object);
  const std::string w = where(object + "@" + key);
  Handle a(RW_H5(H5Aopen(o.get(), key.c_str(), H5P_DEFAULT), w), H5Aclose);
  Handle type(RW_H5(H5Aget_type(a.get()), w), H5Tclose);
  RW_USER_CHECK(H5Tget_class(type.get()) == H5T_STRING, "%s: attribute '%s' is not a string", path_.c_str(),
                key.c_str());
  htri_t variable = RW_H5(H5Tis_variable_str(type.get()), w);
  Handle mem = string_type(0);
  if (variable) {
    RW_H5(H5Tset_size(mem.get(), H5T_VARIABLE), w);
    char* s = nullptr;
    RW_H5(H5Aread(a.get(), mem.get(), &s), w);
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  size_t n = H5Tget_size(type.get());
  std::vector<char> buf(n + 1, '\0');
  RW_H5(H5Tset_size(mem.get(), n), w);
  RW_H5(H5Aread(a.get(), mem.get(), buf.data()), w);
  return std::string(buf.data(), strnlen(buf.data(), n));
}

template <typename T>
static T read_numeric_attr(const File& f, hid_t obj, const std::string& object, const std::string& key) {
  const std::string w = f.path() + ":" + object + "@" + key;
  Handle a(RW_H5(H5Aopen(obj, key.c_str(), H5P_DEFAULT), w), H5Aclose);
  Handle type(RW_H5(H5Aget_type(a.get()), w), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.get());
  RW_USER_CHECK(cls == H5T_INTEGER || cls == H5T_FLOAT, "%s: attribute '%s' is not a number", f.path().c_str(),
                key.c_str());
  T value{};
  RW_H5(H5Aread(a.get(), native_type<T>(), &value), w);
  return value;
}

int64_t File::attr_int(const std::string& object, const std::string& key) const {
  RW_USER_CHECK(has_attr(object, key), "%s has no attribute '%s' on '%s'", path_.c_str(), key.c_str(), object.c_str());
  Handle o = open_object(object);
  return read_numeric_attr<int64_t>(*this, o.get(), object, key);
}

double File::attr_double(const std::string& object, const std::string& key) const {
  RW_USER_CHECK(has_attr(object, key), "%s has no attribute '%s' on '%s'", path_.c_str(), key.c_str(), object.c_str());
  Handle o = open_object(object);
  return read_numeric_attr<double>(*this, o.get(), object, key);
}

void File::flush() { RW_H5(H5Fflush(id(), H5F_SCOPE_GLOBAL), path_); }

void File::close() {
  if (file_.get() < 0) return;
  RW_H5(H5Fclose(file_.release()), path_);
}

template <typename T>
Appender<T>::Appender(File& file, const std::string& dataset, int64_t chunk, int compress)
    : file_(file), name_(dataset) {
  hsize_t zero = 0, unlimited = H5S_UNLIMITED, c = static_cast<hsize_t>(chunk);
  Handle space(RW_H5(H5Screate_simple(1, &zero, &unlimited), file.path()), H5Sclose);
  Handle dcpl(RW_H5(H5Pcreate(H5P_DATASET_CREATE), file.path()), H5Pclose);
  RW_H5(H5Pset_chunk(dcpl.get(), 1, &c), file.path() + ":" + dataset);
  if (compress > 0) RW_H5(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(compress)), file.path() + ":" + dataset);
  Handle lcpl = link_creation_props();
  dataset_ = Handle(RW_H5(H5Dcreate2(file.id(), dataset.c_str(), native_type<T>(), space.get(), lcpl.get(),
                                     dcpl.get(), H5P_DEFAULT),
                          file.path() + ":" + dataset),
                    H5Dclose);
}

template <typename T>
void Appender<T>::append(const T* data, int64_t n) {
  if (n == 0) return;
  const std::string w = file_.path() + ":" + name_;
  hsize_t new_size = static_cast<hsize_t>(size_ + n), start = static_cast<hsize_t>(size_), count = n;
  RW_H5(H5Dset_extent(dataset_.get(), &new_size), w);
  Handle space(RW_H5(H5Dget_space(dataset_.get()), w), H5Sclose);
  RW_H5(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr), w);
  Handle mem = make_space({n});
  RW_H5(H5Dwrite(dataset_.get(), native_type<T>(), mem.get(), space.get(), H5P_DEFAULT, data), w);
  size_ += n;
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(format("cannot open %s to sync it: %s", path.c_str(), std::strerror(errno)));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(format("fsync %s failed: %s", path.c_str(), std::strerror(err)));
}

#define RW_H5_INSTANTIATE(T)                                                                   \
  template void File::write<T>(const std::string&, const T*, const Shape&, int, bool);              \
  template void File::read<T>(const std::string&, T*, const Shape&) const;                     \
  template void File::read_range<T>(const std::string&, int64_t, int64_t, T*) const;           \
  template class Appender<T>;
RW_H5_INSTANTIATE(float)
RW_H5_INSTANTIATE(double)
RW_H5_INSTANTIATE(int32_t)
RW_H5_INSTANTIATE(int64_t)
RW_H5_INSTANTIATE(uint8_t)
RW_H5_INSTANTIATE(uint16_t)
RW_H5_INSTANTIATE(uint32_t)
RW_H5_INSTANTIATE(uint64_t)

}  // namespace rw::h5
