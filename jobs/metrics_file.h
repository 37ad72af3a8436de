// Reading back the metrics.jsonl a training run writes (jobs/progress.h), for status and plot.
#pragma once
#include <cmath>
#include <string>
#include <vector>

namespace rw {

struct MetricsPoint {
  int step = 0;
  double loss = NAN, lr = NAN, tokens_per_s = NAN;
  double val_loss = NAN;  // NaN on steps that did not measure it
};

// Every line of the file in order. UserError naming the file and line when it is missing or a line
// is not a JSON object with at least "step" and "loss".
std::vector<MetricsPoint> read_metrics_file(const std::string& path);

}  // namespace rw
