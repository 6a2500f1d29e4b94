"""`descent convert` against torch.optim (the independent reference).

torch -> descent: a small model trains a few steps with torch.optim, its
state_dict is saved (.npz and safetensors, tests/python/torchstate.py),
converted to a descent checkpoint, and loaded into descent.torch; then torch
and descent each take the same further steps from that state. The converted
state must equal torch's bit for bit (a conversion is a copy) and the
parameters must agree to TOL. descent -> torch: the same with the roles
swapped. Then the refusals: each bad input gives a message and exit 2."""
import copy
import json
import os
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import descent.torch as dt  # noqa: E402
import torchstate  # noqa: E402

TOL = 1e-5  # the golden files' tolerance for element-wise optimizers
BEFORE, AFTER = 4, 6  # steps before and after the conversion

# descent command: next to the library this test runs with (ctest sets both)
CLI = os.environ.get("DESCENT_CLI") or os.path.join(
    os.path.dirname(os.environ.get("DESCENT_LIBRARY", "build/libdescent.so")), "descent")

CASES = {
    "adamw": (torch.optim.AdamW, dt.AdamW,
              dict(lr=2e-2, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.1)),
    "adam_amsgrad": (torch.optim.Adam, dt.Adam,
                     dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-3, amsgrad=True)),
    "sgd": (torch.optim.SGD, dt.SGD,
            dict(lr=5e-2, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    "sgd_nesterov": (torch.optim.SGD, dt.SGD,
                     dict(lr=5e-2, momentum=0.8, nesterov=True, maximize=False)),
    "adagrad": (torch.optim.Adagrad, dt.Adagrad,
                dict(lr=0.1, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)),
}
KIND = {"adamw": "adamw", "adam_amsgrad": "adam", "sgd": "sgd", "sgd_nesterov": "sgd",
        "adagrad": "adagrad"}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(5, 12)
        self.fc2 = torch.nn.Linear(12, 3)
        self.scale = torch.nn.Parameter(torch.tensor(1.5))  # a 0-dim parameter

    def forward(self, x):
        return self.scale * self.fc2(torch.tanh(self.fc1(x)))


def batch(step):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(16, 5, generator=g), torch.randn(16, 3, generator=g)


def train(model, opt, first, count):
    for s in range(first, first + count):
        x, y = batch(s)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def groups_of(model, hyper, split):
    """Two param groups (matrices, and the rest without weight decay) when split."""
    if not split:
        return list(model.parameters())
    mats = [p for p in model.parameters() if p.dim() == 2]
    rest = [p for p in model.parameters() if p.dim() != 2]
    return [{"params": mats}, {"params": rest, "weight_decay": 0.0}]


def convert(*args, ok=True):
    r = subprocess.run([CLI, "convert", *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def err(a, b):
    return max(((p - q).abs() / (1 + q.abs())).max().item()
               for p, q in zip(a.parameters(), b.parameters()))


def torch_state(opt):
    """{(torch index, slot): numpy} of a torch optimizer, 0-dim step as float."""
    out = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            if v is not None:
                out[(i, k)] = torch.as_tensor(v).detach().numpy().reshape(-1)
    return out


def descent_state(opt):
    out = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[(i, k)] = torch.as_tensor(v).detach().numpy().reshape(-1)
    return out


def same_state(t, d, kind):
    """The converted state equals the original exactly. torch's SGD keeps no
    step (descent's is 1 once the buffer is live)."""
    if kind == "sgd":
        d = {k: v for k, v in d.items() if k[1] != "step"}
    assert t.keys() == d.keys(), (sorted(t), sorted(d))
    for k in t:
        assert np.array_equal(t[k].astype(np.float64), d[k].astype(np.float64)), k


@pytest.mark.parametrize("case,fmt", [(c, f) for c in sorted(CASES)
                                      for f in ("npz", "safetensors")] +
                         [("adamw", "npz_compressed")])
def test_torch_to_descent(tmp_path, case, fmt):
    tcls, dcls, hyper = CASES[case]
    kind = KIND[case]
    split = case in ("adamw", "sgd")
    torch.manual_seed(0)
    mt = Net()
    ot = tcls(groups_of(mt, hyper, split), **hyper)
    train(mt, ot, 0, BEFORE)
    src = tmp_path / ("state.npz" if fmt.startswith("npz") else "state.safetensors")
    if fmt == "safetensors":
        torchstate.save_safetensors(ot, src, kind)
    else:
        torchstate.save_npz(ot, src, kind, compressed=fmt == "npz_compressed")
    ck = tmp_path / "descent.safetensors"
    convert(src, ck)

    md = copy.deepcopy(mt)
    od = dcls(groups_of(md, hyper, split), **hyper)
    od.load(str(ck))
    same_state(torch_state(ot), descent_state(od), kind)
    for gt, gd in zip(ot.param_groups, od.param_groups):  # hyperparameters carried
        for key in ("lr", "weight_decay", "momentum", "eps", "lr_decay"):
            if key in gt:
                assert gd[key] == pytest.approx(gt[key], rel=1e-15), key

    train(mt, ot, BEFORE, AFTER)
    train(md, od, BEFORE, AFTER)
    assert err(md, mt) <= TOL


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_descent_to_torch(tmp_path, case, fmt):
    tcls, dcls, hyper = CASES[case]
    kind = KIND[case]
    split = case in ("adamw", "adagrad")
    torch.manual_seed(1)
    md = Net()
    od = dcls(groups_of(md, hyper, split), **hyper)
    train(md, od, 0, BEFORE)
    ck = tmp_path / "descent.safetensors"
    od.save(str(ck))
    out = tmp_path / ("torch." + fmt)
    convert(ck, out)

    mt = copy.deepcopy(md)
    ot = tcls(groups_of(mt, hyper, split), **hyper)
    torchstate.load(ot, out)
    same_state(torch_state(ot), descent_state(od), kind)
    train(md, od, BEFORE, AFTER)
    train(mt, ot, BEFORE, AFTER)
    assert err(md, mt) <= TOL


def test_template_and_map(tmp_path):
    """Named descent parameters: a template checkpoint gives names, groups and
    no_decay; --map pairs torch's indices with names in another order."""
    torch.manual_seed(2)
    mt = Net()
    hyper = dict(lr=1e-2, weight_decay=0.05)
    ot = torch.optim.AdamW(groups_of(mt, hyper, True), **hyper)
    train(mt, ot, 0, BEFORE)
    src = tmp_path / "state.npz"
    torchstate.save_npz(ot, src, "adamw")

    # descent's setup: named parameters, the standard split (hidden matrices;
    # vectors without weight decay), in an order that differs from torch's
    md = copy.deepcopy(mt)
    od = dt.split(md, matrix="adamw:lr=1e-3,weight_decay=0.05", rest="adamw:lr=1e-3")
    tmpl = tmp_path / "template.safetensors"
    od.save(str(tmpl))
    torch_names = [n for n, p in mt.named_parameters() if p.dim() == 2] + \
                  [n for n, p in mt.named_parameters() if p.dim() != 2]
    mp = tmp_path / "map.txt"
    mp.write_text("# torch index, descent name\n" +
                  "".join("%d %s\n" % (i, n) for i, n in enumerate(torch_names)))
    ck = tmp_path / "descent.safetensors"
    convert("--template", tmpl, "--map", mp, src, ck)
    od.load(str(ck))
    train(mt, ot, BEFORE, AFTER)
    train(md, od, BEFORE, AFTER)
    assert err(md, mt) <= TOL


def test_no_decay_groups_share_a_descent_group(tmp_path):
    """torch's usual two groups (decay, and none for biases) onto one descent
    group whose vectors are marked no_decay."""
    import descent
    torch.manual_seed(4)
    mt = Net()
    hyper = dict(lr=1e-2, weight_decay=0.05)
    ot = torch.optim.AdamW(groups_of(mt, hyper, True), **hyper)
    train(mt, ot, 0, BEFORE)
    src = tmp_path / "state.safetensors"
    torchstate.save_safetensors(ot, src, "adamw")

    def setup():
        o = descent.Optimizer()
        o.add_group("main", "adamw:lr=1e-3,weight_decay=0.2")
        o.add_rule(role="vector", group="main", no_decay=True)
        o.add_rule(group="main")
        bufs = {}
        ordered = [(n, p) for n, p in mt.named_parameters() if p.dim() == 2] + \
                  [(n, p) for n, p in mt.named_parameters() if p.dim() != 2]
        for n, p in ordered:
            w = p.detach().numpy().reshape(p.shape or (1,)).copy()
            bufs[n] = (w, np.zeros_like(w))
            o.add_param(n, *bufs[n])
        return o, bufs, ordered

    od, _, _ = setup()
    tmpl = tmp_path / "template.safetensors"
    od.save(str(tmpl))
    ck = tmp_path / "descent.safetensors"
    convert("--template", tmpl, src, ck)
    od, _, ordered = setup()
    od.load(str(ck))
    assert od.get_hyper("main", "weight_decay") == pytest.approx(0.05, rel=1e-15)
    assert od.get_hyper("main", "lr") == pytest.approx(1e-2, rel=1e-15)
    ts = ot.state_dict()["state"]
    for i, (n, p) in enumerate(ordered):
        for slot in ("exp_avg", "exp_avg_sq"):
            assert np.array_equal(od.state(n)[slot].reshape(-1),
                                  ts[i][slot].numpy().reshape(-1)), (n, slot)
    # the other way round, a torch group with weight decay on no_decay
    # parameters is refused
    groups = json.loads(torchstate.flatten(ot, "adamw")[1]["param_groups"])
    groups[1]["weight_decay"] = 0.05
    arrays, meta = torchstate.flatten(ot, "adamw")
    refused(tmp_path, arrays, dict(meta, param_groups=json.dumps(groups)), "--template", tmpl,
            expect="has no_decay")


# ------------------------------------------------------------- refusals

def adamw_state(tmp_path, **kw):
    torch.manual_seed(3)
    mt = Net()
    ot = torch.optim.AdamW(mt.parameters(), lr=1e-2, **kw)
    train(mt, ot, 0, 2)
    return torchstate.flatten(ot, "adamw")


def refused(tmp_path, arrays, meta, *extra, expect):
    src = tmp_path / "bad.safetensors"
    torchstate.write_safetensors(src, arrays, meta)
    out = tmp_path / "out.safetensors"
    r = convert(*extra, src, out, ok=False)
    assert r.returncode == 2, r.stderr
    assert expect in r.stderr, r.stderr
    assert not out.exists()  # nothing written
    return r


def test_refuses_bad_torch_state(tmp_path):
    arrays, meta = adamw_state(tmp_path)

    a = dict(arrays)
    a["state.0.step"] = np.array(np.nan, np.float32)
    refused(tmp_path, a, meta, expect="not a step count")

    a = dict(arrays)
    a["state.1.exp_avg"] = a["state.1.exp_avg"].copy()
    a["state.1.exp_avg"][0] = np.inf
    refused(tmp_path, a, meta, expect="non-finite")

    a = dict(arrays)
    del a["state.2.exp_avg_sq"]
    refused(tmp_path, a, meta, expect="\"state.2.exp_avg_sq\" is missing")

    a = dict(arrays)
    a["state.1.exp_avg_sq"] = a["state.1.exp_avg_sq"].reshape(-1)
    refused(tmp_path, a, meta, expect="has shape")

    a = dict(arrays)
    a["state.0.square_avg"] = a["state.0.exp_avg"]
    refused(tmp_path, a, meta, expect="keeps no \"square_avg\"")

    a = dict(arrays)
    a["state.0.exp_avg"] = a["state.0.exp_avg"].astype(np.int32)
    refused(tmp_path, a, meta, expect="dtype I32")

    m = dict(meta, optimizer="rmsprop")
    refused(tmp_path, arrays, m, expect="square_avg")

    m = dict(meta, optimizer="lion")
    refused(tmp_path, arrays, m, expect="no torch.optim counterpart")

    groups = json.loads(meta["param_groups"])
    groups[0]["momentum_decay"] = 0.004
    refused(tmp_path, arrays, dict(meta, param_groups=json.dumps(groups)),
            expect="\"momentum_decay\"")

    groups = json.loads(meta["param_groups"])
    del groups[0]["eps"]
    refused(tmp_path, arrays, dict(meta, param_groups=json.dumps(groups)),
            expect="\"eps\" is missing")

    groups = json.loads(meta["param_groups"])
    groups[0]["betas"] = [0.9, 1.5]
    refused(tmp_path, arrays, dict(meta, param_groups=json.dumps(groups)), expect="beta2")

    m = {k: v for k, v in meta.items() if k != "param_groups"}
    refused(tmp_path, arrays, m, expect="param_groups")

    m = {k: v for k, v in meta.items() if k != "optimizer"}
    refused(tmp_path, arrays, m, expect="--optimizer")
    refused(tmp_path, arrays, meta, "--optimizer", "sgd", expect="--optimizer sgd")


def test_refuses_template_mismatch(tmp_path):
    arrays, meta = adamw_state(tmp_path)
    # a template whose shapes differ (fc1 of 5x13 instead of 5x12)
    p = [torch.zeros(12, 5, requires_grad=True), torch.zeros(13, requires_grad=True),
         torch.zeros(3, 12, requires_grad=True), torch.zeros(3, requires_grad=True),
         torch.zeros(1, requires_grad=True)]
    od = dt.AdamW(p, lr=1e-2)
    tmpl = tmp_path / "tmpl.safetensors"
    od.save(str(tmpl))
    refused(tmp_path, arrays, meta, "--template", tmpl, expect="has shape")
    # a template running another optimizer, and one with another count
    p[1] = torch.zeros(12, requires_grad=True)
    od = dt.Lion(p, lr=1e-4)
    od.save(str(tmpl))
    refused(tmp_path, arrays, meta, "--template", tmpl, expect="runs lion")
    od = dt.AdamW(p[:4], lr=1e-4)
    od.save(str(tmpl))
    refused(tmp_path, arrays, meta, "--template", tmpl, expect="template has 4 parameters")


def test_refuses_descent_without_torch_twin(tmp_path):
    w = torch.zeros(4, 3, requires_grad=True)
    for spec, expect in [("lion:lr=1e-4", "which torch.optim does not have"),
                         ("sgd:lr=0.1,momentum=0.9,decoupled_weight_decay=1,weight_decay=0.1",
                          "decoupled_weight_decay=1"),
                         ("ema(decay=0.9):adamw:lr=1e-3", "state \"ema\"")]:
        od = dt.Optimizer([w], spec)
        w.grad = torch.ones_like(w)
        od.step()
        ck = tmp_path / "ck.safetensors"
        od.save(str(ck))
        out = tmp_path / "out.npz"
        r = convert(ck, out, ok=False)
        assert r.returncode == 2 and expect in r.stderr, (spec, r.stderr)
        assert not out.exists()


def test_refuses_edited_checkpoint(tmp_path):
    w = torch.zeros(4, 3, requires_grad=True)
    od = dt.AdamW([w], lr=1e-3)
    w.grad = torch.ones_like(w)
    od.step()
    ck = tmp_path / "ck.safetensors"
    od.save(str(ck))
    raw = bytearray(ck.read_bytes())
    raw[-3] ^= 1  # one bit of the state
    ck.write_bytes(bytes(raw))
    r = convert(ck, tmp_path / "out.npz", ok=False)
    assert r.returncode == 2 and "checksum" in r.stderr, r.stderr
