// `ringwise plot METRICS -o FILE.svg|png`: loss (and validation loss), learning rate and tokens/s
// against step, one panel each, drawn by gnuplot from the run's metrics.jsonl.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/check.h"
#include "jobs/commands.h"
#include "jobs/metrics_file.h"

namespace rw {
namespace {

void print_plot_help(std::ostream& out) {
  out << "Usage: ringwise plot METRICS.jsonl -o FILE.svg|FILE.png [--title TEXT]\n"
         "\n"
         "Draws a run's loss (and validation loss when measured), learning rate and tokens/s against\n"
         "step, one panel above the other, with gnuplot (which must be installed).\n";
}

std::string extension_of(const std::string& path) {
  return std::filesystem::path(path).extension().string();
}

// gnuplot reads "NaN" as a missing point, which leaves a gap instead of a wrong value.
std::string data_lines(const std::vector<MetricsPoint>& points) {
  std::string text;
  char line[160];
  for (const MetricsPoint& p : points) {
    std::snprintf(line, sizeof line, "%d %.9g %.9g %.9g %.9g\n", p.step, p.loss, p.lr, p.tokens_per_s, p.val_loss);
    text += line;
  }
  return text;
}

std::string gnuplot_program(const std::string& data, const std::string& output, const std::string& title,
                            bool has_val_loss) {
  const bool svg = extension_of(output) == ".svg";
  std::string g = svg ? "set terminal svg size 900,900 dynamic font 'sans,12' background '#ffffff'\n"
                      : "set terminal pngcairo size 900,900 font 'sans,11'\n";
  g += "set output '" + output + "'\n";
  g += "set datafile missing 'nan'\n"
       "set grid\n"
       "set key top right\n"
       "set lmargin 12\n"
       "set multiplot layout 3,1 title '" + title + "'\n"
       "set ylabel 'loss'\n"
       "plot '" + data + "' using 1:2 with lines lw 2 title 'train loss'";
  if (has_val_loss) g += ", '' using 1:5 with linespoints pt 7 title 'validation loss'";
  g += "\nset ylabel 'learning rate'\n"
       "set format y '%.1e'\n"
       "plot '" + data + "' using 1:3 with lines lw 2 title 'learning rate'\n"
       "set format y '%g'\n"
       "set ylabel 'tokens/s'\n"
       "set xlabel 'step'\n"
       "plot '" + data + "' using 1:4 with lines lw 2 title 'tokens/s'\n"
       "unset multiplot\n";
  return g;
}

}  // namespace

int plot_command(const std::vector<std::string>& args) {
  std::string metrics, output, title;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      print_plot_help(std::cout);
      return 0;
    }
    const bool has_value = i + 1 < args.size();
    if (args[i] == "-o" || args[i] == "--output") {
      RW_USER_CHECK(has_value, "%s needs a file name (see 'ringwise plot --help')", args[i].c_str());
      output = args[++i];
    } else if (args[i] == "--title") {
      RW_USER_CHECK(has_value, "--title needs a text (see 'ringwise plot --help')");
      title = args[++i];
    } else {
      RW_USER_CHECK(metrics.empty() && args[i][0] != '-', "unexpected argument '%s' (see 'ringwise plot --help')",
                    args[i].c_str());
      metrics = args[i];
    }
  }
  RW_USER_CHECK(!metrics.empty(), "'ringwise plot' needs a metrics file, e.g. ringwise plot runs/latest/metrics.jsonl -o loss.svg");
  RW_USER_CHECK(!output.empty(), "'ringwise plot' needs -o FILE.svg or -o FILE.png");
  const std::string ext = extension_of(output);
  RW_USER_CHECK(ext == ".svg" || ext == ".png", "-o %s: the picture's name must end in .svg or .png", output.c_str());
  for (const std::string& text : {output, title})
    RW_USER_CHECK(text.find('\'') == std::string::npos, "'%s' must not contain a single quote", text.c_str());
  const std::vector<MetricsPoint> points = read_metrics_file(metrics);
  RW_USER_CHECK(!points.empty(), "%s holds no step yet: nothing to plot", metrics.c_str());
  if (title.empty()) title = metrics;

  // The points go to a scratch file beside the picture; gnuplot writes the picture under a
  // temporary name that is renamed at the end, so a failure leaves an existing picture alone.
  const std::string tmp_output = output + ".tmp" + ext;
  const std::string data = output + ".tmp.dat";
  {
    std::ofstream out(data);
    out << data_lines(points);
    RW_USER_CHECK(out.good(), "cannot write %s", data.c_str());
  }
  bool has_val_loss = false;
  for (const MetricsPoint& p : points) has_val_loss = has_val_loss || !std::isnan(p.val_loss);
  const std::string program = gnuplot_program(data, tmp_output, title, has_val_loss);
  FILE* gnuplot = popen("gnuplot 2>&1", "w");
  RW_USER_CHECK(gnuplot != nullptr, "cannot start gnuplot");
  std::fwrite(program.data(), 1, program.size(), gnuplot);
  const int status = pclose(gnuplot);
  std::error_code ec;
  std::filesystem::remove(data, ec);
  const int code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code != 0) std::filesystem::remove(tmp_output, ec);
  RW_USER_CHECK(code != 127, "'ringwise plot' needs gnuplot: install it (Debian: apt-get install gnuplot-nox)");
  RW_USER_CHECK(code == 0, "gnuplot failed (exit code %d) drawing %s", code, output.c_str());
  std::filesystem::rename(tmp_output, output, ec);
  RW_USER_CHECK(!ec, "cannot rename %s to %s: %s", tmp_output.c_str(), output.c_str(), ec.message().c_str());
  std::printf("plotted %zu points (steps %d-%d) to %s\n", points.size(), points.front().step, points.back().step,
              output.c_str());
  return 0;
}

}  // namespace rw
