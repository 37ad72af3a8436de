#!/usr/bin/python3
"""The ringwise LLaMA model and training step in PyTorch (CPU, fp32), timed the way
`ringwise bench train` times it: --warmup untimed steps, then --iters timed ones.

Same model: byte vocabulary, RMSNorm (eps 1e-5, with weight), RoPE (HF rotate-half, theta 1e4),
causal attention with grouped-query heads, SwiGLU MLP (gate/up/down, no biases), untied lm_head.
Same step: forward, cross-entropy on next tokens, backward, global-norm clip, AdamW (lr 1e-3,
betas 0.9/0.95, weight decay 0.1) with PyTorch's default (for-each/fused) implementation choice.
The tokens are random: speed does not depend on the text.

    /usr/bin/python3 bench/llama_torch.py --threads 2 --iters 10 --json
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq_len, head_dim, theta):
    """cos, sin of shape (T, head_dim), the frequencies repeated for both halves (HF layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):  # x: (B, H, T, hd)
    return x * cos + rotate_half(x) * sin


def causal_attention(q, k, v):
    """softmax(q k^T / sqrt(hd) + causal mask) v; PyTorch's fused kernel where it has one (>= 2.0)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


class Attention(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.n_heads, self.n_kv_heads = a.heads, a.kv_heads
        self.head_dim = a.d_model // a.heads
        self.q_proj = nn.Linear(a.d_model, a.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(a.d_model, a.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(a.d_model, a.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(a.heads * self.head_dim, a.d_model, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.n_kv_heads != self.n_heads:  # grouped-query: each kv head serves a group of q heads
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = causal_attention(q, k, v)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.gate_proj = nn.Linear(a.d_model, a.ffn_dim, bias=False)
        self.up_proj = nn.Linear(a.d_model, a.ffn_dim, bias=False)
        self.down_proj = nn.Linear(a.ffn_dim, a.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.input_layernorm = RMSNorm(a.d_model, a.norm_eps)
        self.self_attn = Attention(a)
        self.post_attention_layernorm = RMSNorm(a.d_model, a.norm_eps)
        self.mlp = MLP(a)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab_size, a.d_model)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.d_model, a.norm_eps)
        self.lm_head = nn.Linear(a.d_model, a.vocab_size, bias=False)
        cos, sin = rope_tables(a.seq_len, a.d_model // a.heads, a.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, mean=0.0, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        cos, sin = self.cos[:T], self.sin[:T]
        x = self.embed_tokens(idx)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = PyTorch's default")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (default 2)")
    p.add_argument("--iters", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--vocab-size", type=int, default=256)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--ffn-dim", type=int, default=768)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--norm-eps", type=float, default=1e-5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    a = p.parse_args(argv)
    if a.heads < 1 or a.d_model % a.heads or (a.d_model // a.heads) % 2:
        p.error(f"--heads {a.heads} must divide --d-model {a.d_model} into an even head dim")
    if a.kv_heads < 1 or a.heads % a.kv_heads:
        p.error(f"--kv-heads {a.kv_heads} must divide --heads {a.heads}")
    if a.iters < 1 or a.warmup < 0 or a.threads < 0:
        p.error("--iters must be at least 1, --warmup and --threads not negative")
    return a


def main(argv):
    a = parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Llama(a)
    params = sum(p.numel() for p in model.parameters())
    # Weight decay on matrices only, as in ringwise (norm weights are not decayed).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    tokens = torch.randint(0, a.vocab_size, (a.batch_size, a.seq_len + 1))
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = F.cross_entropy(logits.view(-1, a.vocab_size), targets.view(-1))
        loss.backward()
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        return loss.item()  # .item() waits for the step, as ringwise's loss does

    for _ in range(a.warmup):
        step()
    start = time.perf_counter()
    for _ in range(a.iters):
        loss = step()
    elapsed = time.perf_counter() - start

    step_s = elapsed / a.iters
    result = {
        "tokens_per_s": a.batch_size * a.seq_len / step_s,
        "step_ms": step_s * 1e3,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,  # KiB on Linux
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "params": params,
        "loss": loss,
    }
    if a.json:
        print(json.dumps(result))
    else:
        print(f"PyTorch {torch.__version__} LLaMA d_model {a.d_model}, {a.layers} layers, {a.heads}/{a.kv_heads} heads, "
              f"ffn {a.ffn_dim}, seq {a.seq_len} x batch {a.batch_size}, {params / 1e6:.2f}M params, "
              f"{result['threads']} threads")
        print(f"  {result['tokens_per_s']:.0f} tok/s | {result['step_ms']:.1f} ms/step | "
              f"peak RSS {result['peak_rss_mb']:.0f} MB | loss {loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
