#!/usr/bin/env python3
"""Reads files written by ringwise with h5py, an HDF5 reader independent of ringwise's, and checks
them against the agreed format: one function per file kind.

    h5py_check.py checkpoint FILE...
    h5py_check.py dataset FILE...

A checkpoint's parameter names and shapes are derived here from the model options in its config
attribute; every tensor must be float32 and finite. After exactly one optimizer step the values are
checked too: AdamW's moments then satisfy m^2 / (1-beta1)^2 == v / (1-beta2) elementwise, and
the norm weights (initialised to ones, not decayed) equal 1 - lr * mhat / (sqrt(vhat) + eps).

A token dataset must have the agreed attributes, dtypes and shapes, increasing document offsets,
end-of-document tokens exactly at the documents' ends and a split at a document boundary; byte
tokens with one document per source file are compared with the files' bytes.

Exit status: 0 when every file passes, 1 on a mismatch, 77 (ctest's skip) when h5py is missing,
unless the environment variable CI is set, where a missing h5py fails.
"""
import math
import os
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:
    if os.environ.get("CI"):
        print(f"h5py_check: FAIL: cannot import h5py/numpy ({e}); install python3-h5py", file=sys.stderr)
        sys.exit(1)
    print(f"h5py_check: SKIP: cannot import h5py/numpy ({e})")
    sys.exit(77)


