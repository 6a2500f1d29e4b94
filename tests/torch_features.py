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

print("FAILED" if failures else "all passed", f"({failures} failures)")
sys.exit(1 if failures else 0)
