#!/usr/bin/env python3
"""Writes the PyTorch reference data that tests/test_gpt2.c checks the C GPT-2 against.

Needs PyTorch (Debian: `apt-get install python3-torch`, then run this with the
system interpreter, `/usr/bin/python3 tools/gen_gpt2_reference.py`). The tests
themselves need no torch: the output is committed.

Outputs, in tests/data/:
  gpt2_ref_model.bin   llm.c GPT-2 checkpoint (version 3) of a tiny random model
                       (L=2, C=32, NH=4, V=61 padded to 64, maxT=16); the padded
                       rows of wte hold random values, which must not matter
  gpt2_ref_tokens.bin  llm.c token file (256 int32 header, uint16 tokens) with
                       B*T+1 tokens: inputs are tokens[:-1], targets tokens[1:]
  gpt2_ref_expect.txt  "config B T", "loss <x>", "logit b t i <x>" lines and
                       "grad <tensor> <flat index> <x>" lines for a few entries of
                       every tensor (the largest in magnitude, the first, the last
                       and some random ones)

The model is written out here from GPT-2's definition (pre-LayerNorm blocks,
causal attention, GELU with the tanh approximation, tied head over the first V
rows of wte) and evaluated in float64 from the float32 weights.
"""
import math
import os
import struct

import torch

L, C, NH, V, VP, MAXT = 2, 32, 4, 61, 64, 16
B, T = 2, 8
SEED = 1234

NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
SHAPES = {
    "wte": (VP, C), "wpe": (MAXT, C), "ln1w": (L, C), "ln1b": (L, C),
    "qkvw": (L, 3 * C, C), "qkvb": (L, 3 * C), "attprojw": (L, C, C), "attprojb": (L, C),
    "ln2w": (L, C), "ln2b": (L, C), "fcw": (L, 4 * C, C), "fcb": (L, 4 * C),
    "fcprojw": (L, C, 4 * C), "fcprojb": (L, C), "lnfw": (C,), "lnfb": (C,),
}


def make_weights(gen):
    w = {}
    for name in NAMES:
        shape = SHAPES[name]
        if name in ("ln1w", "ln2w", "lnfw"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("b"):
            t = 0.05 * torch.randn(shape, generator=gen)
        else:
            t = 0.15 * torch.randn(shape, generator=gen)
        w[name] = t.float()
    return w


def layernorm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(p, idx, tgt):
    hs = C // NH
    x = p["wte"][idx] + p["wpe"][:T].unsqueeze(0)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        h = layernorm(x, p["ln1w"][l], p["ln1b"][l])
        qkv = h @ p["qkvw"][l].T + p["qkvb"][l]
        q, k, v = qkv.split(C, dim=-1)
        q = q.view(B, T, NH, hs).transpose(1, 2)
        k = k.view(B, T, NH, hs).transpose(1, 2)
        v = v.view(B, T, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p["attprojw"][l].T + p["attprojb"][l]
        h = layernorm(x, p["ln2w"][l], p["ln2b"][l])
        h = gelu(h @ p["fcw"][l].T + p["fcb"][l])
        x = x + h @ p["fcprojw"][l].T + p["fcprojb"][l]
    x = layernorm(x, p["lnfw"], p["lnfb"])
    logits = x @ p["wte"][:V].T
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1))
    return logits, loss


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
    os.makedirs(root, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    w32 = make_weights(gen)
    tokens = torch.randint(0, V, (B * T + 1,), generator=gen)

    header = [0] * 256
    header[:8] = [20240326, 3, MAXT, V, L, NH, C, VP]
    with open(os.path.join(root, "gpt2_ref_model.bin"), "wb") as f:
        f.write(struct.pack("<256i", *header))
        for name in NAMES:
            f.write(w32[name].contiguous().numpy().astype("<f4").tobytes())

    theader = [0] * 256
    theader[:3] = [20240520, 1, B * T + 1]
    with open(os.path.join(root, "gpt2_ref_tokens.bin"), "wb") as f:
        f.write(struct.pack("<256i", *theader))
        f.write(struct.pack("<%dH" % (B * T + 1), *tokens.tolist()))

    p = {k: v.double().requires_grad_(True) for k, v in w32.items()}
    idx = tokens[:-1].view(B, T)
    tgt = tokens[1:].view(B, T)
    logits, loss = forward(p, idx, tgt)
    loss.backward()

    pick = torch.Generator().manual_seed(SEED + 1)
    lines = ["config %d %d" % (B, T), "loss %.17g" % loss.item()]
    for (b, t, i) in [(0, 0, 0), (0, T - 1, V - 1), (1, 3, 17), (1, T - 1, 42)]:
        lines.append("logit %d %d %d %.17g" % (b, t, i, logits[b, t, i].item()))
    for name in NAMES:
        g = p[name].grad.reshape(-1)
        n = g.numel()
        chosen = [0, n - 1, int(g.abs().argmax())]
        chosen += torch.randint(0, n, (5,), generator=pick).tolist()
        for j in sorted(set(chosen)):
            lines.append("grad %s %d %.17g" % (name, j, g[j].item()))
    with open(os.path.join(root, "gpt2_ref_expect.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("loss %.6f, wrote %d lines" % (loss.item(), len(lines)))


if __name__ == "__main__":
    main()
