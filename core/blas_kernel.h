// Makes OpenBLAS use the kernels this CPU can run. Debian's OpenBLAS picks its kernels from the
// CPU model at load time; a virtual machine that hides the model gets the generic SSE3
// ("Prescott") kernels, 5-10x slower than the AVX-512 ones. OpenBLAS only reads its choice,
// OPENBLAS_CORETYPE, when the library loads, so the process has to start again to change it.
#pragma once

namespace rw {

// Call first thing in main(). When OPENBLAS_CORETYPE is unset and OpenBLAS runs kernels for an
// older CPU than this one, sets it and re-executes the program with the same arguments (returns
// only when nothing needs changing or the re-exec failed). A user's OPENBLAS_CORETYPE is kept.
void use_native_blas_kernels(char** argv);

// The kernel set OpenBLAS runs, e.g. "SapphireRapids" (for benchmark reports).
const char* blas_kernel_name();

}  // namespace rw
