// One way to fail, three levels kept apart:
//   RW_USER_CHECK(cond, fmt, ...)  bad input from the user: throws rw::UserError (CLI exits 2).
//   RW_CHECK(cond, fmt, ...)       an internal invariant: a bug in ringwise, aborts with file:line.
//   RW_DCHECK(cond)                the same on hot paths, compiled out in release builds.
// Library calls go through their own macros (RW_MPI_CHECK, RW_CUDA_CHECK, ...) that evaluate the
// call once and report its text, file:line and, in distributed code, the rank.
#pragma once
#include <cstdio>
#include <stdexcept>
#include <string>

namespace rw {

// An error the user can fix (bad option, missing file, impossible config). The message names the
// offending field or file; the CLI prints it on one line and exits with code 2.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// printf-style formatting into a std::string; only evaluated on the failure path.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void fatal(const char* file, int line, const std::string& msg);

}  // namespace rw

#define RW_USER_CHECK(cond, ...)                                   \
  do {                                                             \
    if (!(cond)) throw ::rw::UserError(::rw::format(__VA_ARGS__)); \
  } while (0)

#define RW_CHECK(cond, ...)                                                                     \
  do {                                                                                          \
    if (!(cond))                                                                                \
      ::rw::fatal(__FILE__, __LINE__, ::rw::format("check failed: %s: ", #cond) + ::rw::format(__VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define RW_DCHECK(cond) \
  do {                  \
  } while (0)
#else
#define RW_DCHECK(cond) RW_CHECK(cond, "debug check")
#endif
