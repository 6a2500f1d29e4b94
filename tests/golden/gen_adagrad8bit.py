#!/usr/bin/python3
"""Golden files for adagrad8bit: an independent float32 NumPy re-implementation
of bitsandbytes' Adagrad8bit (Optimizer1State "adagrad", bitsandbytes @95f9af3):

  8-bit states (numel >= min_8bit_size), kernel kOptimizerStatic8bit1StateBlockwise,
  branch ADAGRAD, blocks of 256 elements, per block:
    g' = g + wd * p            (only when wd > 0)
    s  = Q[code] * absmax      (Q: the signed dynamic map, create_dynamic_map(True))
    s  = s + g' * g'
    absmax = max |s| over the block; a partial last block also counts its
             padding lanes (code 128, gradient 0, parameter 0)
    p  = p - lr * (g / (sqrt(s) + eps))     (the raw g: the kernel reloads g_vals)
    code = quantize_2D<signed>(s / absmax), then the sign fix: when the sign bit
           of Q[code] differs from that of s, code += 1 if s > 0 else code -= 1
  32-bit states (numel < min_8bit_size), kernel kOptimizer32bit1State, ADAGRAD:
    g' = g + wd * p (wd > 0);  s = s + g' * g';  p = p - lr * (g' / (sqrt(s) + eps))

Everything is float32 (NumPy float32 arithmetic is IEEE, each operation rounded
as on the GPU); the division is exact where the kernel uses __fdividef. The
quantization map is built the way bitsandbytes builds it (torch.linspace in
float32), the code search is quantize_2D's 7-level binary search with its
three quadrant pivots (map entries 63, 127, 191) and nearest-midpoint choice.

Run: /usr/bin/python3 tests/golden/gen_adagrad8bit.py tests/golden
(writes adagrad8bit_*.golden; the files are committed, this regenerates them).
"""
import sys

import numpy as np
import torch

F = np.float32


def dynamic_map_signed():
    """bitsandbytes.functional.create_dynamic_map(signed=True, 7, 8), sorted."""
    data = []
    max_exp, non_sign = 7, 7
    for i in range(max_exp):
        items = int(2 ** (i + non_sign - max_exp) + 1)
        b = torch.linspace(0.1, 1, items, dtype=torch.float32)
        means = (b[:-1] + b[1:]) / 2.0
        data += ((10 ** (-(max_exp - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exp - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 256
    data.sort()
    return np.array(data, dtype=F)


Q = dynamic_map_signed()
QUAD = [Q[63], Q[127], Q[191]]


def quantize_2d(x):
    """quantize_2D<SIGNED=1>: a float32 x (already s / absmax) -> code."""
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper = F(-1.0), F(1.0)
    val = QUAD[1]
    local_pivot, offset = 1, 1
    i = 64
    while i > 0:
        if x > val:
            lower_pivot, lower = pivot, val
            pivot += i
            local_pivot += offset
        else:
            upper_pivot, upper = pivot, val
            pivot -= i
            local_pivot -= offset
        val = QUAD[local_pivot] if i >= 64 else Q[pivot]
        offset -= 1
        i >>= 1
    if x > val:
        mid = F((upper + val) * F(0.5))
        return upper_pivot if x > mid else pivot
    mid = F((lower + val) * F(0.5))
    return lower_pivot if x < mid else pivot


def encode(s, absmax):
    codes = np.empty(len(s), dtype=np.uint8)
    for i, v in enumerate(s):
        c = quantize_2d(F(v / absmax))
        if np.signbit(Q[c]) != np.signbit(v):
            c = c + 1 if v > 0 else c - 1
        codes[i] = c & 0xFF
    return codes


class Adagrad8bit:
    def __init__(self, n, lr, eps, wd, min8):
        self.lr, self.eps, self.wd = F(lr), F(eps), F(wd)
        self.eight = n >= min8
        if self.eight:
            self.codes = np.zeros(n, dtype=np.uint8)   # bitsandbytes: zeros
            self.absmax = np.zeros((n + 255) // 256, dtype=F)
        else:
            self.s = np.zeros(n, dtype=F)

    def step(self, p, g):
        if not self.eight:
            gw = g + p * self.wd if self.wd > 0 else g.copy()
            self.s = self.s + gw * gw
            return p - self.lr * (gw / (np.sqrt(self.s) + self.eps))
        p = p.copy()
        for j in range(len(self.absmax)):
            lo, hi = 256 * j, min(256 * (j + 1), len(p))
            gb, pb = g[lo:hi], p[lo:hi]
            gw = gb + pb * self.wd if self.wd > 0 else gb
            s = Q[self.codes[lo:hi]] * self.absmax[j]
            s = s + gw * gw
            amax = np.max(np.abs(s))
            if hi - lo < 256:  # padding lanes: code 128, g = 0, p = 0
                pad = F(Q[128] * self.absmax[j]) + F(0) * F(0)
                amax = max(amax, abs(F(pad)))
            self.absmax[j] = amax
            p[lo:hi] = pb - self.lr * (gb / (np.sqrt(s) + self.eps))
            self.codes[lo:hi] = encode(s, F(amax))
        return p


def fmt(a):
    return " ".join(f"{float(v):.17g}" for v in np.asarray(a, dtype=np.float64).ravel())


def write(path, name, shape, hyper, steps, seed, scales):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    p = rng.standard_normal(n).astype(F)
    opt = Adagrad8bit(n, hyper["lr"], hyper.get("eps", 1e-10), hyper.get("weight_decay", 0.0),
                      hyper.get("min_8bit_size", 4096))
    lines = [
        "# reference: tests/golden/gen_adagrad8bit.py, an independent float32 NumPy "
        "re-implementation of bitsandbytes-foundation/bitsandbytes @95f9af3 Adagrad8bit "
        "(csrc/kernels.cu kOptimizerStatic8bit1StateBlockwise / kOptimizer32bit1State, ADAGRAD; "
        "quantize_2D; functional.create_dynamic_map)",
        "golden 1", f"name {name}", "optimizer adagrad8bit",
    ]
    for k, v in hyper.items():
        lines.append(f"hyper {k} {float(v):.17g}" if k != "min_8bit_size" else f"hyper {k} {v}")
    lines += ["tolerance 1e-06", f"param w {len(shape)} " + " ".join(map(str, shape)),
              f"init w {fmt(p)}"]
    for t in range(steps):
        # per-block gradient scales so blocks have different absmax
        scale = np.repeat(np.asarray(scales, dtype=F), 256)[:n] if len(scales) > 1 else F(scales[0])
        g = (rng.standard_normal(n).astype(F) * scale).astype(F)
        if t == 2:
            g[5] = F(0.0)   # a zero gradient entry
        p = opt.step(p, g)
        lines += [f"step {t + 1}", f"grad w {fmt(g)}", f"expect w {fmt(p)}"]
    lines.append("end")
    with open(f"{path}/{name}.golden", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    write(out, "adagrad8bit_2block_18x16", (18, 16), {"lr": 0.01, "min_8bit_size": 0}, 12, 1,
          [1.0, 1e-3])
    write(out, "adagrad8bit_wd_20x15", (20, 15),
          {"lr": 0.05, "eps": 1e-8, "weight_decay": 0.1, "min_8bit_size": 0}, 10, 2, [0.5, 20.0])
    write(out, "adagrad8bit_fallback32_4x6", (4, 6), {"lr": 0.1, "weight_decay": 0.01}, 8, 3,
          [1.0])
