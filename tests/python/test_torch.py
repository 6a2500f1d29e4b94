"""descent.torch against torch.optim (the independent reference): the same
model, data and keyword arguments; parameters compared after every step
with the golden files' measure |x - ref| / (1 + |ref|) <= TOL."""
import copy

import pytest

torch = pytest.importorskip("torch")
import descent  # noqa: E402
import descent.torch as dt  # noqa: E402

TOL = 1e-5  # the golden files' tolerance for element-wise optimizers
STEPS = 120


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 16)
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 6, generator=g), torch.randn(32, 3, generator=g)


def model(seed=0):
    torch.manual_seed(seed)
    return Net()


def err(a, b):
    return max(((p - q).abs() / (1 + q.abs())).max().item()
               for p, q in zip(a.parameters(), b.parameters()))


def train_step(net, opt, x, y, set_to_none=True):
    opt.zero_grad(set_to_none=set_to_none)
    loss = torch.nn.functional.mse_loss(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def compare(torch_cls, desc_cls, steps=STEPS, **kw):
    x, y = data()
    a, b = model(), model()
    ta = torch_cls(a.parameters(), **kw)
    db = desc_cls(b.named_parameters(), **kw)
    worst = 0.0
    for s in range(steps):
        la = train_step(a, ta, x, y, set_to_none=s % 2 == 0)
        lb = train_step(b, db, x, y, set_to_none=s % 3 == 0)
        worst = max(worst, err(b, a))
        assert worst <= TOL, "step %d: %g" % (s, worst)
    assert lb < 0.9 * train_loss0(x, y)  # it trained
    assert abs(la - lb) <= TOL * (1 + abs(la))
    return worst


def train_loss0(x, y):
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model()(x), y).item()


TRAJECTORIES = [
    ("sgd", torch.optim.SGD, dt.SGD, dict(lr=0.05)),
    ("sgd_momentum", torch.optim.SGD, dt.SGD, dict(lr=0.05, momentum=0.9)),
    ("sgd_nesterov_wd", torch.optim.SGD, dt.SGD,
     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_dampening_wd", torch.optim.SGD, dt.SGD,
     dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.05)),
    ("adam", torch.optim.Adam, dt.Adam, dict(lr=1e-2)),
    ("adam_wd_amsgrad", torch.optim.Adam, dt.Adam,
     dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True)),
    ("adamw", torch.optim.AdamW, dt.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    ("adamw_amsgrad", torch.optim.AdamW, dt.AdamW,
     dict(lr=1e-2, weight_decay=0.1, amsgrad=True, eps=1e-6)),
    ("adamw_foreach_kw", torch.optim.AdamW, dt.AdamW, dict(lr=3e-3, foreach=True)),
    ("adagrad", torch.optim.Adagrad, dt.Adagrad, dict(lr=0.1)),
    ("adagrad_decay_wd", torch.optim.Adagrad, dt.Adagrad,
     dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("name,tcls,dcls,kw", TRAJECTORIES, ids=[t[0] for t in TRAJECTORIES])
def test_trajectory_matches_torch(name, tcls, dcls, kw):
    compare(tcls, dcls, **kw)


def test_spec_string_form():
    x, y = data()
    a, b = model(), model()
    ta = torch.optim.AdamW(a.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    db = dt.Optimizer(b.named_parameters(), "adamw:lr=3e-3,beta2=0.95,weight_decay=0.1")
    for _ in range(STEPS):
        train_step(a, ta, x, y)
        train_step(b, db, x, y)
    assert err(b, a) <= TOL
    # keyword arguments replace the spec's values (torch's names: betas)
    c = dt.Optimizer(model().named_parameters(), "adamw:lr=1,beta2=0.5", lr=3e-3,
                     betas=(0.8, 0.95))
    assert c.param_groups[0]["lr"] == 3e-3 and c.param_groups[0]["betas"] == (0.8, 0.95)


def test_zero_copy():
    b = model()
    opt = dt.AdamW(b.named_parameters(), lr=1e-2)
    x, y = data()
    ptrs = [p.data_ptr() for p in b.parameters()]
    train_step(b, opt, x, y, set_to_none=True)
    assert [p.data_ptr() for p in b.parameters()] == ptrs  # updated in place
    # A gradient torch re-allocated is the one the next step reads: a
    # hand-made gradient tensor gives exactly the SGD update.
    net = torch.nn.Linear(4, 2)
    sgd = dt.SGD(net.named_parameters(), lr=0.5)
    w0 = net.weight.detach().clone()
    for k in range(3):
        net.weight.grad = torch.full_like(net.weight, float(k + 1))
        net.bias.grad = torch.zeros_like(net.bias)
        sgd.step()
    assert torch.allclose(net.weight, w0 - 0.5 * (1 + 2 + 3))


def test_grad_accumulation_and_set_to_none():
    # Two backward passes into the same .grad (set_to_none=False keeps the
    # tensor; True gives a fresh one each step): same trajectory as torch.
    x, y = data()
    a, b = model(), model()
    ta = torch.optim.Adam(a.parameters(), lr=1e-2)
    db = dt.Adam(b.named_parameters(), lr=1e-2)
    for s in range(40):
        for net, opt in ((a, ta), (b, db)):
            opt.zero_grad(set_to_none=s % 4 < 2)
            for half in (slice(0, 16), slice(16, 32)):
                torch.nn.functional.mse_loss(net(x[half]), y[half]).backward()
            opt.step()
        assert err(b, a) <= TOL
    db.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in b.parameters())
    before = [p.detach().clone() for p in b.parameters()]
    db.step()  # no gradients at all: nothing happens, as in torch
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), before))