class Mismatch(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise Mismatch(message)


def parse_ini(text):
    """'key = value' lines, as ringwise's write_config_file writes them."""
    values = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def llama_parameter_shapes(cfg):
    """Hugging Face LLaMA names and shapes for the model options of a ringwise config."""
    V, C, F = int(cfg["vocab-size"]), int(cfg["d-model"]), int(cfg["ffn-dim"])
    H, KV, L = int(cfg["heads"]), int(cfg["kv-heads"]), int(cfg["layers"])
    D = C // H
    shapes = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (C,)
        shapes[p + "self_attn.q_proj.weight"] = (H * D, C)
        shapes[p + "self_attn.k_proj.weight"] = (KV * D, C)
        shapes[p + "self_attn.v_proj.weight"] = (KV * D, C)
        shapes[p + "self_attn.o_proj.weight"] = (C, H * D)
        shapes[p + "post_attention_layernorm.weight"] = (C,)
        shapes[p + "mlp.gate_proj.weight"] = (F, C)
        shapes[p + "mlp.up_proj.weight"] = (F, C)
        shapes[p + "mlp.down_proj.weight"] = (C, F)
    if cfg.get("tied-embeddings", "false") not in ("true", "1", "yes", "on"):
        shapes["lm_head.weight"] = (V, C)
    return shapes


def lr_at_step(step, total, warmup, peak, min_lr):
    if step <= warmup:
        return peak * step / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (peak - min_lr) * (1.0 + math.cos(math.pi * progress))


def attr_text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def check_checkpoint(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        expect(attr_text(a["ringwise_kind"]) == "checkpoint", f"ringwise_kind is {a['ringwise_kind']!r}")
        for key in ("format_version", "step", "adam_step", "seed"):
            expect(np.issubdtype(np.asarray(a[key]).dtype, np.integer), f"attribute {key} is not an integer")
        expect(int(a["format_version"]) == 1, f"format_version is {a['format_version']}")
        expect(attr_text(a["ringwise_version"]) != "", "ringwise_version is empty")
        cfg = parse_ini(attr_text(a["config"]))
        shapes = llama_parameter_shapes(cfg)

        stored = {name for name, obj in f.items() if isinstance(obj, h5py.Dataset)}
        expect(stored == set(shapes), f"parameters differ: missing {sorted(set(shapes) - stored)}, "
                                      f"unexpected {sorted(stored - set(shapes))}")
        for group in ("exp_avg", "exp_avg_sq"):
            names = set(f["optimizer"][group].keys())
            expect(names == set(shapes), f"optimizer/{group} names differ from the parameters")
        tensors = {}
        for name, shape in shapes.items():
            for dataset in (name, f"optimizer/exp_avg/{name}", f"optimizer/exp_avg_sq/{name}"):
                d = f[dataset]
                expect(d.shape == shape, f"{dataset} has shape {d.shape}, expected {shape}")
                expect(d.dtype == np.dtype("<f4"), f"{dataset} has dtype {d.dtype}, expected float32")
                values = d[()].astype(np.float64)
                expect(np.isfinite(values).all(), f"{dataset} holds non-finite values")
                tensors[dataset] = values

        if int(a["step"]) == 1 and int(a["adam_step"]) == 1:
            b1, b2, eps = float(cfg["beta1"]), float(cfg["beta2"]), float(cfg["adam-eps"])
            lr = lr_at_step(1, int(cfg["steps"]), int(cfg["warmup-steps"]), float(cfg["lr"]), float(cfg["min-lr"]))
            for name in shapes:
                m, v = tensors[f"optimizer/exp_avg/{name}"], tensors[f"optimizer/exp_avg_sq/{name}"]
                expect(np.abs(m).max() > 0, f"optimizer/exp_avg/{name} is all zero after a step")
                expect(np.allclose(m * m / (1 - b1) ** 2, v / (1 - b2), rtol=1e-4, atol=1e-30),
                       f"{name}: the moments are not those of one AdamW step")
                if name.endswith("norm.weight"):
                    want = 1.0 - lr * ((m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps))
                    worst = np.abs(tensors[name] - want).max()
                    expect(worst < 1e-6, f"{name} differs from 1 - lr * mhat / (sqrt(vhat) + eps) by {worst:g}")
    return f"{len(shapes)} parameters, each with both moments"


def source_files(sources):
    """The files `ringwise prepare` reads for its inputs: a file, or a directory's regular files in
    name order without *.dat."""
    files = []
    for source in sources:
        if os.path.isdir(source):
            names = sorted(os.listdir(source))
            files += [os.path.join(source, n) for n in names
                      if os.path.isfile(os.path.join(source, n)) and not os.path.islink(os.path.join(source, n))
                      and not n.endswith(".dat")]
        else:
            files.append(source)
    return files


def check_dataset(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        expect(attr_text(a["ringwise_kind"]) == "dataset", f"ringwise_kind is {a['ringwise_kind']!r}")
        for key in ("format_version", "vocab_size", "eod_token", "num_tokens", "num_docs", "train_tokens"):
            expect(np.issubdtype(np.asarray(a[key]).dtype, np.integer), f"attribute {key} is not an integer")
        expect(int(a["format_version"]) == 1, f"format_version is {a['format_version']}")
        vocab, eod = int(a["vocab_size"]), int(a["eod_token"])
        n_tokens, n_docs, n_train = int(a["num_tokens"]), int(a["num_docs"]), int(a["train_tokens"])
        tokenizer = attr_text(a["tokenizer"])
        expect(tokenizer == "byte" or tokenizer.startswith(("bpe:", "sentencepiece:")), f"tokenizer is {tokenizer!r}")

        tokens, offsets = f["tokens"], f["doc_offsets"]
        want_dtype = np.dtype("<u2") if vocab <= 65536 else np.dtype("<u4")
        expect(tokens.dtype == want_dtype, f"tokens has dtype {tokens.dtype}, expected {want_dtype}")
        expect(tokens.shape == (n_tokens,), f"tokens has shape {tokens.shape}, expected ({n_tokens},)")
        expect(offsets.dtype == np.dtype("<i8"), f"doc_offsets has dtype {offsets.dtype}, expected int64")
        expect(offsets.shape == (n_docs + 1,), f"doc_offsets has shape {offsets.shape}, expected ({n_docs + 1},)")
        t = tokens[()].astype(np.int64)
        o = offsets[()]
        expect(o[0] == 0 and o[-1] == n_tokens, f"doc_offsets runs from {o[0]} to {o[-1]}, not 0 to {n_tokens}")
        expect((np.diff(o) > 0).all(), "doc_offsets is not increasing")
        expect(t.size == 0 or t.max() < vocab, f"a token {t.max()} is not below vocab_size {vocab}")
        expect((np.flatnonzero(t == eod) == o[1:] - 1).all() and (t == eod).sum() == n_docs,
               "end-of-document tokens are not exactly at the ends of the documents")
        expect(n_train in set(o.tolist()), f"train_tokens {n_train} is not a document boundary")

        # Byte tokens with one document per input file are the files' bytes: compare them.
        files = [p for p in source_files(attr_text(a["sources"]).splitlines()) if os.path.getsize(p) > 0]
        compared = tokenizer == "byte" and len(files) == n_docs and not any(p.endswith(".jsonl") for p in files)
        if compared:
            for i, file in enumerate(files):
                with open(file, "rb") as src:
                    want = np.frombuffer(src.read(), dtype=np.uint8).astype(np.int64)
                got = t[o[i]:o[i + 1] - 1]
                expect(got.shape == want.shape and (got == want).all(), f"document {i} differs from {file}")
    return f"{n_tokens} tokens, {n_docs} documents" + (", equal to the source files' bytes" if compared else "")


CHECKS = {"checkpoint": check_checkpoint, "dataset": check_dataset}


def main(argv):
    if len(argv) < 3 or argv[1] not in CHECKS:
        print(f"usage: {argv[0]} {{{'|'.join(CHECKS)}}} FILE...", file=sys.stderr)
        return 2
    failed = 0
    for path in argv[2:]:
        try:
            print(f"h5py_check: {argv[1]} {path}: ok ({CHECKS[argv[1]](path)})")
        except (Mismatch, KeyError, OSError) as e:
            print(f"h5py_check: {argv[1]} {path}: FAIL: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
