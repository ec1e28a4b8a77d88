#!/usr/bin/env python3
"""An independent reader for Megatron-LM indexed datasets (.bin/.idx), written from the published
layout (megatron/core/datasets/indexed_dataset.py: _IndexWriter/_IndexReader), with only the Python
standard library. It checks a pair written by Kondate and prints or compares its documents.

    python3 scripts/read_megatron_idx.py PREFIX                 # summary
    python3 scripts/read_megatron_idx.py PREFIX --dump          # one JSON array of ids per document
    python3 scripts/read_megatron_idx.py PREFIX --compare F     # F: JSON lines of id arrays; exit 1 on any difference

Layout (little-endian): magic b"MMIDIDX\\x00\\x00", version u64 = 1, dtype code u8, sequence count S u64,
document count D u64, then S int32 lengths, S int64 byte pointers, D int64 document indices.
"""
import argparse
import json
import struct
import sys
from array import array

DTYPES = {1: ("B", 1), 2: ("b", 1), 3: ("h", 2), 4: ("i", 4), 5: ("q", 8), 6: ("d", 8), 7: ("f", 4), 8: ("H", 2)}


def read(prefix):
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    if idx[:9] != b"MMIDIDX\x00\x00":
        raise SystemExit(f"{prefix}.idx: bad magic {idx[:9]!r}")
    (version,) = struct.unpack_from("<Q", idx, 9)
    code = idx[17]
    count, docs = struct.unpack_from("<QQ", idx, 18)
    if version != 1 or code not in DTYPES:
        raise SystemExit(f"{prefix}.idx: version {version}, dtype code {code}")
    off = 34
    lengths = struct.unpack_from(f"<{count}i", idx, off); off += 4 * count
    pointers = struct.unpack_from(f"<{count}q", idx, off); off += 8 * count
    doc_idx = struct.unpack_from(f"<{docs}q", idx, off)
    fmt, size = DTYPES[code]
    with open(prefix + ".bin", "rb") as f:
        data = f.read()
    expected = sum(lengths) * size
    if len(data) != expected:
        raise SystemExit(f"{prefix}.bin has {len(data)} bytes, the index describes {expected}")
    sequences = []
    for length, pointer in zip(lengths, pointers):
        a = array(fmt)
        a.frombytes(data[pointer:pointer + length * size])
        if sys.byteorder != "little":
            a.byteswap()
        sequences.append(list(a))
    return {"dtype": code, "lengths": lengths, "document_indices": doc_idx, "sequences": sequences}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--dump", action="store_true")
    ap.add_argument("--compare")
    args = ap.parse_args()
    d = read(args.prefix)
    if args.dump:
        for s in d["sequences"]:
            print(json.dumps(s))
    elif args.compare:
        with open(args.compare) as f:
            expected = [json.loads(line) for line in f if line.strip()]
        if expected != d["sequences"]:
            n = sum(1 for a, b in zip(expected, d["sequences"]) if a != b)
            print(f"DIFFERENT: {len(expected)} expected vs {len(d['sequences'])} read, {n} differing")
            sys.exit(1)
        print(f"identical: {len(expected)} documents, {sum(map(len, expected))} tokens")
    else:
        print(json.dumps({"dtype": d["dtype"], "documents": len(d["document_indices"]) - 1, "sequences": len(d["lengths"]),
                          "tokens": sum(d["lengths"])}))


main()
