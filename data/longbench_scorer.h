// Scoring LongBench predictions the way the reference harness's eval.py does: each record scores
// the best of its answers under the dataset's metric; a dataset scores round(100 * mean, 2), and
// LongBench-E the same per length bucket (0-4k, 4-8k, 8k+ by the record's `length`).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/longbench_tasks.h"

namespace rw::longbench {

// One line of pred/<model>/<dataset>.jsonl, the fields pred.py writes.
struct Prediction {
  std::string pred;
  std::vector<std::string> answers, all_classes;
  int64_t length = 0;
};
std::string prediction_json_line(const Prediction& p);  // without the newline
// UserError naming the file, line and field.
std::vector<Prediction> read_predictions(const std::string& path);

// The record's score in [0, 1].
double score_prediction(const TaskSpec& task, const Prediction& p);
// round(100 * mean score, 2); UserError when there are no predictions.
double score_dataset(const TaskSpec& task, const std::vector<Prediction>& predictions);

struct LengthBucketScores {
  // round(100 * mean, 2) of the records in each bucket; NaN for an empty bucket (numpy's mean of
  // nothing), written as null in result.json.
  double upto_4k, upto_8k, over_8k;
};
LengthBucketScores score_dataset_by_length(const TaskSpec& task, const std::vector<Prediction>& predictions);

// Python's round(x, 2) (half to even on the exact binary value).
double round2(double x);

}  // namespace rw::longbench
