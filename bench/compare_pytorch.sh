#!/usr/bin/env bash
# ringwise vs PyTorch on the same machine, model, batch and thread count, in one run: times
# `ringwise bench train` and bench/llama_torch.py (the same LLaMA and AdamW step in PyTorch, CPU
# fp32), then prints one table with the ratio ringwise/pytorch.
#
#   bench/compare_pytorch.sh [RINGWISE_BINARY] [--threads N] [--iters N] [--warmup N]
#
# RINGWISE_BINARY defaults to build/jobs/ringwise; --threads to nproc; --iters to 10; --warmup to 2.
# The model is the `small` preset at seq 256 x batch 8; its shape is read from ringwise's
# --print-config and passed to the PyTorch side, so both always run the same configuration.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=/usr/bin/python3  # Debian's python3-torch installs for the system interpreter

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "compare_pytorch: $*" >&2; exit 1; }

ringwise="$root/build/jobs/ringwise"
threads=$(nproc)
iters=10
warmup=2
while (($#)); do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --iters) iters=${2:?--iters needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) ringwise=$1; shift ;;
  esac
done
for n in "$threads" "$iters" "$warmup"; do
  [[ $n =~ ^[0-9]+$ ]] || die "expected a non-negative integer, got '$n'"
done
((threads >= 1)) || die "--threads must be at least 1"
((iters >= 1)) || die "--iters must be at least 1"
[[ -x $ringwise ]] || die "no ringwise binary at $ringwise (build it: cmake -S . -B build -G Ninja && cmake --build build)"
"$python" -c 'import torch' 2>/dev/null || die "$python cannot import torch (apt-get install python3-torch)"

model_opts=(--preset small --seq-len 256 --batch-size 8)
run_opts=(--threads "$threads" --warmup "$warmup" --iters "$iters")

# The configuration ringwise will run, as key = value lines; its shape keys are llama_torch.py's options.
config=$("$ringwise" bench train "${model_opts[@]}" --threads "$threads" --print-config) ||
  die "ringwise rejected the configuration"
torch_shape=()
for key in vocab-size d-model layers heads kv-heads ffn-dim seq-len batch-size rope-theta norm-eps lr weight-decay \
           grad-clip seed; do
  value=$(sed -n "s/^$key = //p" <<<"$config")
  [[ -n $value ]] || die "ringwise --print-config has no '$key'"
  torch_shape+=("--$key" "$value")
done

last_json_line() { grep '^{' | tail -n 1; }

echo "# running ringwise bench train (${threads} threads, ${warmup} warmup + ${iters} timed steps)..." >&2
rw_json=$(OMP_NUM_THREADS=$threads "$ringwise" bench train "${model_opts[@]}" "${run_opts[@]}" --json | last_json_line) ||
  die "ringwise bench train failed"
# ringwise restarts itself with the OpenBLAS kernels this CPU supports when OpenBLAS's own
# detection falls back to generic ones (core/blas_kernel.h); PyTorch's matmuls go through the same
# Debian OpenBLAS, so it gets the same kernels for a like-for-like comparison.
blas_kernel=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1]).get("blas_kernel", ""))' "$rw_json")
echo "# running bench/llama_torch.py (same configuration, OPENBLAS_CORETYPE=${blas_kernel:-unset})..." >&2
pt_json=$(env OMP_NUM_THREADS=$threads ${blas_kernel:+OPENBLAS_CORETYPE=$blas_kernel} "$python" "$root/bench/llama_torch.py" "${torch_shape[@]}" "${run_opts[@]}" --json |
  last_json_line) || die "bench/llama_torch.py failed"
[[ -n $rw_json ]] || die "ringwise bench train printed no JSON"
[[ -n $pt_json ]] || die "bench/llama_torch.py printed no JSON"

"$python" - "$rw_json" "$pt_json" "$config" "$warmup" "$iters" <<'EOF'
import json
import sys

rw, pt = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cfg = dict(line.split(" = ", 1) for line in sys.argv[3].splitlines() if " = " in line and not line.startswith("#"))
warmup, iters = sys.argv[4], sys.argv[5]

print(f"# ringwise vs PyTorch {pt['torch']}, CPU fp32: LLaMA '{cfg['preset']}', {rw['params'] / 1e6:.2f}M params "
      f"(PyTorch {pt['params'] / 1e6:.2f}M), d_model {cfg['d-model']}, {cfg['layers']} layers, "
      f"{cfg['heads']}/{cfg['kv-heads']} heads, ffn {cfg['ffn-dim']}, vocab {cfg['vocab-size']}")
print(f"# OpenBLAS kernels for both: {rw.get('blas_kernel', 'unknown')}")
print(f"# batch {cfg['batch-size']} x seq {cfg['seq-len']}, AdamW + clip {cfg['grad-clip']}, "
      f"threads ringwise {rw['threads']} / pytorch {pt['threads']}, {warmup} warmup + {iters} timed steps")
if "mfu" in rw:
    print(f"# ringwise: {rw['gflops']:.1f} GFLOP/s, MFU {100 * rw['mfu']:.1f}% of the "
          f"{rw['sgemm_peak_gflops']:.1f} GFLOP/s OpenBLAS sgemm peak")
print("#")
cols = [("tokens_per_s", "tokens/s", "{:.1f}"), ("step_ms", "step_ms", "{:.1f}"), ("peak_rss_mb", "peak_RSS_MB", "{:.1f}")]
print("# {:>16}".format("system") + "".join(f" {title:>12}" for _, title, _ in cols))
for name, r in (("ringwise", rw), ("pytorch", pt)):
    print("  {:>16}".format(name) + "".join(f" {fmt.format(r[key]):>12}" for key, _, fmt in cols))
ratio = [rw[key] / pt[key] if pt[key] else float("nan") for key, _, _ in cols]
print("  {:>16}".format("ringwise/pytorch") + "".join(f" {f'{x:.2f}x':>12}" for x in ratio))
print(f"# ringwise/pytorch: {ratio[0]:.2f}x the tokens/s, {ratio[2]:.2f}x the peak memory "
      "(above 1x in tokens/s: ringwise trains faster)")
EOF