def test_closure():
    x, y = data()
    a, b = model(), model()
    ta = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    db = dt.SGD(b.named_parameters(), lr=0.1, momentum=0.9)
    for _ in range(20):
        for net, opt in ((a, ta), (b, db)):
            def closure(net=net, opt=opt):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(x), y)
                loss.backward()
                return loss
            loss = opt.step(closure)
            assert isinstance(loss, torch.Tensor)
    assert err(b, a) <= TOL


@pytest.mark.parametrize("sched", ["step", "cosine", "lambda", "onecycle"])
def test_lr_scheduler_drives_lr(sched):
    x, y = data()
    a, b = model(), model()
    ta = torch.optim.AdamW(a.parameters(), lr=1e-2, weight_decay=0.05)
    db = dt.AdamW(b.named_parameters(), lr=1e-2, weight_decay=0.05)

    def make(opt):
        if sched == "step":
            return torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
        if sched == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)
        if sched == "lambda":
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + 0.1 * s))
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-2, total_steps=STEPS)

    sa, sb = make(ta), make(db)
    for _ in range(STEPS):
        train_step(a, ta, x, y)
        train_step(b, db, x, y)
        # the lr libdescent used is the one the scheduler set
        assert db.stats().lr == pytest.approx(ta.param_groups[0]["lr"], rel=1e-12)
        if sched == "onecycle":  # cycles betas[0] too
            assert db.descent.get_hyper("group0", "beta1") == pytest.approx(
                ta.param_groups[0]["betas"][0], rel=1e-12)
        sa.step()
        sb.step()
        assert err(b, a) <= TOL
    assert db.param_groups[0]["lr"] == ta.param_groups[0]["lr"]


def run(net, opt, x, y, n):
    for _ in range(n):
        train_step(net, opt, x, y)


