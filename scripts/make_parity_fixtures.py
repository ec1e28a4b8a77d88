#!/usr/bin/env python3
"""Writes the model-parity fixtures under Tests/KondateModelTests/Fixtures/parity/: one .safetensors file
per tiny Hugging Face `transformers` model, holding its float32 initial weights, the float64 reference
logits, loss and parameter gradients for one fixed batch, and ten float64 AdamW steps on that batch.

    pip install torch transformers safetensors
    python3 scripts/make_parity_fixtures.py            # writes into the fixtures folder
    python3 scripts/make_parity_fixtures.py --out DIR  # writes elsewhere (e.g. to diff against the committed files)

Fixtures: llama_mha_untied, llama_mha_tied, llama_gqa_untied, llama_gqa_tied (LlamaForCausalLM: vocab 96,
hidden 64, intermediate 160, 2 layers, 4 heads, 4 or 2 key/value heads, tied or untied lm_head), gpt2 and
gpt2_gelu_exact (GPT2LMHeadModel: vocab 96, n_embd 64, 2 layers, 4 heads, n_inner 256, gelu_new or exact gelu).
All use eager attention and no dropout.

For each fixture, with a fixed per-fixture seed:
  * weights: every parameter ~ N(0, 0.02) except norm weights = 1 + 0.1*N(0, 1) and biases = 0.02*N(0, 1),
    so that norm and bias gradients are exercised; drawn in named_parameters() order;
  * batch: input_ids (2, 16) uniform in [0, 96); labels = input_ids with labels[0, 5], labels[1, 9] and
    labels[1, 10] set to -100 (ignored);
  * reference: a float64 copy of the model; logits for input_ids; loss = mean cross-entropy of logits[:, t]
    against labels[:, t + 1] over the targets that are not -100 (the transformers causal-LM convention);
    gradients of that loss with respect to every named_parameters() entry (a tied lm_head is the embedding
    and appears once);
  * training: 10 torch.optim.AdamW steps on the same batch in float64 (lr 1e-3, betas (0.9, 0.95), eps 1e-8,
    weight decay 0.1 on parameters with dim >= 2 and 0 on 1-D parameters), with
    torch.nn.utils.clip_grad_norm_(params, 1.0) before each step; records the loss before each update and
    the global gradient norm before clipping.

Stock transformers does not run entirely in float64 when a model is cast with .double(): Llama computes
RMSNorm, the attention softmax and the RoPE angles in float32, and the causal-LM loss casts the logits to
float32. The float64 copy therefore runs with those four places replaced by the same formulas evaluated in
float64 (see Float64Reference). The script checks that the replaced model agrees with stock transformers in
float64 and in float32 to float32 rounding, and that the stock float32 loss is within 1e-4 of the reference.

Every tensor is stored as float32 (token ids and labels as exact float32 integers): param.<name>,
grad.<name>, input_ids, labels, logits, loss (1), adamw_losses (10), grad_norms (10). The file metadata
holds the model config ("config", JSON), the optimiser settings ("adamw", JSON), the torch and transformers
versions, the seed, and "reference": "float64". Rerunning with the same torch/transformers versions writes
identical bytes (the metadata keys are written in sorted order; see write_fixture).
"""
import argparse
import copy
import json
import math
import os
import struct
import types

import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from transformers.models.llama import modeling_llama

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEFAULT_OUT = os.path.join(ROOT, "Tests", "KondateModelTests", "Fixtures", "parity")

VOCAB = 96
BATCH, SEQ = 2, 16
IGNORED = [(0, 5), (1, 9), (1, 10)]  # (row, position) of labels set to -100
IGNORE_INDEX = -100
ADAMW = {"lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1,
         "no_decay": "1-D parameters", "clip": 1.0, "steps": 10}


def llama(kv_heads, tied):
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=kv_heads, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=tied, attention_bias=False, mlp_bias=False, hidden_act="silu",
        attention_dropout=0.0, attn_implementation="eager")
    return LlamaForCausalLM(config)


def gpt2(activation):
    config = GPT2Config(
        vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=64, n_inner=None,
        activation_function=activation, layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, attn_implementation="eager")
    return GPT2LMHeadModel(config)


