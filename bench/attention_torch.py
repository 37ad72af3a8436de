#!/usr/bin/env python3
"""Causal attention forward and forward+backward TFLOP/s: PyTorch's scaled_dot_product_attention
against ringwise's CUDA kernel (bench/attention_cuda_bench), on the same GPU in the same run.

FLOPs follow the FlashAttention convention (forward 4*B*H*T*T*D, halved when causal; backward 2.5x
the forward), the same formula attention_cuda_bench prints with. Times are CUDA-event means after a
warm-up. Prints a Markdown table. Needs a GPU and PyTorch; runs nowhere else.

usage: attention_torch.py --ringwise BUILD/bench/attention_cuda_bench [--seqs 4096 16384 65536]
                          [--ringwise-seqs T ...] [--heads 16] [--head-dim 128] [--iters 3]
"""
import argparse
import re
import subprocess
import sys

import torch
import torch.nn.functional as F


def flops(T, H, D, causal=True):
    return 4.0 * H * T * T * D * (0.5 if causal else 1.0)


def time_ms(fn, iters):
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / iters


def torch_row(T, H, D, dtype, iters):
    shape = (1, H, T, D)
    q, k, v = (torch.randn(shape, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    dout = torch.randn(shape, device="cuda", dtype=dtype)

    def fwd():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def fwdbwd():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.backward(dout)

    try:
        f = time_ms(fwd, iters)
        fb = time_ms(fwdbwd, iters)
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        torch.cuda.empty_cache()
    return f, fb


def ringwise_rows(binary, seqs, H, D, iters):
    if not seqs:
        return {}
    cmd = [binary, "--H", str(H), "--KH", str(H), "--D", str(D), "--iters", str(iters)] + [str(t) for t in seqs]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    rows = {}
    for line in proc.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
        if "T" in fields:
            rows[int(fields["T"])] = (float(fields["fwd_ms"]), float(fields["fwd_ms"]) + float(fields["bwd_ms"]))
    if proc.returncode != 0:
        print(f"attention_cuda_bench exited {proc.returncode}", file=sys.stderr)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ringwise", required=True, help="path of attention_cuda_bench")
    ap.add_argument("--seqs", type=int, nargs="+", default=[4096, 16384, 65536])
    ap.add_argument("--ringwise-seqs", type=int, nargs="*", default=None,
                    help="lengths for ringwise's kernel, default --seqs (CUDA cores, no tensor cores yet: "
                         "64k takes about a minute an iteration)")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("attention_torch.py: no CUDA device")

    H, D = args.heads, args.head_dim
    rw_seqs = args.seqs if args.ringwise_seqs is None else args.ringwise_seqs
    rw = ringwise_rows(args.ringwise, rw_seqs, H, D, args.iters)
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, causal, B=1, H={H}, D={D}")
    print("| T | impl | dtype | fwd ms | fwd TFLOP/s | fwd+bwd ms | fwd+bwd TFLOP/s |")
    print("|---|---|---|---|---|---|---|")

    def row(T, impl, dtype, times):
        if times is None:
            print(f"| {T} | {impl} | {dtype} | OOM | | | |")
            return
        f, fb = times
        fl = flops(T, H, D)
        print(f"| {T} | {impl} | {dtype} | {f:.2f} | {fl / f / 1e9:.1f} | {fb:.2f} | {3.5 * fl / fb / 1e9:.1f} |")

    for T in args.seqs:
        row(T, "torch sdpa", "bf16", torch_row(T, H, D, torch.bfloat16, args.iters))
        row(T, "torch sdpa", "fp32", torch_row(T, H, D, torch.float32, args.iters))
        if T in rw:
            row(T, "ringwise", "fp32", rw[T])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
