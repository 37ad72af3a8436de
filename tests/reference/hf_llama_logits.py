"""Logits of an exported model from a minimal LLaMA written here in PyTorch (float64), compared with
ringwise's: an independent check that `ringwise export` writes weights and config.json meaning
what Hugging Face's LlamaForCausalLM means by them (names, layouts, rotate-half RoPE, GQA, tying).

    hf_llama_logits.py MODEL_DIR TOKENS LOGITS [MODEL_DIR TOKENS LOGITS ...]
TOKENS: whitespace-separated token ids; LOGITS: ringwise's float32 logits [T, vocab], raw.
Exits 1 when, for any model, the largest difference exceeds 1e-4 * max(1, largest |logit|).
(Several models per run: importing torch is most of the time.)
"""
import json
import math
import os
import sys

import torch

from safetensors_reader import load


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def llama_logits(cfg, w, tokens):
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KH = cfg.get("num_key_value_heads", H)
    D, T, eps = C // H, len(tokens), cfg["rms_norm_eps"]
    inv_freq = cfg.get("rope_theta", 10000.0) ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = torch.cat([angles.cos()] * 2, -1)[:, None, :], torch.cat([angles.sin()] * 2, -1)[:, None, :]
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)

    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    for l in range(cfg["num_hidden_layers"]):
        p = lambda name: w[f"model.layers.{l}.{name}.weight"]
        h = rms_norm(x, p("input_layernorm"), eps)
        q = (h @ p("self_attn.q_proj").T).view(T, H, D)
        k = (h @ p("self_attn.k_proj").T).view(T, KH, D)
        v = (h @ p("self_attn.v_proj").T).view(T, KH, D)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        heads = []
        for head in range(H):
            kv = head // (H // KH)
            scores = q[:, head] @ k[:, kv].T / math.sqrt(D) + causal
            heads.append(torch.softmax(scores, -1) @ v[:, kv])
        x = x + torch.cat(heads, -1) @ p("self_attn.o_proj").T
        h = rms_norm(x, p("post_attention_layernorm"), eps)
        x = x + (torch.nn.functional.silu(h @ p("mlp.gate_proj").T) * (h @ p("mlp.up_proj").T)) @ p("mlp.down_proj").T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def matches(model_dir, tokens_path, logits_path):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = {name: torch.tensor(values, dtype=torch.float64).view(shape)
         for name, (shape, values) in load(os.path.join(model_dir, "model.safetensors")).items()}
    if cfg.get("tie_word_embeddings") and "lm_head.weight" in w:
        sys.exit("a tied model must not carry lm_head.weight")
    with open(tokens_path) as f:
        tokens = [int(t) for t in f.read().split()]
    ref = llama_logits(cfg, w, tokens)
    with open(logits_path, "rb") as f:
        got = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).to(torch.float64).view(ref.shape)
    diff, scale = (got - ref).abs().max().item(), max(1.0, ref.abs().max().item())
    print(f"{model_dir}: max |ringwise - reference| = {diff:.3g}, max |logit| = {ref.abs().max().item():.3g}")
    return diff <= 1e-4 * scale


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit(__doc__)
    results = [matches(*args[i : i + 3]) for i in range(0, len(args), 3)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