@pytest.mark.parametrize("tcls,dcls,kw", [
    (torch.optim.AdamW, dt.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    (torch.optim.Adam, dt.Adam, dict(lr=1e-2, amsgrad=True)),
    (torch.optim.SGD, dt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (torch.optim.Adagrad, dt.Adagrad, dict(lr=0.1)),
], ids=["adamw", "adam_amsgrad", "sgd_nesterov", "adagrad"])
def test_state_dict_both_ways(tcls, dcls, kw):
    x, y = data()
    # torch -> descent: 30 steps in torch, then descent takes over; it must
    # follow torch continuing from the same point.
    a, b = model(), model()
    ta = tcls(a.parameters(), **kw)
    run(a, ta, x, y, 30)
    b.load_state_dict(a.state_dict())
    db = dcls(b.named_parameters(), **kw)
    db.load_state_dict(ta.state_dict())
    run(a, ta, x, y, 30)
    run(b, db, x, y, 30)
    assert err(b, a) <= TOL
    # descent -> torch: the other way round.
    c, d = model(), model()
    dc = dcls(c.named_parameters(), **kw)
    run(c, dc, x, y, 30)
    sd = dc.state_dict()
    assert sd["state"][0]["step"].item() == 30
    d.load_state_dict(c.state_dict())
    td = tcls(d.parameters(), **kw)
    td.load_state_dict(sd)
    run(c, dc, x, y, 30)
    run(d, td, x, y, 30)
    assert err(c, d) <= TOL


def test_state_dict_carries_hyperparameters():
    x, y = data()
    a = model()
    ta = torch.optim.AdamW(a.parameters(), lr=1e-2, betas=(0.8, 0.9), weight_decay=0.2)
    run(a, ta, x, y, 3)
    b = model()
    db = dt.AdamW(b.named_parameters())  # torch's defaults
    db.load_state_dict(ta.state_dict())
    g = db.param_groups[0]
    assert g["lr"] == 1e-2 and g["betas"] == (0.8, 0.9) and g["weight_decay"] == 0.2
    assert db.descent.get_hyper("group0", "beta1") == pytest.approx(0.8)


def test_checkpoint_save_load(tmp_path):
    x, y = data()
    a, b = model(), model()
    da = dt.Optimizer(a.named_parameters(), "adamw:lr=1e-2")
    run(a, da, x, y, 10)
    da.param_groups[0]["lr"] = 5e-3
    path = tmp_path / "opt.safetensors"
    da.save(path)
    b.load_state_dict(a.state_dict())
    db = dt.Optimizer(b.named_parameters(), "adamw:lr=1e-2")
    db.load(path)
    assert db.param_groups[0]["lr"] == 5e-3
    run(a, da, x, y, 10)
    run(b, db, x, y, 10)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


class Block(torch.nn.Module):
    """A GPT-2 style transformer block with embeddings and a head."""

    def __init__(self, vocab=64, d=32, ctx=16):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, d)
        self.wpe = torch.nn.Embedding(ctx, d)
        self.ln_1 = torch.nn.LayerNorm(d)
        self.attn = torch.nn.ModuleDict({"c_attn": torch.nn.Linear(d, 3 * d),
                                         "c_proj": torch.nn.Linear(d, d)})
        self.ln_2 = torch.nn.LayerNorm(d)
        self.mlp = torch.nn.ModuleDict({"c_fc": torch.nn.Linear(d, 4 * d),
                                        "c_proj": torch.nn.Linear(4 * d, d)})
        self.ln_f = torch.nn.LayerNorm(d)
        self.lm_head = torch.nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        t = idx.shape[1]
        h = self.wte(idx) + self.wpe(torch.arange(t))
        q, k, v = self.attn["c_attn"](self.ln_1(h)).chunk(3, dim=-1)
        att = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
        att = att.masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf")).softmax(-1)
        h = h + self.attn["c_proj"](att @ v)
        h = h + self.mlp["c_proj"](torch.nn.functional.gelu(self.mlp["c_fc"](self.ln_2(h))))
        return self.lm_head(self.ln_f(h))


def test_muon_adamw_split_on_transformer_block():
    torch.manual_seed(0)
    net = Block()
    opt = dt.split(net, matrix="muon:lr=0.02", rest="adamw:lr=3e-3,weight_decay=0.1")
    where = {p["name"]: (p["group"], p["optimizer"], p["no_decay"])
             for p in opt.descent.params()}
    matrices = {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                "mlp.c_proj.weight"}
    for name, p in net.named_parameters():
        group, kind, no_decay = where[name]
        if name in matrices:
            assert (group, kind) == ("matrix", "muon"), name
        else:
            assert (group, kind) == ("fallback", "adamw"), name
        assert no_decay == (p.dim() == 1), name  # biases and gains: no decay
    assert [g["name"] for g in opt.param_groups] == ["matrix", "fallback"]
    assert {id(p) for p in opt.param_groups[0]["params"]} == \
        {id(p) for n, p in net.named_parameters() if n in matrices}
    assert opt.param_groups[0]["lr"] == 0.02 and opt.param_groups[1]["lr"] == 3e-3
    # It trains: next-token loss on a repeating sequence falls.
    idx = torch.arange(16).repeat(4, 1) % 7
    losses = []
    for _ in range(60):
        opt.zero_grad(set_to_none=True)
        logits = net(idx[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), idx[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_bad_input_is_a_clear_error_and_changes_nothing():
    net = Net()
    net.fc1.weight = torch.nn.Parameter(net.fc1.weight.detach().double())
    with pytest.raises(descent.Error, match="fc1.weight.*float64"):
        dt.AdamW(net.named_parameters())
    net = Net()
    net.fc1.weight = torch.nn.Parameter(torch.randn(6, 16).t())
    with pytest.raises(descent.Error, match="fc1.weight.*not contiguous"):
        dt.AdamW(net.named_parameters())
    with pytest.raises(descent.Error, match="unknown key \"lx\""):
        dt.Optimizer(Net().named_parameters(), "adamw:lx=1")
    with pytest.raises(descent.Error, match="unknown key \"momentum\""):
        dt.AdamW(Net().named_parameters(), momentum=0.9)
    if torch.cuda.is_available():
        with pytest.raises(descent.Error, match="cuda"):
            dt.AdamW(Net().cuda().named_parameters())

    # On a working optimizer: a bad group, a bad gradient or a bad lr
    # raise and leave parameters, groups and state as they were.
    x, y = data()
    net = model()
    opt = dt.AdamW(net.named_parameters(), lr=1e-2)
    run(net, opt, x, y, 3)
    snap = [p.detach().clone() for p in net.parameters()]
    sd = opt.state_dict()
    extra = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(descent.Error, match="extra.*float64"):
        opt.add_param_group({"params": [("extra", extra)]})
    with pytest.raises(descent.Error, match="nope"):
        opt.add_param_group({"params": [("fine", torch.nn.Parameter(torch.zeros(3)))],
                             "spec": "nope"})
    assert len(opt.param_groups) == 1 and len(opt.descent.params()) == 4
    opt.param_groups[0]["weight_decay"] = 0.3  # fine on its own ...
    opt.param_groups[0]["lr"] = -1.0           # ... but this is rejected
    net.fc2.bias.grad = torch.ones_like(net.fc2.bias)
    with pytest.raises(descent.Error, match="lr"):
        opt.step()
    assert opt.descent.get_hyper("group0", "weight_decay") == pytest.approx(0.01)
    opt.param_groups[0]["lr"] = 1e-2
    opt.param_groups[0]["weight_decay"] = 0.01
    net.fc1.weight.grad = torch.ones(16, 6).t().contiguous().t()  # strides of a transpose
    with pytest.raises(descent.Error, match="gradient of \"fc1.weight\".*not contiguous"):
        opt.step()
    net.fc1.weight.grad = None
    with pytest.raises(descent.Error, match="fc1.weight.*no gradient"):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), snap))
    now = opt.state_dict()
    assert all(torch.equal(now["state"][i][k], sd["state"][i][k])
               for i in sd["state"] for k in sd["state"][i])
    bad = copy.deepcopy(sd)
    bad["state"][0]["exp_avg"] = torch.zeros(5)
    with pytest.raises(descent.Error, match="exp_avg.*fc1.weight"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(sd)
    bad["state"][0]["momentum_buffer"] = torch.zeros(16, 6)
    with pytest.raises(descent.Error, match="momentum_buffer"):
        opt.load_state_dict(bad)
    now = opt.state_dict()
    assert all(torch.equal(now["state"][i][k], sd["state"][i][k])
               for i in sd["state"] for k in sd["state"][i])


def _spec_for(k):
    """The optimizer with its required keys given (1e-3 for floats, 4 for integers)."""
    req = ["%s=%s" % (key["name"], 4 if key["type"] == "int" else 1e-3)
           for key in k["keys"] if key["default"] != key["default"]]
    return k["name"] + (":" + ",".join(req) if req else "")


ALL_KINDS = [k for k in descent.kinds()]


@pytest.mark.parametrize("k", ALL_KINDS, ids=[k["name"] for k in ALL_KINDS])
def test_every_optimizer_steps_and_round_trips(k):
    """Every optimizer of the library runs from torch (matrix-only ones through
    split(), on the hidden matrices of the block), and its state_dict moves to
    a fresh optimizer that then continues bit for bit."""
    spec = _spec_for(k)

    def make(net):
        if k["matrix"]:
            return dt.split(net, matrix=spec, rest="adamw:lr=1e-3")
        return dt.Optimizer(net.named_parameters(), spec)

    torch.manual_seed(0)
    a = Block()
    b = copy.deepcopy(a)
    oa = make(a)
    idx = torch.arange(16).repeat(2, 1) % 7

    def step(net, opt):
        opt.zero_grad(set_to_none=True)
        logits = net(idx[:, :-1])
        torch.nn.functional.cross_entropy(logits.reshape(-1, 64), idx[:, 1:].reshape(-1)).backward()
        opt.step()

    before = [p.detach().clone() for p in a.parameters()]
    for _ in range(4):
        step(a, oa)
    moved = [not torch.equal(p, q) for p, q in zip(a.parameters(), before)]
    assert all(torch.isfinite(p).all() for p in a.parameters())
    assert sum(moved) >= len(moved) // 2, "%s moved %d of %d tensors" % (
        k["name"], sum(moved), len(moved))
    b.load_state_dict(a.state_dict())
    ob = make(b)
    ob.load_state_dict(oa.state_dict())
    for _ in range(3):
        step(a, oa)
        step(b, ob)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())), k["name"]


