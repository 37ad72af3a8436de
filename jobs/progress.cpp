#include "jobs/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/check.h"

namespace rw {
namespace {

// Reports kept for the step rate: long enough to smooth noise, short enough to follow a change.
constexpr size_t kRateWindow = 10;

// %.9g round-trips a float, so a logged loss reproduces the trainer's value bit for bit. JSON has
// no NaN or Infinity; a diverged step is written as null.
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string format_duration(double seconds) {
  long s = std::lround(std::max(seconds, 0.0));
  if (s >= 3600) return format("%ldh%02ldm", s / 3600, s / 60 % 60);
  return format("%ldm%02lds", s / 60, s % 60);
}

std::string format_ms(double ms) { return format(ms < 10 ? "%.1f ms" : "%.0f ms", ms); }

}  // namespace

bool stdout_is_tty() { return isatty(STDOUT_FILENO) == 1; }

ProgressReporter::ProgressReporter(const std::string& metrics_path, int total_steps, bool interactive, int first_step)
    : total_steps_(total_steps),
      interactive_(interactive),
      last_committed_tenth_(total_steps > 0 ? static_cast<int>(10LL * first_step / total_steps) : 0),
      recent_{{first_step, 0.0}} {
  if (metrics_path.empty()) return;
  std::filesystem::path dir = std::filesystem::path(metrics_path).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  RW_USER_CHECK(!ec, "cannot create directory %s for the metrics file: %s", dir.c_str(), ec.message().c_str());
  if (first_step > 0 && std::filesystem::exists(metrics_path, ec)) keep_lines_up_to(metrics_path, first_step);
  metrics_ = std::fopen(metrics_path.c_str(), first_step > 0 ? "a" : "w");
  RW_USER_CHECK(metrics_ != nullptr, "cannot write metrics file %s: %s", metrics_path.c_str(), std::strerror(errno));
}

// Rewritten through a temporary file and a rename, so a crash here cannot lose the history.
void ProgressReporter::keep_lines_up_to(const std::string& path, int step) {
  std::ifstream in(path);
  RW_USER_CHECK(in.good(), "cannot read metrics file %s: %s", path.c_str(), std::strerror(errno));
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::trunc);
  std::string line;
  while (std::getline(in, line)) {
    int line_step = 0;
    if (std::sscanf(line.c_str(), "{\"step\":%d", &line_step) == 1 && line_step <= step) out << line << '\n';
  }
  out.close();
  RW_USER_CHECK(out.good(), "cannot write %s: %s", tmp.c_str(), std::strerror(errno));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  RW_USER_CHECK(!ec, "cannot replace metrics file %s: %s", path.c_str(), ec.message().c_str());
}

ProgressReporter::~ProgressReporter() {
  if (metrics_) std::fclose(metrics_);
}

void ProgressReporter::write_json(const StepMetrics& m) {
  if (!metrics_) return;
  std::string val = std::isnan(m.val_loss) ? "" : ",\"val_loss\":" + json_number(m.val_loss);
  if (!std::isnan(m.moe_aux_loss))
    val += ",\"moe_aux_loss\":" + json_number(m.moe_aux_loss) + ",\"moe_dropped\":" + std::to_string(m.moe_dropped);
  std::fprintf(metrics_,
               "{\"step\":%d,\"loss\":%s,\"lr\":%s,\"grad_norm\":%s,\"tokens_per_s\":%s,\"mfu\":%s,\"elapsed_s\":%s%s}\n",
               m.step, json_number(m.loss).c_str(), json_number(m.lr).c_str(), json_number(m.grad_norm).c_str(),
               json_number(m.tokens_per_s).c_str(), json_number(m.mfu).c_str(), json_number(m.elapsed_s).c_str(),
               val.c_str());
  std::fflush(metrics_);  // a crashed or killed run keeps every step it reported
}

double ProgressReporter::eta_seconds(const StepMetrics& m) const {
  const auto& [first_step, first_s] = recent_.front();
  if (m.step <= first_step) return 0;
  return (m.elapsed_s - first_s) / (m.step - first_step) * (total_steps_ - m.step);
}

void ProgressReporter::report(const StepMetrics& m) {
  write_json(m);
  const auto [prev_step, prev_s] = recent_.back();
  const double ms_per_step = m.step > prev_step ? (m.elapsed_s - prev_s) / (m.step - prev_step) * 1e3 : 0;
  recent_.emplace_back(m.step, m.elapsed_s);
  if (recent_.size() > kRateWindow + 1) recent_.pop_front();
  const std::string eta = format_duration(eta_seconds(m));
  const std::string val = std::isnan(m.val_loss) ? "" : format(" | val loss %.4f", m.val_loss);

  if (!interactive_) {
    std::printf("step %5d/%d | loss %.4f%s | norm %.3g | lr %.2e | %s | %.0f tok/s | MFU %.1f%% | ETA %s\n", m.step,
                total_steps_, m.loss, val.c_str(), m.grad_norm, m.lr, format_ms(ms_per_step).c_str(), m.tokens_per_s,
                100 * m.mfu, eta.c_str());
    std::fflush(stdout);
    return;
  }
  // Rewrite the line in place (\r, then clear to its end), but leave one line behind at every
  // tenth of the run, so the scrollback still shows the loss falling.
  const int percent = total_steps_ > 0 ? static_cast<int>(100LL * m.step / total_steps_) : 0;
  std::printf("\rstep %d/%d (%d%%) | loss %.4f%s | lr %.2e | %.0f tok/s | ETA %s\x1b[K", m.step, total_steps_,
              percent, m.loss, val.c_str(), m.lr, m.tokens_per_s, eta.c_str());
  live_line_open_ = true;
  if (percent / 10 > last_committed_tenth_) {
    last_committed_tenth_ = percent / 10;
    std::fputc('\n', stdout);
    live_line_open_ = false;
  }
  std::fflush(stdout);
}

void ProgressReporter::finish() {
  if (live_line_open_) std::fputc('\n', stdout);
  live_line_open_ = false;
  std::fflush(stdout);
  if (metrics_) std::fflush(metrics_);
}

}  // namespace rw
