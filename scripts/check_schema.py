#!/usr/bin/env python3
"""Cross-check recipes against the exported JSON Schema with Python's jsonschema (an independent
implementation). Usage: python3 scripts/check_schema.py [FILES...]  (default: recipes/ and examples/).
Needs: pip install jsonschema pyyaml. The Swift tests do the same check without Python."""
import glob
import json
import sys

import jsonschema
import yaml

schema = json.load(open("docs/kondate.schema.json"))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
files = sys.argv[1:] or sorted(glob.glob("recipes/**/*.yaml", recursive=True) + glob.glob("examples/**/*.yaml", recursive=True))
failed = 0
for path in files:
    errors = list(validator.iter_errors(yaml.safe_load(open(path, encoding="utf-8"))))
    failed += bool(errors)
    print(f"{'ok  ' if not errors else 'FAIL'} {path}")
    for error in errors[:5]:
        print(f"     {'/'.join(map(str, error.absolute_path))}: {error.message[:160]}")
print(f"{len(files) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
