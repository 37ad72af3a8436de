#include "data/hdf5_checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "core/check.h"
#include "data/hdf5_file.h"

namespace fs = std::filesystem;

namespace rw {
namespace {

const char* const kKind = "checkpoint";

// The three datasets of one tensor with the memory each one fills.
struct Slot {
  std::string dataset;
  float* data;
};
std::vector<Slot> slots_of(const CheckpointTensor& t) {
  return {{"/" + t.name, t.param},
          {"/optimizer/exp_avg/" + t.name, t.exp_avg},
          {"/optimizer/exp_avg_sq/" + t.name, t.exp_avg_sq}};
}

void write_checkpoint_file(const std::string& path, const CheckpointMeta& meta,
                           const std::vector<CheckpointTensor>& tensors) {
  h5::File file = h5::File::create(path);
  file.set_attr("/", "ringwise_kind", std::string(kKind));
  file.set_attr("/", "format_version", kCheckpointFormatVersion);
  file.set_attr("/", "ringwise_version", std::string(RINGWISE_VERSION));
  file.set_attr("/", "step", meta.step);
  file.set_attr("/", "adam_step", meta.adam_step);
  file.set_attr("/", "seed", meta.seed);
  file.set_attr("/", "config", meta.config_text);
  for (const CheckpointTensor& t : tensors)
    for (const Slot& s : slots_of(t)) file.write<float>(s.dataset, s.data, t.shape, 0, /*checksum=*/true);
  file.flush();
  file.close();
}

// The root attributes, validated; UserError naming the file and attribute.
CheckpointMeta read_meta(const h5::File& file) {
  const std::string& path = file.path();
  const std::string kind = file.has_attr("/", "ringwise_kind") ? file.attr_string("/", "ringwise_kind") : "";
  RW_USER_CHECK(kind == kKind, "%s is not a ringwise checkpoint (attribute ringwise_kind is '%s', expected '%s')",
                path.c_str(), kind.c_str(), kKind);
  const int64_t version = file.attr_int("/", "format_version");
  RW_USER_CHECK(version == kCheckpointFormatVersion,
                "%s: attribute format_version is %lld, this ringwise reads checkpoints of version %lld",
                path.c_str(), static_cast<long long>(version), static_cast<long long>(kCheckpointFormatVersion));
  CheckpointMeta meta;
  meta.step = file.attr_int("/", "step");
  meta.adam_step = file.attr_int("/", "adam_step");
  meta.seed = file.attr_int("/", "seed");
  meta.config_text = file.attr_string("/", "config");
  meta.ringwise_version = file.attr_string("/", "ringwise_version");
  RW_USER_CHECK(meta.step >= 0, "%s: attribute step is negative (%lld)", path.c_str(),
                static_cast<long long>(meta.step));
  RW_USER_CHECK(meta.adam_step >= 0 && meta.adam_step <= meta.step,
                "%s: attribute adam_step %lld must be between 0 and step %lld", path.c_str(),
                static_cast<long long>(meta.adam_step), static_cast<long long>(meta.step));
  return meta;
}

}  // namespace

std::string checkpoint_file_name(int64_t step) {
  return format("step_%08lld.h5", static_cast<long long>(step));
}

std::string save_checkpoint(const std::string& dir, const CheckpointMeta& meta,
                            const std::vector<CheckpointTensor>& tensors) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  RW_USER_CHECK(!ec, "cannot create checkpoint directory %s: %s", dir.c_str(), ec.message().c_str());
  const std::string name = checkpoint_file_name(meta.step);
  const std::string tmp = dir + "/." + name + ".tmp";
  const std::string path = dir + "/" + name;
  try {
    write_checkpoint_file(tmp, meta, tensors);
    h5::fsync_path(tmp);
  } catch (...) {
    fs::remove(tmp, ec);  // an incomplete file must not linger; the error that matters is rethrown
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(format("cannot rename %s to %s: %s", tmp.c_str(), path.c_str(), std::strerror(errno)));
  h5::fsync_path(dir);
  return path;
}

CheckpointMeta read_checkpoint_meta(const std::string& path) { return read_meta(h5::File::open(path)); }

CheckpointMeta load_checkpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors) {
  const h5::File file = h5::File::open(path);
  CheckpointMeta meta = read_meta(file);
  for (const CheckpointTensor& t : tensors) {
    for (const Slot& s : slots_of(t)) {
      const h5::DatasetInfo have = file.info(s.dataset);  // UserError naming the dataset when missing
      RW_USER_CHECK(have.shape == t.shape, "%s: dataset '%s' has shape %s, expected %s", path.c_str(),
                    s.dataset.c_str(), shape_str(have.shape).c_str(), shape_str(t.shape).c_str());
      RW_USER_CHECK(have.is_float && have.element_size == sizeof(float), "%s: dataset '%s' holds %s, expected float32",
                    path.c_str(), s.dataset.c_str(), have.type_name().c_str());
    }
  }
  for (const CheckpointTensor& t : tensors)
    for (const Slot& s : slots_of(t)) file.read<float>(s.dataset, s.data, t.shape);
  return meta;
}

std::vector<CheckpointEntry> list_checkpoints(const std::string& dir) {
  static const std::regex complete(R"(step_([0-9]{1,18})\.h5)");
  std::vector<CheckpointEntry> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return found;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_regular_file(ec) && std::regex_match(name, m, complete))
      found.push_back({std::stoll(m[1].str()), dir + "/" + name});
  }
  RW_USER_CHECK(!ec, "cannot list checkpoint directory %s: %s", dir.c_str(), ec.message().c_str());
  std::sort(found.begin(), found.end(), [](const CheckpointEntry& a, const CheckpointEntry& b) {
    return a.step != b.step ? a.step < b.step : a.path < b.path;
  });
  return found;
}

std::string newest_checkpoint(const std::string& dir) {
  const std::vector<CheckpointEntry> all = list_checkpoints(dir);
  return all.empty() ? "" : all.back().path;
}

std::vector<std::string> prune_checkpoints(const std::string& dir, int keep_last, const std::string& keep_path) {
  std::vector<std::string> deleted;
  const std::vector<CheckpointEntry> all = list_checkpoints(dir);
  if (keep_last <= 0 || all.size() <= static_cast<size_t>(keep_last)) return deleted;
  const fs::path keep = fs::path(keep_path).lexically_normal();
  for (size_t i = 0; i + keep_last < all.size(); ++i) {
    if (fs::path(all[i].path).lexically_normal() == keep) continue;
    std::error_code ec;
    fs::remove(all[i].path, ec);
    if (ec) throw std::runtime_error(format("cannot delete old checkpoint %s: %s", all[i].path.c_str(), ec.message().c_str()));
    deleted.push_back(all[i].path);
  }
  return deleted;
}

}  // namespace rw
