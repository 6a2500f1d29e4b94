"""descent.Optimizer over numpy buffers: groups, specs, schedules, clipping,
state access, checkpoints and errors, each checked against a value computed
here independently (plain numpy formulas)."""
import os

import numpy as np
import pytest

import descent


def quad(seed=0, shape=(6, 5)):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(np.float32)
    return w, np.zeros_like(w)


def test_library_is_this_build():
    info = descent.build_info()
    assert info["version"] == descent.__version__
    if "DESCENT_LIBRARY" in os.environ:
        assert os.path.samefile(info["library"], os.environ["DESCENT_LIBRARY"])


def test_sgd_matches_formula_in_place():
    w, g = quad()
    ref = w.copy()
    opt = descent.Optimizer()
    opt.add_group("main", "sgd:lr=0.1,momentum=0.9")
    opt.add_param("w", w, g, group="main")
    buf = None
    for _ in range(20):
        g[:] = 2 * w  # gradient of |w|^2, written into the registered array
        gr = 2 * ref
        buf = gr.copy() if buf is None else np.float32(0.9) * buf + gr
        ref = ref - np.float32(0.1) * buf
        st = opt.step()
        assert st.applied
    np.testing.assert_allclose(w, ref, rtol=1e-6, atol=1e-7)
    assert opt.step_count == 20
    s = opt.state("w")
    assert set(s) == {"momentum_buffer", "step"} and int(s["step"][0]) == 20


def test_schedule_drives_lr():
    w, g = quad()
    opt = descent.Optimizer()
    opt.add_group("main", "adamw:lr=1.0")
    opt.add_param("w", w, g, group="main")
    opt.set_schedule("main", "lr", "cosine:warmup=2,total=10,min_ratio=0.1")
    lrs = []
    for _ in range(10):
        g[:] = w
        lrs.append(opt.step().lr)
    # warmup (s+1)/2, then cosine from 1 to 0.1 at step 10
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[1] > lrs[5] > lrs[9] >= 0.1 - 1e-12


def test_clip_by_norm_scales_gradient():
    w, g = quad()
    opt = descent.Optimizer()
    opt.add_group("main", "sgd:lr=1.0")
    opt.add_param("w", w, g, group="main")
    opt.set_clip("norm", 0.5)
    g[:] = 1.0
    before = w.copy()
    st = opt.step()
    norm = np.sqrt(g.size)
    assert st.clip_scale == pytest.approx(0.5 / norm, rel=1e-6)
    np.testing.assert_allclose(before - w, np.full_like(w, 0.5 / norm), rtol=1e-5)
    assert np.all(g == 1.0)  # the caller's gradient is only read


def test_split_routes_by_role_and_name():
    opt = descent.Optimizer()
    opt.use_split("muon:lr=0.02", "adamw:lr=3e-4,weight_decay=0.1")
    arrays = {}
    for name, shape in [("wte", (50, 8)), ("h0.attn.w", (8, 8)), ("h0.ln.g", (8,)),
                        ("lm_head", (50, 8))]:
        arrays[name] = quad(shape=shape)
        opt.add_param(name, *arrays[name])
    where = {p["name"]: (p["group"], p["no_decay"]) for p in opt.params()}
    assert where == {"wte": ("fallback", False), "h0.attn.w": ("matrix", False),
                     "h0.ln.g": ("fallback", True), "lm_head": ("fallback", False)}
    assert dict(opt.groups()) == {"matrix": "muon", "fallback": "adamw"}


def test_save_load_continues_identically(tmp_path):
    def make():
        w, g = quad()
        o = descent.Optimizer()
        o.add_group("main", "adam:lr=0.01")
        o.add_param("w", w, g, group="main")
        return o, w, g

    a, wa, ga = make()
    for _ in range(5):
        ga[:] = wa
        a.step()
    path = tmp_path / "state.safetensors"
    a.save(path)
    b, wb, gb = make()
    wb[:] = wa
    b.load(path)
    assert b.step_count == 5
    for _ in range(5):
        ga[:] = wa
        gb[:] = wb
        a.step()
        b.step()
    assert np.array_equal(wa, wb)


