#!/usr/bin/python3
"""Checks of the spec-level features (maximize, decoupled_weight_decay,
layer_decay, the ema and lookahead wrappers) against independent references:
torch 1.13's optimizers and torch.optim.swa_utils.AveragedModel, driven from
Python through libdescent's C API (ctypes).

Usage: torch_features.py LIBDESCENT.so   (exit 0 pass, 1 fail, 77 skip)
"""
import ctypes as C
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # run by tests/cli_features.sh, which reports the skip
    print(f"SKIP: {e} (install python3-torch and python3-numpy)")
    sys.exit(77)

torch.set_num_threads(1)
lib = C.CDLL(sys.argv[1])
lib.dsc_optimizer_new.restype = C.c_void_p
lib.dsc_optimizer_free.argtypes = [C.c_void_p]
lib.dsc_optimizer_error.restype = C.c_char_p
lib.dsc_optimizer_error.argtypes = [C.c_void_p]
lib.dsc_optimizer_add_group.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p]
lib.dsc_optimizer_add_param.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_void_p,
                                        C.c_int, C.POINTER(C.c_int64), C.c_int, C.c_char_p]
lib.dsc_optimizer_step.argtypes = [C.c_void_p]
lib.dsc_optimizer_average.argtypes = [C.c_void_p, C.c_char_p, C.c_int,
                                      C.POINTER(C.POINTER(C.c_float))]
lib.dsc_optimizer_use_reference.argtypes = [C.c_void_p, C.c_int]
lib.dsc_optimizer_add_param_bf16.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_void_p,
                                             C.c_int, C.POINTER(C.c_int64), C.c_int, C.c_char_p,
                                             C.c_int]
lib.dsc_optimizer_set_seed.argtypes = [C.c_void_p, C.c_uint64]

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
    print(("ok   " if cond else "FAIL ") + what)


class Descent:
    """One group over named numpy float32 parameters (updated in place)."""

    def __init__(self, spec, params, reference=False):
        self.opt = lib.dsc_optimizer_new()
        self.params = {k: np.ascontiguousarray(v, dtype=np.float32).copy() for k, v in params.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._ok(lib.dsc_optimizer_add_group(self.opt, b"g", spec.encode()))
        lib.dsc_optimizer_use_reference(self.opt, 1 if reference else 0)
        for k, v in self.params.items():
            shape = (C.c_int64 * v.ndim)(*v.shape)
            self._ok(lib.dsc_optimizer_add_param(self.opt, k.encode(), v.ctypes.data,
                                                 self.grads[k].ctypes.data, v.ndim, shape, 0,
                                                 b"g"))

    def _ok(self, st):
        if st != 0:
            raise RuntimeError(lib.dsc_optimizer_error(self.opt).decode())

    def step(self, grads):
        for k, g in grads.items():
            self.grads[k][...] = g
        self._ok(lib.dsc_optimizer_step(self.opt))

    def average(self, name, kind):
        ptr = C.POINTER(C.c_float)()
        self._ok(lib.dsc_optimizer_average(self.opt, name.encode(), kind, C.byref(ptr)))
        n = self.params[name].size
        return np.ctypeslib.as_array(ptr, shape=(n,)).reshape(self.params[name].shape).copy()

    def __del__(self):
        lib.dsc_optimizer_free(self.opt)


def make_problem(seed, shapes, steps):
    rng = np.random.default_rng(seed)
    init = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
             for _ in range(steps)]
    return init, grads


def torch_run(make_opt, init, grads, names=None):
    """Run a torch optimizer; make_opt(list of (name, tensor)) -> (optimizer, after_step)."""
    ps = [(k, torch.tensor(v.copy(), requires_grad=True)) for k, v in init.items()]
    opt, after = make_opt(ps)
    traj = []
    for g in grads:
        for k, p in ps:
            p.grad = torch.tensor(g[k].copy())
        opt.step()
        if after:
            after(ps)
        traj.append({k: p.detach().numpy().copy() for k, p in ps})
    return traj


def descent_run(spec, init, grads, reference=False):
    d = Descent(spec, init, reference)
    traj = []
    for g in grads:
        d.step(g)
        traj.append({k: v.copy() for k, v in d.params.items()})
    return d, traj


def max_rel(a, b):
    worst = 0.0
    for sa, sb in zip(a, b):
        for k in sa:
            worst = max(worst, float(np.max(np.abs(sa[k] - sb[k]) / (1 + np.abs(sb[k])))))
    return worst


