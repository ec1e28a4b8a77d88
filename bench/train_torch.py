#!/usr/bin/env python3
"""Training throughput of PyTorch + transformers on CPU, the reference for `kondate bench train`:
the same model shape, float32 weights, AdamW and a fixed random token batch, timed over whole optimizer
steps.

    python3 bench/train_torch.py --arch llama|gpt2 --hidden H --ffn F --layers L --heads N [--kv-heads K]
        --vocab V --seq T --batch B [--steps S] [--warmup W] [--threads N] [--attn eager|sdpa|both]
        [--precision fp32|bf16] [--json]

Precision: fp32 computes everything in float32; bf16 runs the forward pass (and so the loss) under
torch.autocast("cpu", dtype=torch.bfloat16) — PyTorch's mixed precision on CPU, the counterpart of
Kondate's `--precision bf16`: float32 weights, gradients and AdamW state, bf16 matmuls.

Model: LlamaForCausalLM (untied head) or GPT2LMHeadModel (head tied to the token embedding, as
transformers builds it; dropout 0), float32, from a fixed seed. One step: forward with
labels=input_ids, backward, clip_grad_norm_(1.0), AdamW(lr 1e-4, weight_decay 0.1).step(), zero_grad.
`warmup` untimed steps, then `steps` steps timed with time.perf_counter.

Attention: by default both the "eager" and the "sdpa" implementation are measured (a fresh model from
the same seed each) and the faster one is reported; the other's step time is listed too.

Reported: tokens_per_second = B·T·steps / elapsed, step_seconds (mean), gflops = model FLOPs per step /
step_seconds / 1e9 with Kondate's model-FLOPs formula (docs/plan.md):

    6·N_matmul·B·T + 12·B·L·T²·hidden

N_matmul counts every weight that enters a matrix multiplication: the layers' Linear (GPT-2: Conv1D)
weights and the output head (also when tied), not the input embedding or the position table. The
attention term is QKᵀ and A·V over the full T × T square for forward and backward (no causal halving).
"""
import argparse
import json
import sys
import time

import torch


def build(args, attn):
    """A fresh model for one attention implementation, initialised from the fixed seed."""
    import transformers
    torch.manual_seed(args.seed)
    # loss_type names transformers' default shifted cross-entropy explicitly (otherwise it warns).
    if args.arch == "llama":
        config = transformers.LlamaConfig(
            hidden_size=args.hidden, intermediate_size=args.ffn, num_hidden_layers=args.layers,
            num_attention_heads=args.heads, num_key_value_heads=args.kv_heads or args.heads,
            vocab_size=args.vocab, max_position_embeddings=args.seq, tie_word_embeddings=False,
            attn_implementation=attn, loss_type="ForCausalLM")
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.GPT2Config(
            n_embd=args.hidden, n_inner=args.ffn, n_layer=args.layers, n_head=args.heads,
            n_positions=args.seq, vocab_size=args.vocab, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=None, eos_token_id=None, attn_implementation=attn, loss_type="ForCausalLM")
        model = transformers.GPT2LMHeadModel(config)
    model = model.to(torch.float32)
    model.train()
    if model.config._attn_implementation != attn:
        sys.exit(f"train_torch.py: transformers chose attention {model.config._attn_implementation!r}, asked for {attn!r}")
    return model


def matmul_weights(model):
    """Weights that enter matrix multiplications, counted per module: a tied head counts once more."""
    from transformers.pytorch_utils import Conv1D
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Linear, Conv1D)))


def measure(args, attn):
    """Builds the model, runs warmup then timed steps; returns (mean step seconds, N_matmul, last loss)."""
    model = build(args, attn)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    generator = torch.Generator().manual_seed(args.seed)
    input_ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=generator)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    elapsed = time.perf_counter() - start
    return elapsed / args.steps, matmul_weights(model), loss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=("llama", "gpt2"), required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--ffn", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, help="llama only; defaults to --heads")
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", choices=("eager", "sdpa", "both"), default="both",
                    help="attention implementation; 'both' measures each and reports the faster")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: the forward pass under torch.autocast(cpu, bfloat16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print a single JSON object")
    args = ap.parse_args()
    if args.arch == "gpt2" and args.kv_heads not in (None, args.heads):
        ap.error("--kv-heads: GPT-2 has no grouped-query attention")
    if args.hidden % args.heads or args.heads % (args.kv_heads or args.heads):
        ap.error("--hidden must be a multiple of --heads, and --heads of --kv-heads")
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps and --threads must be at least 1, --warmup at least 0")

    torch.set_num_threads(args.threads)
    import transformers

    candidates = ("eager", "sdpa") if args.attn == "both" else (args.attn,)
    results = {attn: measure(args, attn) for attn in candidates}
    attn = min(results, key=lambda a: results[a][0])
    step_seconds, n_matmul, loss = results[attn]

    B, T, L, h = args.batch, args.seq, args.layers, args.hidden
    tokens = B * T
    flops_per_step = 6 * n_matmul * tokens + 12 * B * L * T * T * h
    report = {
        "arch": args.arch, "hidden": h, "ffn": args.ffn, "layers": L, "heads": args.heads,
        "kv_heads": args.kv_heads or args.heads, "vocab": args.vocab, "seq": T, "batch": B,
        "steps": args.steps, "warmup": args.warmup, "precision": args.precision,
        "tokens_per_second": tokens / step_seconds,
        "step_seconds": step_seconds,
        "gflops": flops_per_step / step_seconds / 1e9,
        "flops_per_step": flops_per_step,
        "matmul_parameters": n_matmul,
        "loss": loss,
        "attn_implementation": attn,
        "step_seconds_by_attn": {a: r[0] for a, r in results.items()},
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if args.json:
        print(json.dumps(report))
        return
    others = ", ".join(f"{a} {r[0]:.3f} s" for a, r in results.items() if a != attn)
    print(f"torch {torch.__version__} {args.precision} {args.arch} h{h} f{args.ffn} L{L} n{args.heads} V{args.vocab} T{T} B{B}, "
          f"{report['threads']} threads: {report['tokens_per_second']:,.0f} tokens/s, {step_seconds:.3f} s/step, "
          f"{report['gflops']:.1f} GFLOP/s, attention {attn}" + (f" (slower: {others})" if others else "")
          + f", loss {loss:.4f}")


if __name__ == "__main__":
    main()
