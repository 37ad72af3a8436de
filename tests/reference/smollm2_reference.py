"""Reference logits of SmolLM2-135M-Instruct from its GGUF file, computed without ringwise: the
`gguf` package reads and dequantises the tensors (its own numpy implementation), the model is the
float64 PyTorch LLaMA of hf_llama_logits.py, and the tokens come from the `tokenizers` package
fed the GGUF's vocabulary and merges. Writes smollm2_logits.json for tests/jobs_smollm2_test.cpp:

    smollm2_reference.py FILE.gguf OUT.json

The q/k un-permutation (llama.cpp's converter orders each head's rows for its adjacent-pair RoPE)
is checked here too: attention scores with llama.cpp's RoPE on the stored rows must equal those
with Hugging Face's rotate-half RoPE on the un-permuted rows.
"""
import json
import sys

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from hf_llama_logits import llama_logits, rotate_half

TEXT = "The capital of France is Paris. The capital of Germany is"
PROMPT = "The capital of France is"
GREEDY_STEPS = 8
TOP_K = 10
# Tensors whose dequantised values the test compares directly, one per ggml type in the file.
CHECKED_TENSORS = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight"]


def field(reader, key):
    f = reader.fields[key]
    values = [f.parts[i] for i in f.data]
    if f.types[-1].name == "STRING":
        values = [bytes(v).decode("utf-8") for v in values]
    else:
        values = [v.item() for v in values]
    return values if f.types[0].name == "ARRAY" else values[0]


def tokenizer(reader):
    vocab = {t: i for i, t in enumerate(field(reader, "tokenizer.ggml.tokens"))}
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab, merges))
    # SmolLM2's pre-tokenizer (GGUF tokenizer.ggml.pre = "smollm"): single digits, then GPT-2 bytes.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    return tok


def unpermute(w, heads):
    """llama.cpp's row order (head, pair index i, member s) back to Hugging Face's (head, s, i)."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def pair_rope(x, theta):
    """llama.cpp's RoPE (rope type 0): rotates (x[2i], x[2i+1]) by pos * theta^(-2i/D). x: [T, H, D]."""
    T, _, D = x.shape
    angles = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2)


def half_rope(x, theta):
    T, _, D = x.shape
    angles = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    cos, sin = torch.cat([angles.cos()] * 2, -1)[:, None, :], torch.cat([angles.sin()] * 2, -1)[:, None, :]
    return x * cos + rotate_half(x) * sin


def check_unpermutation(raw, w, cfg, tokens):
    """Layer 0's attention scores both ways; the inputs are the raw embeddings (any vectors do)."""
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    H, KH, theta = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["rope_theta"]
    D = cfg["hidden_size"] // H

    def scores(wq, wk, rope):
        q = rope((x @ wq.T).view(len(tokens), H, D), theta)
        k = rope((x @ wk.T).view(len(tokens), KH, D), theta).repeat_interleave(H // KH, dim=1)
        return torch.einsum("thd,shd->hts", q, k)

    stored = scores(raw["blk.0.attn_q.weight"], raw["blk.0.attn_k.weight"], pair_rope)
    hf = scores(w["model.layers.0.self_attn.q_proj.weight"], w["model.layers.0.self_attn.k_proj.weight"], half_rope)
    diff = (stored - hf).abs().max().item()
    assert diff <= 1e-9 * max(1.0, stored.abs().max().item()), f"un-permuted q/k disagree with llama.cpp's RoPE: {diff}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    reader = GGUFReader(sys.argv[1])
    assert field(reader, "general.architecture") == "llama"
    H, KH = field(reader, "llama.attention.head_count"), field(reader, "llama.attention.head_count_kv")
    cfg = {
        "hidden_size": field(reader, "llama.embedding_length"),
        "num_hidden_layers": field(reader, "llama.block_count"),
        "num_attention_heads": H,
        "num_key_value_heads": KH,
        "rms_norm_eps": field(reader, "llama.attention.layer_norm_rms_epsilon"),
        "rope_theta": field(reader, "llama.rope.freq_base"),
        "tie_word_embeddings": all(t.name != "output.weight" for t in reader.tensors),
    }
    names = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
    layer_names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                   "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                   "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
    raw, w, checked = {}, {}, {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type)  # numpy shape: the ggml dims reversed
        if t.name in CHECKED_TENSORS:
            flat = values.astype(np.float64).ravel()
            checked[t.name] = {"type": t.tensor_type.name, "sum": flat.sum(), "abs_sum": np.abs(flat).sum(),
                               "first": flat[:8].tolist(), "last": flat[-8:].tolist()}
        base, kind = t.name.rsplit(".", 1)
        parts = base.split(".")
        hf = f"model.layers.{parts[1]}.{layer_names[parts[2]]}" if parts[0] == "blk" else names[base]
        raw[t.name] = torch.from_numpy(values.astype(np.float64))
        if parts[-1] in ("attn_q", "attn_k"):
            values = unpermute(values, H if parts[-1] == "attn_q" else KH)
        w[f"{hf}.{kind}"] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))

    tok = tokenizer(reader)
    tokens, prompt = tok.encode(TEXT).ids, tok.encode(PROMPT).ids
    assert tokens[: len(prompt)] == prompt
    check_unpermutation(raw, w, cfg, tokens)

    logits = llama_logits(cfg, w, tokens)
    greedy = []
    for _ in range(GREEDY_STEPS):
        greedy.append(int(llama_logits(cfg, w, prompt + greedy)[-1].argmax()))
    checked_ids = sorted(set(tokens + greedy + list(range(0, logits.shape[1], 2048)) + [logits.shape[1] - 1]))
    positions = []
    for row in logits:
        top = torch.topk(row, TOP_K)
        positions.append({"top": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
                          "checked": [float(row[i]) for i in checked_ids]})
    out = {
        "about": "SmolLM2-135M-Instruct.Q4_1.gguf logits, written by tests/reference/smollm2_reference.py",
        "text": TEXT, "tokens": tokens, "prompt_text": PROMPT, "prompt": prompt,
        "greedy": greedy, "greedy_text": tok.decode(greedy),
        "checked_ids": checked_ids, "positions": positions, "tensors": checked,
    }
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)
    print(f"{len(tokens)} tokens; greedy after {PROMPT!r}: {tok.decode(greedy)!r} {greedy}")


if __name__ == "__main__":
    main()