def bitwise(a, b):
    return all(np.array_equal(sa[k], sb[k]) for sa, sb in zip(a, b) for k in sa)


shapes = {"w": (7, 5), "b": (5,)}
init, grads = make_problem(1, shapes, 12)
neg = [{k: -v for k, v in g.items()} for g in grads]

# --- maximize: families with torch's own key, against torch -----------------
for spec, mk in [
    ("sgd:lr=0.05,momentum=0.9,weight_decay=0.01,maximize=1",
     lambda ps: (torch.optim.SGD([p for _, p in ps], lr=0.05, momentum=0.9, weight_decay=0.01,
                                 maximize=True), None)),
    ("adamw:lr=0.01,weight_decay=0.1,maximize=1",
     lambda ps: (torch.optim.AdamW([p for _, p in ps], lr=0.01, weight_decay=0.1,
                                   maximize=True), None)),
    ("adagrad:lr=0.1,maximize=1",
     lambda ps: (torch.optim.Adagrad([p for _, p in ps], lr=0.1, maximize=True), None)),
]:
    _, got = descent_run(spec, init, grads)
    want = torch_run(mk, init, grads)
    check(max_rel(got, want) < 1e-6, f"{spec} vs torch (max rel err {max_rel(got, want):.2e})")

# --- maximize on families without their own key: the optimizer must see -g,
# exactly (torch's definition), so ascending on g equals descending on -g. --
for spec in ["lion:lr=1e-3,weight_decay=0.1", "signum:lr=0.01,momentum=0.9",
             "adam8bit:lr=1e-3", "muon:lr=0.02", "adamp:lr=1e-3,weight_decay=0.01",
             "stable_spam:lr=1e-3"]:
    only = (lambda d: {"w": d["w"]}) if spec.startswith("muon") else (lambda d: d)
    _, up = descent_run(spec + ",maximize=1", only(init), [only(g) for g in grads])
    _, down = descent_run(spec, only(init), [only(g) for g in neg])
    check(bitwise(up, down), f"{spec},maximize=1 on g == {spec} on -g (bitwise)")

# --- SGD with decoupled weight decay: torch SGD after p <- p (1 - lr wd),
# the decoupled form of torch's AdamW (Loshchilov & Hutter's SGDW). --------
for mom, nest in [(0.0, False), (0.9, False), (0.9, True)]:
    lr, wd = 0.05, 0.1
    spec = (f"sgd:lr={lr},momentum={mom},weight_decay={wd},nesterov={int(nest)},"
            f"decoupled_weight_decay=1")

    def mk(ps, mom=mom, nest=nest, lr=lr, wd=wd):
        inner = torch.optim.SGD([p for _, p in ps], lr=lr, momentum=mom, nesterov=nest)

        class SGDW:
            def step(self):
                with torch.no_grad():
                    for _, p in ps:
                        p.mul_(1 - lr * wd)
                inner.step()
        return SGDW(), None
    for ref in (False, True):
        _, got = descent_run(spec, init, grads, reference=ref)
        want = torch_run(mk, init, grads)
        check(max_rel(got, want) < 1e-6,
              f"{spec}{' (reference loops)' if ref else ''} vs torch SGDW "
              f"(max rel err {max_rel(got, want):.2e})")

# --- layer_decay: torch AdamW with one param group per parameter, lr scaled
# as timm's param_groups_layer_decay (num_layers = blocks + 1; embeddings
# layer 0, block i layer i + 1, the rest num_layers; scale decay^(L - id)). --
ld_shapes = {"wte": (6, 4), "h.0.attn.w": (4, 4), "h.1.attn.w": (4, 4), "h.2.mlp.b": (4,),
             "ln_f.w": (4,), "lm_head": (6, 4)}
ld_init, ld_grads = make_problem(2, ld_shapes, 8)
decay, lr = 0.75, 0.01


def timm_layer_id(name, nblocks):
    if name.startswith("wte"):
        return 0
    if name.startswith("h."):
        return int(name.split(".")[1]) + 1
    return nblocks + 1


def mk_ld(ps):
    L = 3 + 1
    groups = [{"params": [p], "lr": lr * decay ** (L - timm_layer_id(k, 3))} for k, p in ps]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=0.01), None


_, got = descent_run(f"adamw:lr={lr},weight_decay=0.01,layer_decay={decay}", ld_init, ld_grads)
want = torch_run(mk_ld, ld_init, ld_grads)
check(max_rel(got, want) < 1e-6,
      f"adamw layer_decay={decay} vs torch AdamW with timm's per-layer lr "
      f"(max rel err {max_rel(got, want):.2e})")