# name -> (seed, model constructor)
FIXTURES = {
    "llama_mha_untied": (1001, lambda: llama(kv_heads=4, tied=False)),
    "llama_mha_tied": (1002, lambda: llama(kv_heads=4, tied=True)),
    "llama_gqa_untied": (1003, lambda: llama(kv_heads=2, tied=False)),
    "llama_gqa_tied": (1004, lambda: llama(kv_heads=2, tied=True)),
    "gpt2": (1005, lambda: gpt2("gelu_new")),
    "gpt2_gelu_exact": (1006, lambda: gpt2("gelu")),
}


# ---------------------------------------------------------------------------------------------------------
# Float64 replacements for the places where stock transformers computes in float32.


def _rms_norm_float64(self, hidden_states):
    # LlamaRMSNorm.forward without the cast to float32.
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def _rotary_float64(self, x, position_ids):
    # LlamaRotaryEmbedding.forward with the angles computed in float64 (inv_freq is recomputed in float64
    # when the replacement is installed).
    freqs = position_ids[..., None].to(torch.float64) * self.inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * self.attention_scaling
    sin = emb.sin() * self.attention_scaling
    return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def _llama_eager_attention_float64(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    # modeling_llama.eager_attention_forward with the softmax in the input dtype instead of float32.
    key_states = modeling_llama.repeat_kv(key, module.num_key_value_groups)
    value_states = modeling_llama.repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states)
    return attn_output.transpose(1, 2).contiguous(), attn_weights


class Float64Reference:
    """Context manager that makes a .double() Llama model compute entirely in float64 (RMSNorm, RoPE angles,
    attention softmax); GPT-2 already does. The loss is computed by causal_lm_loss, also in float64."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        for module in self.model.modules():
            if isinstance(module, modeling_llama.LlamaRMSNorm):
                module.forward = types.MethodType(_rms_norm_float64, module)
            elif isinstance(module, modeling_llama.LlamaRotaryEmbedding):
                config = module.config
                base = config.rope_parameters["rope_theta"]
                dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
                assert module.rope_type == "default" and module.attention_scaling == 1.0
                module.inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
                module.forward = types.MethodType(_rotary_float64, module)
        self.saved_attention = modeling_llama.eager_attention_forward
        modeling_llama.eager_attention_forward = _llama_eager_attention_float64
        return self.model

    def __exit__(self, *exc):
        modeling_llama.eager_attention_forward = self.saved_attention
        return False


def causal_lm_loss(logits, labels):
    """transformers' ForCausalLMLoss convention in the logits' dtype: position t predicts labels[t + 1],
    the last position predicts nothing, -100 targets are skipped, mean over the remaining targets."""
    return F.cross_entropy(logits[:, :-1, :].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="mean")


# ---------------------------------------------------------------------------------------------------------


def initialise(model, generator):
    """N(0, 0.02) for every parameter, except norm weights 1 + 0.1*N(0, 1) and biases 0.02*N(0, 1)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, param in model.named_parameters():
            owner, _, leaf = name.rpartition(".")
            is_norm = isinstance(modules[owner], (torch.nn.LayerNorm, modeling_llama.LlamaRMSNorm))
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if leaf == "bias":
                param.copy_(0.02 * noise)
            elif is_norm:
                param.copy_(1.0 + 0.1 * noise)
            else:
                param.copy_(0.02 * noise)


_DROP = object()  # marks config values that are not plain JSON


