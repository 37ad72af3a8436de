// Training checkpoints as HDF5 files (format version 1, readable with h5py):
//   /<hf name>                        a parameter, logical shape, float32, chunked with a
//                                     Fletcher-32 checksum per chunk (HDF5 and h5py verify it on read)
//   /optimizer/exp_avg/<hf name>      AdamW first moment, same shape
//   /optimizer/exp_avg_sq/<hf name>   AdamW second moment, same shape
//   root attributes: ringwise_kind = "checkpoint", format_version = 1, ringwise_version, step,
//   adam_step, seed (int64) and config (the run's INI text).
// A checkpoint is <dir>/step_<8-digit step>.h5, written as <dir>/.step_<step>.h5.tmp, flushed,
// fsynced, renamed and the directory fsynced, so only step_*.h5 files are ever complete.
//
// This layer knows nothing of models: callers describe their tensors as plain pointers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rw {

constexpr int64_t kCheckpointFormatVersion = 1;

// One parameter and its AdamW moments, in caller-owned fp32 memory of shape_numel(shape) floats.
struct CheckpointTensor {
  std::string name;  // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  Shape shape;
  float* param;
  float* exp_avg;
  float* exp_avg_sq;
};

struct CheckpointMeta {
  int64_t step = 0;       // optimizer steps completed
  int64_t adam_step = 0;  // AdamW's bias-correction step count
  int64_t seed = 0;       // the run's seed, bit-cast from uint64
  std::string config_text;       // the run's INI text
  std::string ringwise_version;  // set by save from RINGWISE_VERSION; read back by load
};

// "step_00000042.h5"
std::string checkpoint_file_name(int64_t step);

// Writes <dir>/step_<meta.step>.h5 atomically (creating dir) and returns its path. An existing
// checkpoint of the same step is replaced only once the new one is complete.
std::string save_checkpoint(const std::string& dir, const CheckpointMeta& meta,
                            const std::vector<CheckpointTensor>& tensors);

// Validates a checkpoint's kind, version and attributes without reading tensors.
CheckpointMeta read_checkpoint_meta(const std::string& path);

// Fills every tensor from `path`. Everything is validated before anything is copied (each dataset
// present, float, of the expected shape), so a bad file leaves the caller's memory untouched;
// UserError naming the file and dataset otherwise. Bytes damaged after the save are found only by
// their checksums as they are read: that UserError comes with the caller's memory partly filled.
// The file is opened read-only.
CheckpointMeta load_checkpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors);

// Complete checkpoints (step_<digits>.h5) in dir as {step, path}, oldest first; none when dir is
// missing. Temporary files of an interrupted save are not listed.
struct CheckpointEntry {
  int64_t step;
  std::string path;
};
std::vector<CheckpointEntry> list_checkpoints(const std::string& dir);
// The newest complete checkpoint in dir, or "" when there is none.
std::string newest_checkpoint(const std::string& dir);

// Deletes complete checkpoints older than the newest keep_last (0 keeps all), never `keep_path`.
// Returns the deleted paths.
std::vector<std::string> prune_checkpoints(const std::string& dir, int keep_last, const std::string& keep_path);

}  // namespace rw
