// The options that fill a RunConfig. One table ties each field to its kebab-case option (which is
// also its config-file key), its help line and its default, so that parsing, `help` and
// --print-config cannot drift apart.
#pragma once
#include <boost/program_options.hpp>
#include <initializer_list>
#include <ostream>
#include <string>

#include "jobs/run_config.h"

namespace rw {

// One po option per RunConfig field, every value taken as a string: the table parses it, so that
// a bad value is reported with the option's name and what was expected.
boost::program_options::options_description run_options();

// Help for those options: a heading per group (Model, Training, Data & output), then one line per
// option with its default.
void print_run_options_help(std::ostream& out);
// A "\n<heading>:\n" line, then one help line in the same layout per {flag, help}: for the
// options outside the table (--config, --iters, each command's own, ...).
struct OptionHelp {
  std::string flag, help;
};
void print_option_lines(std::ostream& out, const std::string& heading, std::initializer_list<OptionHelp> options);

// The configuration a command line asks for: the preset (from the command line, else from the
// --config file, else "small"), then the config file's other keys, then the command-line options.
// An empty --data becomes the default corpus. Validated; UserError naming the field or file.
RunConfig resolve_run_config(const boost::program_options::variables_map& cli);

// `cfg` as a config file that --config reads back to the same configuration.
void write_config_file(std::ostream& out, const RunConfig& cfg);

// The model options of `saved_ini` (a config file's text, e.g. a checkpoint's) must equal `run`'s:
// UserError naming `source`, the first differing key and both values otherwise.
void check_same_model(const std::string& saved_ini, const std::string& source, const RunConfig& run);

// A whole-string integer; UserError "invalid value 'x' for <where>: ..." otherwise.
int parse_int(const std::string& text, const std::string& where);

}  // namespace rw
