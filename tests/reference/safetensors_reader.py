"""A small safetensors reader written from the format's description, independent of ringwise:
8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, raw
little-endian data. Checks the byte ranges tile the data section.

As a script, `safetensors_reader.py FILE OUT` writes one line per tensor for a test to compare:
    name ndim dim... numel value...   (values as float.hex(), exact)
and, when the `safetensors` package is installed, first checks that it reads the same values.
"""
import json
import struct
import sys

SIZES = {"F32": (4, "f"), "F16": (2, "e")}


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    data = blob[8 + header_len :]
    header.pop("__metadata__", None)
    tensors, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, stop = e["data_offsets"]
        if begin != end:
            raise ValueError(f"{path}: tensor {name} starts at {begin}, expected {end}")
        numel = 1
        for d in e["shape"]:
            numel *= d
        if e["dtype"] == "BF16":
            halves = struct.unpack_from(f"<{numel}H", data, begin)
            values = [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
            size = 2
        else:
            size, code = SIZES[e["dtype"]]
            values = list(struct.unpack_from(f"<{numel}{code}", data, begin))
        if stop - begin != numel * size:
            raise ValueError(f"{path}: tensor {name} has {stop - begin} bytes for {numel} elements")
        tensors[name] = (list(e["shape"]), values)
        end = stop
    if end != len(data):
        raise ValueError(f"{path}: data section has {len(data)} bytes, tensors cover {end}")
    return tensors


def check_against_safetensors_package(path, tensors):
    try:
        from safetensors.numpy import load_file
    except ImportError:
        return
    for name, array in load_file(path).items():
        shape, values = tensors[name]
        assert list(array.shape) == shape, name
        assert [float(v) for v in array.reshape(-1)] == values, name


def main():
    path, out = sys.argv[1], sys.argv[2]
    tensors = load(path)
    check_against_safetensors_package(path, tensors)
    with open(out, "w") as f:
        for name, (shape, values) in sorted(tensors.items()):
            f.write(" ".join([name, str(len(shape))] + [str(d) for d in shape] + [str(len(values))]))
            f.write(" " + " ".join(v.hex() for v in values) + "\n")


if __name__ == "__main__":
    main()
