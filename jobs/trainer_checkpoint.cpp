#include "jobs/trainer_checkpoint.h"

#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

#include "core/check.h"
#include "data/hdf5_checkpoint.h"
#include "jobs/cli_options.h"

namespace rw {
namespace {

// Every parameter with its moments, as views into the model's and optimizer's flat buffers, or
// under tensor parallelism into the logical state (checkpoints hold logical tensors).
std::vector<CheckpointTensor> trainer_tensors(Trainer& trainer) {
  LogicalState* logical = trainer.logical_state();
  float* params = logical ? logical->params.data() : trainer.model().param_buffer().data<float>();
  float* m = logical ? logical->exp_avg.data() : trainer.optimizer().exp_avg().data<float>();
  float* v = logical ? logical->exp_avg_sq.data() : trainer.optimizer().exp_avg_sq().data<float>();
  std::vector<CheckpointTensor> tensors;
  for (const ParamInfo& p : logical ? logical->table.entries() : trainer.model().params().entries())
    tensors.push_back({p.name, p.shape, params + p.offset, m + p.offset, v + p.offset});
  return tensors;
}

}  // namespace

std::string checkpoint_dir(const TrainConfig& t) {
  return t.ckpt_dir.empty() ? t.run_dir + "/checkpoints" : t.ckpt_dir;
}

SavedCheckpoint save_trainer_checkpoint(Trainer& trainer) {
  const auto start = std::chrono::steady_clock::now();
  const RunConfig& cfg = trainer.config();
  std::ostringstream ini;
  write_config_file(ini, cfg);
  CheckpointMeta meta;
  meta.step = trainer.steps_done();
  meta.adam_step = trainer.optimizer().steps_taken();
  meta.seed = static_cast<int64_t>(cfg.train.seed);
  meta.config_text = ini.str();
  SavedCheckpoint saved;
  const std::string dir = checkpoint_dir(cfg.train);
  saved.path = save_checkpoint(dir, meta, trainer_tensors(trainer));
  saved.bytes = static_cast<int64_t>(std::filesystem::file_size(saved.path));
  prune_checkpoints(dir, cfg.train.keep_last, saved.path);
  saved.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return saved;
}

std::string resume_path(const TrainConfig& t) {
  if (t.resume != "auto") return t.resume;
  return newest_checkpoint(checkpoint_dir(t));
}

void resume_trainer(Trainer& trainer, const std::string& path) {
  std::error_code ec;
  RW_USER_CHECK(std::filesystem::is_regular_file(path, ec), "--resume %s: no such checkpoint file", path.c_str());
  const CheckpointMeta meta = read_checkpoint_meta(path);
  check_same_model(meta.config_text, path, trainer.config());
  load_checkpoint(path, trainer_tensors(trainer));
  if (trainer.logical_state()) trainer.shard_logical_state();
  RW_USER_CHECK(meta.step <= INT_MAX, "%s: attribute step %lld is out of range", path.c_str(),
                static_cast<long long>(meta.step));
  trainer.resume_at(static_cast<int>(meta.step), static_cast<int>(meta.adam_step));
  // Batches are a function of the seed: a different one still trains, but no longer continues the
  // run bit for bit, which a resume otherwise promises. Allowed (skipping past bad data is a
  // reason to), never silently.
  const uint64_t seed = trainer.config().train.seed;
  if (static_cast<uint64_t>(meta.seed) != seed && trainer.grid().world().rank() == 0)
    std::fprintf(stderr,
                 "ringwise: warning: %s was trained with --seed %lld, this run uses --seed %llu: batches after "
                 "step %lld differ from the original run's\n",
                 path.c_str(), static_cast<long long>(meta.seed), static_cast<unsigned long long>(seed),
                 static_cast<long long>(meta.step));
}

}  // namespace rw