def plain(value):
    """Keeps JSON-representable config values (None, bool, int, float, str, and lists/dicts of them)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [plain(v) for v in value]
        return items if all(i is not _DROP for i in items) else _DROP
    if isinstance(value, dict):
        kept = {str(k): plain(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not _DROP}
    return _DROP


def make_fixture(name, seed, build):
    torch.manual_seed(seed)
    model = build().float().eval()
    generator = torch.Generator().manual_seed(seed)
    initialise(model, generator)
    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    labels = input_ids.clone()
    for row, pos in IGNORED:
        labels[row, pos] = IGNORE_INDEX

    names = [n for n, _ in model.named_parameters()]
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}

    # Stock transformers in float32, and stock transformers on a float64 copy: both computed before any
    # update, used only for the consistency checks below.
    with torch.no_grad():
        stock32 = model(input_ids=input_ids, labels=labels, use_cache=False)
        stock64 = copy.deepcopy(model).double()(input_ids=input_ids, labels=labels, use_cache=False)

    # The float64 reference model, trained with AdamW; step 0 gives the recorded logits, loss and gradients.
    ref = copy.deepcopy(model).double()
    params = [p for _, p in ref.named_parameters()]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": ADAMW["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"], foreach=False)
    losses, grad_norms = [], []
    with Float64Reference(ref):
        for step in range(ADAMW["steps"]):
            optimiser.zero_grad(set_to_none=True)
            out = ref(input_ids=input_ids, labels=labels, use_cache=False)
            loss = causal_lm_loss(out.logits, labels)
            # transformers' own loss (evaluated in float32 from the float64 logits) uses the same convention.
            assert abs(out.loss.item() - loss.item()) < 1e-6, (name, out.loss.item(), loss.item())
            loss.backward()
            if step == 0:
                logits = out.logits.detach().clone()
                grads = {n: p.grad.detach().clone() for n, p in ref.named_parameters()}
            norm = torch.nn.utils.clip_grad_norm_(params, ADAMW["clip"])
            losses.append(loss.item())
            grad_norms.append(norm.item())
            optimiser.step()

    # Consistency checks: the float64 replacements change results only at float32 rounding level, and a
    # float32 implementation of the same conventions lands within 1e-4 of the reference loss.
    assert abs(stock64.loss.item() - losses[0]) < 1e-6, (name, stock64.loss.item(), losses[0])
    assert (stock64.logits - logits).abs().max().item() < 1e-5, name
    assert abs(stock32.loss.item() - losses[0]) < 1e-4, (name, stock32.loss.item(), losses[0])
    assert (stock32.logits.double() - logits).abs().max().item() < 1e-4, name
    assert all(math.isfinite(x) for x in losses + grad_norms) and losses[-1] < losses[0], (name, losses)

    tensors = {}
    for n in names:
        tensors[f"param.{n}"] = initial[n]
        tensors[f"grad.{n}"] = grads[n].float()
    tensors["input_ids"] = input_ids.float()
    tensors["labels"] = labels.float()
    tensors["logits"] = logits.float()
    tensors["loss"] = torch.tensor([losses[0]], dtype=torch.float64).float()
    tensors["adamw_losses"] = torch.tensor(losses, dtype=torch.float64).float()
    tensors["grad_norms"] = torch.tensor(grad_norms, dtype=torch.float64).float()
    tensors = {k: v.detach().contiguous().to(torch.float32) for k, v in tensors.items()}
    assert torch.equal(tensors["input_ids"].long(), input_ids) and torch.equal(tensors["labels"].long(), labels)

    metadata = {
        "config": json.dumps(plain(model.config.to_dict()), sort_keys=True),
        "adamw": json.dumps(ADAMW, sort_keys=True),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "reference": "float64",
        "seed": str(seed),
    }
    return tensors, metadata, {"loss": losses[0], "loss_float32": stock32.loss.item(),
                               "final_loss": losses[-1], "grad_norm": grad_norms[0]}


def write_fixture(path, tensors, metadata):
    """save_file, then rewrite the JSON header with the __metadata__ keys sorted: safetensors serialises the
    metadata map in hash order, which differs between runs. Tensor entries, offsets and data are untouched."""
    save_file(tensors, path, metadata=metadata)
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    text += b" " * (-len(text) % 8)  # the data section stays 8-byte aligned, as save_file writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + length:])
    # The rewritten file reads back with the reference reader to the same tensors and metadata.
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == metadata and sorted(f.keys()) == sorted(tensors)
        for key in tensors:
            assert torch.equal(f.get_tensor(key), tensors[key]), key


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: the committed fixtures folder)")
    args = ap.parse_args()

    # Single-threaded, deterministic kernels so that reruns write identical bytes.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    for name, (seed, build) in FIXTURES.items():
        tensors, metadata, summary = make_fixture(name, seed, build)
        path = os.path.join(args.out, f"{name}.safetensors")
        write_fixture(path, tensors, metadata)
        print(f"{name}: {os.path.getsize(path)} bytes, {len(tensors)} tensors, loss {summary['loss']:.10f} "
              f"(float32 {summary['loss_float32']:.10f}), after 10 AdamW steps {summary['final_loss']:.10f}, "
              f"grad norm {summary['grad_norm']:.6f}")


if __name__ == "__main__":
    main()
