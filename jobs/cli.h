// The `ringwise` command line: picks the subcommand (train, bench train, help, --version), parses
// its options and runs it.
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace rw {

// One subcommand's options from its arguments: no abbreviations, and a stray word is an error.
// UserError quoting the option or word, pointing to 'ringwise help <command>'.
boost::program_options::variables_map parse_command_line(const std::vector<std::string>& args,
                                                         const boost::program_options::options_description& desc,
                                                         const char* command);

// Returns the exit code. Bad input throws UserError with a one-line message that names the
// option, field or file; main() prints it and exits with code 2.
int run_cli(int argc, char** argv);

}  // namespace rw
