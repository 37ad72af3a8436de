#include "jobs/slurm_commands.h"

#include <sys/wait.h>

#include <cctype>
#include <cstdio>

#include "core/check.h"

namespace rw {
namespace {

struct CommandOutput {
  int exit_code = -1;
  std::string text;  // stdout and stderr together
};

CommandOutput run_capturing(const std::string& command) {
  CommandOutput result;
  FILE* pipe = popen((command + " 2>&1 </dev/null").c_str(), "r");
  RW_USER_CHECK(pipe != nullptr, "cannot run '%s'", command.c_str());
  char buf[1024];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) result.text.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!result.text.empty() && std::isspace(static_cast<unsigned char>(result.text.back()))) result.text.pop_back();
  return result;
}

// The shell's "command not found" (127) deserves its own hint: Slurm's client tools are missing.
void check_succeeded(const std::string& command, const CommandOutput& out) {
  RW_USER_CHECK(out.exit_code != 127, "'%s' failed: command not found (is this a Slurm login node?)", command.c_str());
  RW_USER_CHECK(out.exit_code == 0, "'%s' failed (exit code %d): %s", command.c_str(), out.exit_code,
                out.text.c_str());
}

}  // namespace

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string sbatch_submit(const std::string& script_path) {
  const std::string command = "sbatch --parsable " + shell_quote(script_path);
  const CommandOutput out = run_capturing(command);
  check_succeeded(command, out);
  // --parsable prints "id" or "id;cluster", after any warnings on earlier lines.
  const std::string last_line = out.text.substr(out.text.find_last_of('\n') + 1);
  const std::string id = last_line.substr(0, last_line.find(';'));
  RW_USER_CHECK(!id.empty() && id.find_first_not_of("0123456789") == std::string::npos,
                "'%s' printed no job id: %s", command.c_str(), out.text.c_str());
  return id;
}

void scontrol_requeue(const std::string& job_id) {
  const std::string command = "scontrol requeue " + shell_quote(job_id);
  check_succeeded(command, run_capturing(command));
}

}  // namespace rw