def test_wrapped_spec_with_keywords():
    """Wrappers (ema, lookahead) stay in front; keywords replace the optimizer's keys."""
    x, y = data()
    net = model()
    opt = dt.Optimizer(net.named_parameters(), "ema(decay=0.9):adamw:lr=1", lr=1e-2)
    assert opt.param_groups[0]["lr"] == 1e-2 and opt.param_groups[0]["spec"] == "adamw"
    run(net, opt, x, y, 3)
    st = opt.state_dict()["state"][0]
    assert "ema" in st and st["ema"].shape == net.fc1.weight.shape


def test_copy_and_pickle_refused():
    import pickle
    opt = dt.AdamW(model().named_parameters())
    for f in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="C handle"):
            f(opt)



def _round_states_to_bf16(opt):
    """The float32 state tensors of a torch optimizer rounded to bfloat16
    (nearest even), as a torch user keeping bf16 states would store them."""
    for st in opt.state.values():
        for k, v in st.items():
            if k != "step" and torch.is_tensor(v) and v.dtype == torch.float32:
                v.copy_(v.to(torch.bfloat16).float())


def _near_bf16_midpoint(x, rel=1e-6):
    """Where float32 x lies within rel of halfway between two bf16 numbers:
    there one ulp of float32 difference may round either way."""
    lo = x.to(torch.bfloat16).float()
    bits = lo.view(torch.int32)
    up = (bits + torch.where(x > lo, 1 << 16, -(1 << 16)).to(torch.int32)).view(torch.float32)
    mid = (lo.double() + up.double()) / 2
    return (x.double() - mid).abs() <= rel * x.double().abs()


