#include "jobs/metrics_file.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"

namespace rw {
namespace {

double number_or_nan(const nlohmann::json& line, const char* key) {
  const auto it = line.find(key);
  return it != line.end() && it->is_number() ? it->get<double>() : NAN;
}

}  // namespace

std::vector<MetricsPoint> read_metrics_file(const std::string& path) {
  std::ifstream in(path);
  RW_USER_CHECK(in.is_open(), "cannot open metrics file %s", path.c_str());
  std::vector<MetricsPoint> points;
  int line_number = 0;
  for (std::string text; std::getline(in, text);) {
    ++line_number;
    if (text.empty()) continue;
    const nlohmann::json line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    RW_USER_CHECK(line.is_object() && line.contains("step") && line["step"].is_number_integer() &&
                      line.contains("loss"),
                  "%s line %d: expected a JSON object with \"step\" and \"loss\" (a ringwise metrics file)",
                  path.c_str(), line_number);
    MetricsPoint p;
    p.step = line["step"].get<int>();
    p.loss = number_or_nan(line, "loss");  // null: a diverged step
    p.lr = number_or_nan(line, "lr");
    p.tokens_per_s = number_or_nan(line, "tokens_per_s");
    p.val_loss = number_or_nan(line, "val_loss");
    points.push_back(p);
  }
  return points;
}

}  // namespace rw
