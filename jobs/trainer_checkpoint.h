// Saving a Trainer to checkpoint files and resuming it from one (format: data/hdf5_checkpoint.h).
#pragma once
#include <cstdint>
#include <string>

#include "jobs/trainer.h"

namespace rw {

// --ckpt-dir, else <run-dir>/checkpoints.
std::string checkpoint_dir(const TrainConfig& t);

struct SavedCheckpoint {
  std::string path;
  int64_t bytes = 0;
  double seconds = 0;  // writing, syncing and pruning
};
// Writes the trainer's state after its last step to checkpoint_dir(), then deletes all but the
// newest --keep-last checkpoints there.
SavedCheckpoint save_trainer_checkpoint(Trainer& trainer);

// The checkpoint --resume asks for: "" to start fresh (none given, or "auto" and none saved yet).
std::string resume_path(const TrainConfig& t);

// Loads weights, AdamW moments and step counts from `path` into a freshly built trainer. UserError
// when the checkpoint's model options differ from the trainer's or the file is unusable.
void resume_trainer(Trainer& trainer, const std::string& path);

}  // namespace rw
