// `ringwise inspect FILE`: what a checkpoint or token dataset holds, and whether all of it reads
// back. Every dataset is read in full (HDF5 reports damage it detects) and checked for non-finite
// values, so a zero exit means the file is usable.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <vector>

#include "core/check.h"
#include "data/hdf5_checkpoint.h"
#include "data/hdf5_file.h"
#include "data/hdf5_tokens.h"
#include "jobs/commands.h"

namespace rw {
namespace {

// The model part of a config file's text: the preset line and the "# Model" section.
std::string model_lines(const std::string& ini) {
  std::istringstream in(ini);
  std::string out;
  bool in_model = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# ", 0) == 0) in_model = line == "# Model";
    else if (in_model && !line.empty()) out += "    " + line + "\n";
    else if (line.rfind("preset =", 0) == 0) out += "    " + line + "\n";
  }
  return out;
}

// Reads a float32 dataset in full; UserError when it is of another type or holds NaN or infinity.
void verify_float32(const h5::File& file, const std::string& dataset, const h5::DatasetInfo& info) {
  RW_USER_CHECK(info.is_float && info.element_size == sizeof(float), "%s: dataset '%s' holds %s, expected float32",
                file.path().c_str(), dataset.c_str(), info.type_name().c_str());
  std::vector<float> values(shape_numel(info.shape));
  file.read<float>(dataset, values.data(), info.shape);
  for (size_t i = 0; i < values.size(); ++i)
    RW_USER_CHECK(std::isfinite(values[i]), "%s: dataset '%s' holds a non-finite value (%g at element %zu)",
                  file.path().c_str(), dataset.c_str(), values[i], i);
}

void inspect_checkpoint(const std::string& path, std::ostream& out) {
  const CheckpointMeta meta = read_checkpoint_meta(path);
  const h5::File file = h5::File::open(path);
  out << "checkpoint " << path << "\n"
      << "  format   version " << kCheckpointFormatVersion << ", written by ringwise " << meta.ringwise_version << "\n"
      << "  step     " << meta.step << " (AdamW step " << meta.adam_step << "), seed "
      << static_cast<uint64_t>(meta.seed) << "\n"
      << "  model\n"
      << model_lines(meta.config_text);

  char line[256];
  std::snprintf(line, sizeof line, "  %-48s %-14s %-8s %12s\n", "parameter", "shape", "dtype", "numel");
  out << line;
  int64_t total = 0, tensors = 0, checksummed = 0;
  for (const std::string& name : file.list("/")) {
    if (name == "optimizer") continue;
    const std::string dataset = "/" + name;
    const h5::DatasetInfo info = file.info(dataset);
    std::snprintf(line, sizeof line, "  %-48s %-14s %-8s %12lld\n", name.c_str(), shape_str(info.shape).c_str(),
                  info.type_name().c_str(), static_cast<long long>(shape_numel(info.shape)));
    out << line;
    verify_float32(file, dataset, info);
    // Each parameter's AdamW moments, of the same shape.
    for (const std::string& moment : {"/optimizer/exp_avg/" + name, "/optimizer/exp_avg_sq/" + name}) {
      const h5::DatasetInfo m = file.info(moment);
      RW_USER_CHECK(m.shape == info.shape, "%s: dataset '%s' has shape %s, expected %s like its parameter",
                    path.c_str(), moment.c_str(), shape_str(m.shape).c_str(), shape_str(info.shape).c_str());
      verify_float32(file, moment, m);
      checksummed += m.checksum;
    }
    checksummed += info.checksum;
    total += shape_numel(info.shape);
    ++tensors;
  }
  RW_USER_CHECK(tensors > 0, "%s holds no parameters", path.c_str());
  const double file_mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
  std::snprintf(line, sizeof line,
                "  total    %lld parameters in %lld tensors; %.1f MB of fp32 weights + AdamW moments, file %.1f MB\n",
                static_cast<long long>(total), static_cast<long long>(tensors), 3.0 * 4 * total / 1e6, file_mb);
  out << line << "  verified every tensor and both moments: readable, float32, all values finite";
  // Checkpoints written before checksums existed load as well; say what was checked.
  if (checksummed == 3 * tensors) out << ", checksums match";
  else out << format(" (%lld of %lld datasets carry a checksum)", static_cast<long long>(checksummed),
                     static_cast<long long>(3 * tensors));
  out << "\n";
}

}  // namespace

int inspect_command(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << "Usage: ringwise inspect FILE\n"
                 "\n"
                 "Describes a checkpoint (step, model, parameter table) or token dataset written by\n"
                 "ringwise, then reads all of it back: exit code 0 when every value is readable (and,\n"
                 "for checkpoints, finite), otherwise one line naming the damaged field.\n";
    return 0;
  }
  RW_USER_CHECK(args.size() == 1, "'ringwise inspect' takes one file, got %zu arguments", args.size());
  const std::string& path = args[0];
  const h5::File file = h5::File::open(path);
  const std::string kind = file.has_attr("/", "ringwise_kind") ? file.attr_string("/", "ringwise_kind") : "";
  if (kind == "checkpoint") {
    inspect_checkpoint(path, std::cout);
  } else if (kind == "dataset") {
    inspect_token_dataset(path, std::cout);
  } else {
    throw UserError(format("%s: unknown ringwise_kind '%s' (ringwise inspects 'checkpoint' and 'dataset' files)",
                           path.c_str(), kind.c_str()));
  }
  return 0;
}

}  // namespace rw
