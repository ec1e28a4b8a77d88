#!/usr/bin/env python3
"""Writes the export round-trip fixtures under Tests/KondateModelTests/Fixtures/roundtrip/.

For each architecture, a short Kondate training run on the bundled example corpus produces a Hugging
Face model directory; the script copies its config.json, generation_config.json and model.safetensors
into the fixture folder, loads that folder with transformers (AutoModelForCausalLM), and stores the
logits transformers computes for a fixed batch in expected.safetensors (F32: input_ids (2, 24) as
exact float integers, logits (2, 24, vocab)). The Swift test loads the same folder with Kondate and
must reproduce those logits, so the fixture proves that what Kondate writes is what transformers reads.

    swift build -c release
    pip install torch transformers safetensors
    python3 scripts/make_roundtrip_fixture.py

Kondate's training is deterministic, so rerunning reproduces the model files bit for bit.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "examples", "tiny", "tiny-llama.yaml")

# Overrides per fixture: a short run of the example recipe, and a GPT-2 variant of it.
VARIANTS = {
    "llama": ["pretrain.steps=30", "pretrain.checkpoint.every=30"],
    "gpt2": ["pretrain.steps=30", "pretrain.checkpoint.every=30", "model.arch=gpt2", "model.activation=gelu_tanh",
             "model.tie_embeddings=true", "model.kv_heads=4", "model.ffn=256"],
}


def train(kondate, overrides, out):
    args = [kondate, "run", RECIPE, "--out", out]
    for o in overrides:
        args += ["--set", o]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out, "pretrain", "model")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "Tests", "KondateModelTests", "Fixtures", "roundtrip"))
    parser.add_argument("--kondate", default=os.path.join(ROOT, ".build", "release", "kondate"))
    args = parser.parse_args()
    if not os.path.exists(args.kondate):
        sys.exit(f"{args.kondate} not found: run `swift build -c release` first")
    torch.manual_seed(0)
    for name, overrides in VARIANTS.items():
        with tempfile.TemporaryDirectory() as run:
            model_dir = train(args.kondate, overrides, run)
            target = os.path.join(args.out, name)
            os.makedirs(target, exist_ok=True)
            for f in ["config.json", "generation_config.json", "model.safetensors"]:
                shutil.copyfile(os.path.join(model_dir, f), os.path.join(target, f))
        model = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32)
        model.eval()
        vocab = model.config.vocab_size
        generator = torch.Generator().manual_seed(1234)
        input_ids = torch.randint(0, vocab, (2, 24), generator=generator)
        with torch.no_grad():
            logits = model(input_ids).logits.float()
        save_file({"input_ids": input_ids.float().contiguous(), "logits": logits.contiguous()},
                  os.path.join(target, "expected.safetensors"),
                  metadata={"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                            "architecture": model.config.architectures[0]})
        print(f"{name}: {model.config.architectures[0]}, {sum(p.numel() for p in model.parameters())} parameters, "
              f"logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main()
