#include "core/blas_kernel.h"

#include <cblas.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <string>

namespace rw {
namespace {

// Vector width OpenBLAS's kernels for a core name use: 3 AVX-512, 2 AVX2, 1 AVX, 0 older.
int kernel_level(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* n : {"skylakex", "cooperlake", "sapphirerapids"})
    if (name == n) return 3;
  for (const char* n : {"haswell", "zen", "skylake"})
    if (name == n) return 2;
  return name == "sandybridge" ? 1 : 0;
}

// The best kernel set this CPU supports, by instruction set rather than model name.
const char* native_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    if (__builtin_cpu_supports("avx512fp16")) return "SapphireRapids";
    if (__builtin_cpu_supports("avx512bf16")) return "Cooperlake";
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace

void use_native_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or we already restarted
  const char* native = native_kernel();
  if (!native || kernel_level(openblas_get_corename()) >= kernel_level(native)) return;
  setenv("OPENBLAS_CORETYPE", native, 1);
  execv("/proc/self/exe", argv);  // returns only on failure: run on with the slower kernels
}

const char* blas_kernel_name() { return openblas_get_corename(); }

}  // namespace rw