@pytest.mark.parametrize("tcls,dcls,kw", [
    (torch.optim.AdamW, dt.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    (torch.optim.Adam, dt.Adam, dict(lr=1e-2, betas=(0.8, 0.99), amsgrad=True,
                                     weight_decay=0.01)),
    (torch.optim.SGD, dt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (torch.optim.Adagrad, dt.Adagrad, dict(lr=0.1, initial_accumulator_value=0.125)),
], ids=["adamw", "adam_amsgrad", "sgd_nesterov", "adagrad"])
def test_bf16_states_match_torch(tcls, dcls, kw):
    """bf16_state=1 against torch.optim whose float32 state is rounded to
    bfloat16 after every step. Each step starts both from descent's
    parameters and state (so float32 differences between the two libraries
    cannot accumulate), then compares: parameters to float32 accuracy, states
    equal as bf16 except where torch's float32 value sits within 1e-6 of a
    rounding midpoint (a one-ulp float32 difference may round either way)."""
    x, y = data()
    a, b = model(), model()
    ta = tcls(a.parameters(), **kw)
    db = dcls(b.named_parameters(), bf16_state=1, **kw)
    checked = 0
    for s in range(30):
        if s:  # torch starts from descent's parameters and state
            with torch.no_grad():
                for pa, pb in zip(a.parameters(), b.parameters()):
                    pa.copy_(pb)
            dsd = db.state_dict()["state"]
            for i, pa in enumerate(a.parameters()):
                for k, v in dsd[i].items():
                    if k != "step":
                        ta.state[pa][k].copy_(v.float().reshape(ta.state[pa][k].shape))
        train_step(a, ta, x, y)
        raw = {i: {k: v.clone() for k, v in ta.state[pa].items() if k != "step"}
               for i, pa in enumerate(a.parameters())}
        _round_states_to_bf16(ta)
        train_step(b, db, x, y)
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert ((pa - pb).abs() <= 1e-6 * (1 + pa.abs())).all(), s
        for i, st in db.state_dict()["state"].items():
            for k, v in st.items():
                if k == "step":
                    continue
                assert v.dtype == torch.bfloat16
                ref = raw[i][k].reshape(v.shape)
                differ = v.float() != ref.to(torch.bfloat16).float()
                assert not (differ & ~_near_bf16_midpoint(ref)).any(), (s, i, k)
                checked += v.numel()
    assert checked > 1000
    # torch's float32 state loads into the bf16 slots rounded to nearest.
    c = model()
    dc = dcls(c.named_parameters(), bf16_state=1, **kw)
    tsd = ta.state_dict()
    dc.load_state_dict(tsd)
    for i, st in dc.state_dict()["state"].items():
        for k, v in st.items():
            if k != "step":
                assert torch.equal(v.float(), tsd["state"][i][k].reshape(v.shape))
