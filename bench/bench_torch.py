#!/usr/bin/env python3
"""bench_torch.py - descent.torch AdamW against torch.optim.AdamW on the
GPT-2-small tensor list (148 tensors, 124,439,808 parameters, lm_head tied
to wte), in one run, at 1 and 2 threads.

For each thread count it times optimizer.step() (median of --steps timed
steps after one warm-up step; the same parameters and gradients, each
optimizer with its own state):
  torch.optim.AdamW            (torch 1.13's default: one tensor at a time)
  torch.optim.AdamW foreach    (foreach=True: multi-tensor kernels)
  descent.torch.AdamW          (libdescent, the tensors' own memory)
and prints ms per step, torch's time over descent's (higher: descent
faster), and the effective bandwidth against a limit measured in the same
run: an in-place streaming update (x += y over the same 124M floats, numpy).
AdamW moves at least 7 floats per parameter (read p, g, m, v; write p, m, v).

It also measures the Python layer of descent.torch per step, with no
optimizer math: syncing param_groups and checking the 148 gradients when the
.grad tensors are unchanged (zero_grad(set_to_none=False)) and when torch
has re-allocated every one of them (set_to_none=True).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python \\
        /usr/bin/python3 bench/bench_torch.py
"""
import argparse
import gc
import statistics
import time

import numpy as np
import torch

import descent
import descent.torch as dt


def gpt2_small():
    """(name, shape) of GPT-2 small's trainable tensors, in its order."""
    d, v, ctx, layers = 768, 50257, 1024, 12
    out = [("wte.weight", (v, d)), ("wpe.weight", (ctx, d))]
    for i in range(layers):
        h = "h.%d." % i
        out += [(h + "ln_1.weight", (d,)), (h + "ln_1.bias", (d,)),
                (h + "attn.c_attn.weight", (3 * d, d)), (h + "attn.c_attn.bias", (3 * d,)),
                (h + "attn.c_proj.weight", (d, d)), (h + "attn.c_proj.bias", (d,)),
                (h + "ln_2.weight", (d,)), (h + "ln_2.bias", (d,)),
                (h + "mlp.c_fc.weight", (4 * d, d)), (h + "mlp.c_fc.bias", (4 * d,)),
                (h + "mlp.c_proj.weight", (d, 4 * d)), (h + "mlp.c_proj.bias", (d,))]
    out += [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]
    return out


def make_params(seed=0):
    g = torch.Generator().manual_seed(seed)
    params = []
    for name, shape in gpt2_small():
        p = torch.nn.Parameter(torch.randn(shape, generator=g) * 0.02)
        p.grad = torch.randn(shape, generator=g) * 1e-3
        params.append((name, p))
    return params


def time_steps(opt, n):
    opt.step()  # warm-up: torch allocates its state here
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def stream_limit(numel, n):
    """Seconds for x += y over numel floats (reads 2, writes 1 per element)."""
    x = np.zeros(numel, np.float32)
    y = np.ones(numel, np.float32)
    x += y
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        np.add(x, y, out=x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def overhead(params, reps):
    """Microseconds per step of descent.torch's own Python work."""
    opt = dt.AdamW(params, lr=1e-4)
    opt._sync()
    opt._bind()
    t0 = time.perf_counter()
    for _ in range(reps):
        opt._sync()
        opt._bind()
    same = (time.perf_counter() - t0) / reps
    # Two sets of gradient tensors, alternated: every .grad is new each time.
    grads = [[p.grad for _, p in params], [p.grad.clone() for _, p in params]]
    t_total = 0.0
    for r in range(reps):
        for (_, p), gr in zip(params, grads[r % 2]):
            p.grad = gr
        t0 = time.perf_counter()
        opt._sync()
        opt._bind()
        t_total += time.perf_counter() - t0
    for (_, p), gr in zip(params, grads[0]):
        p.grad = gr
    return same * 1e6, t_total / reps * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per optimizer")
    ap.add_argument("--threads", default="1,2", help="thread counts")
    args = ap.parse_args()

    params = make_params()
    numel = sum(p.numel() for _, p in params)
    info = descent.build_info()
    print("GPT-2 small: %d tensors, %d parameters; torch %s, descent %s (%s, kernels %s)"
          % (len(params), numel, torch.__version__, info["version"], info["blas"],
             info["kernels"]))
    print("median of %d steps after a warm-up step; min-max in brackets" % args.steps)
    snapshot = [p.detach().clone() for _, p in params]
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        descent.set_num_threads(threads)
        limit = stream_limit(numel, args.steps)
        limit_bw = 12 * numel / limit / 1e9
        print("\nthreads %d: in-place stream x += y %.1f ms (%.1f GB/s)"
              % (threads, limit * 1e3, limit_bw))
        rows = []
        for label, make in [
            ("torch.optim.AdamW", lambda: torch.optim.AdamW([p for _, p in params], lr=1e-4)),
            ("torch.optim.AdamW foreach", lambda: torch.optim.AdamW(
                [p for _, p in params], lr=1e-4, foreach=True)),
            ("descent.torch.AdamW", lambda: dt.AdamW(params, lr=1e-4)),
        ]:
            opt = make()
            med, lo, hi = time_steps(opt, args.steps)
            del opt
            gc.collect()
            with torch.no_grad():  # every optimizer starts from the same point
                for (_, p), s in zip(params, snapshot):
                    p.copy_(s)
            rows.append((label, med, lo, hi))
        ours = rows[-1][1]
        for label, med, lo, hi in rows:
            bw = 28 * numel / med / 1e9
            print("  %-27s %8.1f ms  [%.1f-%.1f]  torch/descent %5.2f  %5.1f GB/s = %3.0f%% "
                  "of the stream" % (label, med * 1e3, lo * 1e3, hi * 1e3, med / ours, bw,
                                     100 * bw / limit_bw))
    torch.set_num_threads(1)
    same, fresh = overhead(params, 200)
    print("\ndescent.torch Python layer per step (148 tensors): %.0f us with the same "
          ".grad tensors, %.0f us when all are re-allocated" % (same, fresh))


if __name__ == "__main__":
    main()
