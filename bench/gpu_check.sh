#!/usr/bin/env bash
# The one prepared GPU check (see /work/shared/device/README.md). Two steps:
#
#   bench/gpu_check.sh prepare     on the development machine: builds the CUDA tests and the
#                                  attention benchmark for Hopper (sm_90a, no -march=native: the GPU
#                                  machine's CPU may differ) into build-gpu/, stages the stripped
#                                  binaries in build-gpu/carry/ and packs .device/ (runtime packages).
#   bench/gpu_check.sh run         on the GPU machine, through the device tool:
#       run(command="bash bench/gpu_check.sh run", carry=[".device", "build-gpu/carry"], timeout_s=540)
#
# `run` writes one log per step and summary.txt (step, exit status, seconds) under $OUT, and keeps
# going after a failed step so that one session yields every result. Steps: nvidia-smi, the CUDA
# kernels against their CPU twins, the NCCL communicator at world size 1 (one process, then two
# MPI ranks sharing the GPU, each with its own NCCL communicator), and attention TFLOP/s against
# PyTorch's scaled_dot_product_attention. The whole model on the GPU is not wired yet; its check
# goes here when it is.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-gpu"
carry="$build/carry"
targets=(core_cuda_kernels_test dist_cuda_nccl_test attention_cuda_bench)

prepare() {
  set -e
  cmake -S "$root" -B "$build" -DRINGWISE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DRINGWISE_NATIVE=OFF \
    -DCMAKE_BUILD_TYPE=Release
  cmake --build "$build" --target "${targets[@]}" -j "${JOBS:-2}"
  rm -rf "$carry" && mkdir -p "$carry"
  cp "$build/tests/core_cuda_kernels_test" "$build/tests/dist_cuda_nccl_test" "$build/bench/attention_cuda_bench" \
    "$carry/"
  strip "$carry"/*
  [ -f "$root/.device/activate.sh" ] || "$root/../shared/device/pack.sh" "$root/.device"
  du -sh "$carry" "$root/.device"
  echo 'now: run(command="bash bench/gpu_check.sh run", carry=[".device", "build-gpu/carry"], timeout_s=540)'
}

# step NAME LIMIT_S COMMAND...: runs it with a time limit, logs to $OUT/NAME.log, records the result.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "== $name: $*" | tee "$OUT/$name.log"
  timeout "$limit" "$@" >>"$OUT/$name.log" 2>&1
  local rc=$?
  printf '%-28s rc=%-4s %4ds\n' "$name" "$rc" $((SECONDS - t0)) | tee -a "$OUT/summary.txt"
  tail -5 "$OUT/$name.log"
}

run() {
  : "${OUT:?run this through the device tool, which sets OUT}"
  # shellcheck disable=SC1091
  source "$root/.device/activate.sh"
  step nvidia_smi 30 nvidia-smi
  step core_cuda_kernels 120 "$carry/core_cuda_kernels_test"
  step nccl_one_process 60 "$carry/dist_cuda_nccl_test"
  step nccl_two_ranks_one_gpu 90 mpirun --oversubscribe -np 2 "$carry/dist_cuda_nccl_test"
  step attention_vs_torch 300 python3 "$root/bench/attention_torch.py" --ringwise "$carry/attention_cuda_bench" \
    --seqs 4096 16384 65536 --ringwise-seqs 4096 16384 --iters 2
  cp "$OUT/attention_vs_torch.log" "$OUT/attention_table.md"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