def test_state_round_trip_and_checks():
    w, g = quad()
    opt = descent.Optimizer()
    opt.add_group("main", "adam:lr=0.01")
    opt.add_param("w", w, g, group="main")
    s = opt.state("w")
    s["exp_avg"][:] = 0.25
    s["step"][:] = 7
    opt.set_state("w", s)
    back = opt.state("w")
    assert np.all(back["exp_avg"] == 0.25) and int(back["step"][0]) == 7
    with pytest.raises(descent.Error, match="no state slot \"momentum\""):
        opt.set_state("w", {"exp_avg": s["exp_avg"], "momentum": s["exp_avg"]})
    with pytest.raises(descent.Error, match="values given"):
        opt.set_state("w", {"exp_avg": np.zeros(3)})
    assert np.all(opt.state("w")["exp_avg"] == 0.25)  # nothing was written


def test_errors_carry_message_and_change_nothing():
    w, g = quad()
    opt = descent.Optimizer()
    with pytest.raises(descent.Error, match="unknown key \"lx\"") as e:
        opt.add_group("main", "adamw:lx=1")
    assert e.value.status == "DSC_UNKNOWN_KEY"
    with pytest.raises(descent.Error) as e:
        opt.add_group("main", "nosuch")
    assert e.value.status == "DSC_UNKNOWN_OPTIMIZER"
    assert opt.groups() == []
    opt.add_group("main", "adamw:lr=1e-3")
    with pytest.raises(descent.Error, match="float64"):
        opt.add_param("w", w.astype(np.float64), g, group="main")
    with pytest.raises(descent.Error, match="not C-contiguous"):
        opt.add_param("w", np.asfortranarray(w), g, group="main")
    with pytest.raises(descent.Error, match="shape"):
        opt.add_param("w", w, g[:, :3].copy(), group="main")
    assert opt.params() == []
    opt.add_param("w", w, g, group="main")
    with pytest.raises(descent.Error, match="lr"):
        opt.set_hyper("main", "lr", -1.0)
    assert opt.get_hyper("main", "lr") == pytest.approx(1e-3)
    with pytest.raises(descent.Error):
        opt.set_schedule("main", "lr", "cosine:warmup=oops")
    with pytest.raises(descent.Error, match="checkpoint|No such|open"):
        opt.load("/nonexistent/dir/state.safetensors")


def test_nonfinite_gradient_skips_step():
    w, g = quad()
    before = w.copy()
    opt = descent.Optimizer()
    opt.add_group("main", "adamw:lr=1e-2")
    opt.add_param("w", w, g, group="main")
    g[:] = 1.0
    g[0, 0] = np.nan
    st = opt.step()
    assert st.skipped and not st.applied and np.array_equal(w, before)
    opt.set_nonfinite("fail")
    with pytest.raises(descent.Error) as e:
        opt.step()
    assert e.value.status == "DSC_NONFINITE" and np.array_equal(w, before)


def test_kinds_lists_every_optimizer():
    names = {k["name"] for k in descent.kinds()}
    assert {"sgd", "adam", "adamw", "adagrad", "lion", "muon"} <= names
    adamw = descent.kind("adamw")
    assert [k["name"] for k in adamw["keys"]][:2] == ["lr", "beta1"]


def _header_fields(struct):
    """Field names of `typedef struct {...} struct;` in include/descent.h."""
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, "include", "descent.h")).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    m = re.search(r"typedef struct \{([^{}]*)\}\s*%s;" % struct, text)
    assert m, struct
    names = []
    for decl in m.group(1).split(";"):
        decl = decl.strip()
        if not decl:
            continue
        decl = re.sub(r"\[[^\]]*\]", "", decl)
        first, *rest = decl.split(",")
        names.append(re.findall(r"\w+", first)[-1])
        names += [r.strip() for r in rest]
    return names


@pytest.mark.parametrize("struct,cls", [
    ("dsc_build_info_t", "BuildInfo"), ("dsc_key_info", "KeyInfo"),
    ("dsc_optimizer_info", "OptimizerInfo"), ("dsc_param_info", "ParamInfo"),
    ("dsc_schedule", "Schedule"), ("dsc_step_stats", "StepStats"),
    ("dsc_slot_info", "SlotInfo")])
def test_ctypes_structures_match_header(struct, cls):
    from descent import _lib
    fields = [f[0] for f in getattr(_lib, cls)._fields_ if f[0] != "_spare"]
    assert fields == _header_fields(struct)


def test_copy_and_pickle_refused():
    import copy
    import pickle
    w, g = quad()
    opt = descent.Optimizer()
    opt.add_group("main", "sgd:lr=0.1")
    opt.add_param("w", w, g, group="main")
    for f in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="C handle"):
            f(opt)
    g[:] = 1
    opt.step()  # still usable, handle intact
    assert np.allclose(w, quad()[0] - 0.1)
