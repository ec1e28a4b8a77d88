#!/usr/bin/env python3
"""Writes the bf16 parity fixtures under Tests/KondateModelTests/Fixtures/parity-bf16/: for each model of
Tests/KondateModelTests/Fixtures/parity/ (made by scripts/make_parity_fixtures.py), the logits and loss
that transformers computes for the same weights and batch in float32 under
torch.autocast("cpu", dtype=torch.bfloat16) — PyTorch's mixed precision, the counterpart of Kondate's
`precision: bf16`.

    pip install torch transformers safetensors
    python3 scripts/make_bf16_parity_fixtures.py            # writes into the fixtures folder
    python3 scripts/make_bf16_parity_fixtures.py --out DIR  # writes elsewhere

Each file holds logits_autocast (float32, the bf16 logits widened) and loss_autocast (1), with the torch
and transformers versions in its metadata. The float64 reference logits and loss stay in the parity
fixture itself; `ParityTests.bf16FollowsAutocast` compares Kondate's bf16 logits with both.

What autocast does on CPU (torch's autocast op lists): nn.Linear and torch.matmul take bf16 operands and
return bf16 — so the projections, the head and, with eager attention, QKᵀ and A·V; softmax, the norms'
reductions and the loss run in float32. Kondate rounds the linear layers' operands to bf16 too, but keeps
their f32 accumulations, and computes attention in f32; its bf16 logits should therefore be at least as
close to the float64 reference as autocast's.
"""
import argparse
import json
import os

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PARITY = os.path.join(ROOT, "Tests", "KondateModelTests", "Fixtures", "parity")
DEFAULT_OUT = os.path.join(ROOT, "Tests", "KondateModelTests", "Fixtures", "parity-bf16")
FIXTURES = ["llama_mha_untied", "llama_mha_tied", "llama_gqa_untied", "llama_gqa_tied", "gpt2", "gpt2_gelu_exact"]


def load(name):
    """The parity fixture's model in float32 with its weights, its batch, and its float64 references."""
    with safe_open(os.path.join(PARITY, f"{name}.safetensors"), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(metadata["config"])
    if config["model_type"] == "llama":
        model = LlamaForCausalLM(LlamaConfig.from_dict(config, attn_implementation="eager"))
    else:
        model = GPT2LMHeadModel(GPT2Config.from_dict(config, attn_implementation="eager"))
    model = model.float().eval()
    state = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    assert not unexpected and set(missing) <= tied | {k for k in missing if k.endswith(".attn.bias") or k.endswith("masked_bias")}, \
        (name, missing, unexpected)
    return model, tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: the committed fixtures folder)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    for name in FIXTURES:
        model, t = load(name)
        input_ids, labels = t["input_ids"].long(), t["labels"].long()
        with torch.no_grad():
            fp32 = model(input_ids=input_ids, labels=labels, use_cache=False)
            # The fixture's weights reproduce its float32 results (a check that they were loaded whole).
            assert (fp32.logits.double() - t["logits"].double()).abs().max().item() < 1e-4, name
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(input_ids=input_ids, labels=labels, use_cache=False)
        logits = out.logits.float()
        reference = t["logits"].double()
        error = (logits.double() - reference).abs().max().item()
        loss_error = abs(out.loss.item() - t["loss"].item())
        path = os.path.join(args.out, f"{name}.safetensors")
        save_file({"logits_autocast": logits.contiguous(), "loss_autocast": torch.tensor([out.loss.item()], dtype=torch.float32)},
                  path, metadata={"torch": torch.__version__, "transformers": transformers.__version__,
                                  "autocast": "cpu bfloat16", "logits_dtype": str(out.logits.dtype).replace("torch.", "")})
        print(f"{name}: autocast logits {out.logits.dtype}, max |Δ| from the float64 reference {error:.3e}, "
              f"loss {out.loss.item():.6f} (reference {t['loss'].item():.6f}, |Δ| {loss_error:.3e})")


if __name__ == "__main__":
    main()