# --- EMA against torch.optim.swa_utils.AveragedModel ------------------------
for spec_ema, warm in [("ema(decay=0.9)", False), ("ema(decay=0.999,warmup=1)", True)]:
    d, got = descent_run(spec_ema + ":adam:lr=0.01", init, grads)
    model = torch.nn.Module()
    for k, v in init.items():
        model.register_parameter(k, torch.nn.Parameter(torch.tensor(v.copy())))

    def avg_fn(e, p, n, warm=warm):
        # n = updates averaged before this one (>= 1 here: torch copies at n = 0)
        dcy = min(0.999, 1 - (1 + int(n)) ** (-2.0 / 3.0)) if warm else 0.9
        return dcy * e + (1 - dcy) * p
    avg = torch.optim.swa_utils.AveragedModel(model, avg_fn=avg_fn)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for g in grads:
        for k, p in model.named_parameters():
            p.grad = torch.tensor(g[k].copy())
        opt.step()
        avg.update_parameters(model)
    ema_t = {k: p.detach().numpy() for k, p in avg.module.named_parameters()}
    err = max(float(np.max(np.abs(d.average(k, 0) - ema_t[k]) / (1 + np.abs(ema_t[k]))))
              for k in init)
    live = {k: p.detach().numpy() for k, p in model.named_parameters()}
    check(err < 1e-6 and bitwise([d.params], [got[-1]]) and
          max_rel([d.params], [live]) < 1e-6,
          f"{spec_ema}:adam shadow weights vs torch AveragedModel (max rel err {err:.2e}), "
          f"live weights unchanged by the wrapper")

# --- Lookahead: Algorithm 1 of Zhang et al. written here around torch AdamW --
for k_, alpha in [(5, 0.5), (3, 0.8)]:
    spec = f"lookahead(k={k_},alpha={alpha}):adamw:lr=0.01,weight_decay=0.01"
    d, got = descent_run(spec, init, grads)

    def mk_la(ps, k_=k_, alpha=alpha):
        inner = torch.optim.AdamW([p for _, p in ps], lr=0.01, weight_decay=0.01)
        slow = [p.detach().clone() for _, p in ps]
        count = [0]

        class LA:
            def step(self):
                inner.step()
                count[0] += 1
                if count[0] % k_ == 0:
                    with torch.no_grad():
                        for s, (_, p) in zip(slow, ps):
                            s.add_(p - s, alpha=alpha)
                            p.copy_(s)
        return LA(), None
    want = torch_run(mk_la, init, grads)
    check(max_rel(got, want) < 1e-6,
          f"{spec} vs Lookahead around torch AdamW (max rel err {max_rel(got, want):.2e})")

# --- bf16 parameters --------------------------------------------------------


