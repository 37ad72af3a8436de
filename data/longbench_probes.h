// Synthetic long-context probes in LongBench's JSONL format, scored by `ringwise eval` like the
// benchmark's own datasets (their prompts are in data/longbench/config.json):
//   passkey       a 5-digit pass key hidden in filler text at a chosen depth
//   kv_retrieval  the value of one key among random hex key-value pairs, the key at a chosen depth
//   counting      how many times a marker sentence occurs among filler (depth unused)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/longbench_tasks.h"

namespace rw::longbench {

struct ProbeOptions {
  std::string kind;            // passkey, kv_retrieval or counting
  std::vector<int> lengths;    // context lengths in words
  std::vector<double> depths;  // where the needle sits, 0 (start) to 1 (end)
  int per_cell = 1;            // records per (length, depth)
  uint64_t seed = 0;
};

// Records for every (length, depth, copy), deterministic in the seed; UserError for a bad option.
std::vector<Record> make_probes(const ProbeOptions& opts);
// One JSONL line in LongBench's format.
std::string record_json_line(const Record& r);
// A training document for the record: the prompt `ringwise eval` feeds the model (its dataset's
// template from the task table applied to the record) then " " and the first answer, so a model
// trained on such documents learns to continue the eval prompt with the answer and then end the
// document, which ends generation. Eval cuts prompts longer than --max-length in the middle, so
// probes for training should be short enough to fit whole.
std::string training_text(const Record& r);
// One JSONL line {"text": training_text(r)}, the field `ringwise prepare` reads by default.
std::string training_json_line(const Record& r);

}  // namespace rw::longbench
