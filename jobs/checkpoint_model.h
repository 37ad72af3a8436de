// A model holding a checkpoint's weights, for the commands that run one (eval, generate).
#pragma once
#include <memory>
#include <string>

#include "models/llama.h"

namespace rw {

// The model the checkpoint's saved configuration describes, with its weights (moments are not
// read). UserError naming the file when it is not a usable checkpoint.
std::unique_ptr<LlamaModel> load_checkpoint_model(const std::string& path);

}  // namespace rw
