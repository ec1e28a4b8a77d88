#!/usr/bin/env python3
"""Checks that a tokenizer.json trained by Kondate's BPETrainer loads in the Python `tokenizers`
package and encodes like Kondate.

    # write the ids tokenizers gives for mixed.jsonl next to the committed trained fixture
    python3 scripts/check_trained_tokenizer.py --write-expected

    # compare with ids Kondate wrote: one {"ids": [...]} line per text of mixed.jsonl
    python3 scripts/check_trained_tokenizer.py --tokenizer PATH --kondate-ids KONDATE.jsonl

Default tokenizer: Tests/KondateTokenizersTests/Fixtures/tokenizers/hf/kondate-trained-bpe.json (written by
`KONDATE_RECORD_TRAINER_FIXTURE=1 swift test --filter BPETrainer`). --write-expected writes
<name>.expected.jsonl beside it: {"ids": encode(text, add_special_tokens=False).ids, "decoded":
decode(ids, skip_special_tokens=False)}, "decoded" only where it differs from the text. Exits 1 on any
mismatch or when the file does not load.
"""
import argparse
import json
import os
import sys

from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "KondateTokenizersTests", "Fixtures", "tokenizers")
DEFAULT = os.path.join(FIXTURES, "hf", "kondate-trained-bpe.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default=DEFAULT)
    ap.add_argument("--texts", default=os.path.join(FIXTURES, "mixed.jsonl"))
    ap.add_argument("--write-expected", action="store_true")
    ap.add_argument("--kondate-ids", help="JSON lines of the ids Kondate gives for the texts")
    args = ap.parse_args()

    try:
        tok = Tokenizer.from_file(args.tokenizer)
    except Exception as e:  # noqa: BLE001 - report any load failure
        print(f"{args.tokenizer}: tokenizers cannot load it: {e}")
        return 1
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    rows = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        decoded = tok.decode(ids, skip_special_tokens=False)
        rows.append((ids, decoded))
    bad = [i for i, (ids, decoded) in enumerate(rows) if decoded != texts[i]]
    print(f"{args.tokenizer}: loads; vocab {tok.get_vocab_size()}; {len(texts)} texts, "
          f"{sum(len(r[0]) for r in rows)} ids; {len(texts) - len(bad)} decode back to the text")

    if args.write_expected:
        out = os.path.splitext(args.tokenizer)[0] + ".expected.jsonl"
        with open(out, "w", encoding="utf-8") as f:
            for text, (ids, decoded) in zip(texts, rows):
                row = {"ids": ids}
                if decoded != text:
                    row["decoded"] = decoded
                f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        print("wrote", out)

    if args.kondate_ids:
        with open(args.kondate_ids, encoding="utf-8") as f:
            theirs = [json.loads(line)["ids"] for line in f]
        if len(theirs) != len(rows):
            print(f"{args.kondate_ids}: {len(theirs)} lines for {len(rows)} texts")
            return 1
        mismatches = [i for i, (ids, _) in enumerate(rows) if ids != theirs[i]]
        for i in mismatches[:5]:
            print(f"text {i} {texts[i][:80]!r}: tokenizers {rows[i][0][:30]} kondate {theirs[i][:30]}")
        print(f"{len(rows) - len(mismatches)} of {len(rows)} texts encode identically")
        if mismatches:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
