#!/usr/bin/env python3
"""Copies a model folder and overwrites the first values of one tensor of model.safetensors
with NaN (and one with +inf), editing the data section in place (the header is untouched),
so that tests can check that non-finite weights are named and never turn into results.

Usage: make_nan_model.py SRC_DIR OUT_DIR TENSOR_NAME
"""
import json
import shutil
import struct
import sys

NAN = {"F32": struct.pack("<I", 0x7FC00000), "BF16": struct.pack("<H", 0x7FC0), "F16": struct.pack("<H", 0x7E00)}
INF = {"F32": struct.pack("<I", 0x7F800000), "BF16": struct.pack("<H", 0x7F80), "F16": struct.pack("<H", 0x7C00)}


def main() -> int:
    src, out, name = sys.argv[1:4]
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(src, out)
    path = f"{out}/model.safetensors"
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        entry = header[name]
        begin = 8 + n + entry["data_offsets"][0]
        f.seek(begin)
        f.write(NAN[entry["dtype"]] * 3 + INF[entry["dtype"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