def to_bf16_bits(x):
    """float32 array -> bf16 bits by torch's round-to-nearest-even."""
    t = torch.tensor(np.ascontiguousarray(x, dtype=np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16).copy()


def from_bf16_bits(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


class DescentBF16:
    def __init__(self, spec, init_bits, mode, seed=0):
        self.opt = lib.dsc_optimizer_new()
        self.p = init_bits.copy()
        self.g = np.zeros_like(self.p)
        st = lib.dsc_optimizer_add_group(self.opt, b"g", spec.encode())
        shape = (C.c_int64 * 1)(self.p.size)
        st = st or lib.dsc_optimizer_add_param_bf16(self.opt, b"w", self.p.ctypes.data,
                                                    self.g.ctypes.data, 1, shape, 0, b"g", mode)
        st = st or lib.dsc_optimizer_set_seed(self.opt, seed)
        if st:
            raise RuntimeError(lib.dsc_optimizer_error(self.opt).decode())

    def step(self, g_bits):
        self.g[...] = g_bits
        if lib.dsc_optimizer_step(self.opt):
            raise RuntimeError(lib.dsc_optimizer_error(self.opt).decode())

    def __del__(self):
        lib.dsc_optimizer_free(self.opt)


rng = np.random.default_rng(5)
n = 4000
p0 = to_bf16_bits(rng.standard_normal(n).astype(np.float32))
gs = [to_bf16_bits(rng.standard_normal(n).astype(np.float32)) for _ in range(15)]
# Master weights: torch runs the optimizer on a float32 copy of the bf16
# weights with the bf16 gradients widened, and rounds to bf16 after each step.
for spec, mk, exact in [
    ("sgd:lr=0.01,momentum=0.9", lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9), True),
    ("adamw:lr=0.001,weight_decay=0.1",
     lambda ps: torch.optim.AdamW(ps, lr=0.001, weight_decay=0.1), False),
]:
    d = DescentBF16(spec, p0, 0)
    master = torch.tensor(from_bf16_bits(p0).copy(), requires_grad=True)
    topt = mk([master])
    worst_ulps, differ = 0, 0
    for g in gs:
        d.step(g)
        master.grad = torch.tensor(from_bf16_bits(g).copy())
        topt.step()
        want = to_bf16_bits(master.detach().numpy())
        diff = np.abs(d.p.astype(np.int64) - want.astype(np.int64))
        worst_ulps = max(worst_ulps, int(diff.max()))
        differ += int(np.count_nonzero(diff))
    ok = worst_ulps == 0 if exact else (worst_ulps <= 1 and differ <= n * len(gs) // 1000)
    check(ok, f"bf16 master {spec} vs torch float32 master rounded to bf16: "
              f"{differ} of {n * len(gs)} differ, by at most {worst_ulps} ulp")

# Stochastic rounding: plain SGD, so the float32 result x = p - lr*g is known
# exactly here (NumPy float32); each output must be one of x's two bf16
# neighbours, up with probability (x - lo) / (hi - lo), and the mean unbiased.
lr = 0.003
x = (from_bf16_bits(p0) - np.float32(lr) * from_bf16_bits(gs[0])).astype(np.float32)
trunc = (x.view(np.uint32) >> 16).astype(np.uint16)             # toward zero
lo_f = from_bf16_bits(trunc)
away = (trunc.astype(np.uint32) + 1).astype(np.uint16)          # magnitude one step up
hi_f = from_bf16_bits(away)
frac = np.where(hi_f != lo_f, (np.abs(x) - np.abs(lo_f)) / (np.abs(hi_f) - np.abs(lo_f)), 0.0)
seeds = 300
ups = np.zeros(n)
outside = 0
for seed in range(seeds):
    d = DescentBF16(f"sgd:lr={lr}", p0, 1, seed)
    d.step(gs[0])
    outside += int(np.count_nonzero((d.p != trunc) & (d.p != away)))
    ups += d.p == away
check(outside == 0, f"bf16 stochastic rounding: every result is a bf16 neighbour of the "
                    f"float32 value ({outside} outside)")
# Per element: rounds up ~ Binomial(seeds, frac); the standardized total over
# all elements with 0 < frac < 1 is ~ N(0, 1).
m = (frac > 0) & (frac < 1)
z = (ups[m].sum() - seeds * frac[m].sum()) / np.sqrt(seeds * (frac[m] * (1 - frac[m])).sum())
check(abs(z) < 4.5, f"bf16 stochastic rounding unbiased: rounds up {ups[m].sum():.0f} times, "
                    f"expected {seeds * frac[m].sum():.1f} (z = {z:.2f}, |z| < 4.5)")
# Per-element frequencies: chi-square-like check of the worst element.
zs = (ups[m] - seeds * frac[m]) / np.sqrt(seeds * frac[m] * (1 - frac[m]) + 1e-12)
check(np.mean(np.abs(zs) < 3) > 0.99,
      f"bf16 stochastic rounding per element: {np.mean(np.abs(zs) < 3):.4f} of elements within "
      f"3 sigma of their probability")
# Same seed, same bits; another seed, other bits.
a, b, c = (DescentBF16(f"sgd:lr={lr}", p0, 1, s_) for s_ in (7, 7, 8))
for o in (a, b, c):
    o.step(gs[0])
check(np.array_equal(a.p, b.p) and not np.array_equal(a.p, c.p),
      "bf16 stochastic rounding: seeded and deterministic")
# Updates below half a bf16 step: round-to-nearest without a master loses
# them all; stochastic rounding keeps the expected drift.
tiny = np.full(n, to_bf16_bits(np.array([1e-3], np.float32))[0], dtype=np.uint16)
ones = np.full(n, to_bf16_bits(np.array([1.0], np.float32))[0], dtype=np.uint16)
d = DescentBF16("sgd:lr=1", ones, 1, 3)
for _ in range(100):
    d.step(tiny)
drift = 1.0 - from_bf16_bits(d.p).mean()
check(abs(drift - 0.1) < 0.01, f"bf16 stochastic rounding keeps sub-ulp updates: mean drift "
                               f"{drift:.4f} after 100 steps of 1e-3 (expected 0.1)")

print("FAILED" if failures else "all passed", f"({failures} failures)")
sys.exit(1 if failures else 0)
