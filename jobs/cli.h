// The `ringwise` command line: picks the subcommand (train, bench train, help, --version), parses
// its options and runs it.
#pragma once

namespace rw {

// Returns the exit code. Bad input throws UserError with a one-line message that names the
// option, field or file; main() prints it and exits with code 2.
int run_cli(int argc, char** argv);

}  // namespace rw
