"""descent.torch: libdescent's optimizers as torch.optim optimizers.

    import descent.torch
    opt = descent.torch.Optimizer(model.named_parameters(),
                                  "adamw:lr=3e-4,weight_decay=0.1")
    # or torch's signature: descent.torch.AdamW(model.parameters(), lr=3e-4, ...)
    # or the Muon + AdamW split by role:
    opt = descent.torch.split(model, matrix="muon:lr=0.02", rest="adamw:lr=3e-4")
    for x, y in data:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

Parameters and gradients are the tensors' own memory: libdescent reads each
``.grad`` and updates each parameter in place, with no copy. Tensors must
be contiguous float32 CPU tensors (others raise ``descent.Error`` naming the
parameter). Before every step the optimizer (1) pushes the hyperparameters
of ``param_groups`` that changed (so ``torch.optim.lr_scheduler`` works
unchanged) and (2) re-points libdescent at any ``.grad`` tensor torch has
re-allocated since the last step (``zero_grad(set_to_none=True)``).

Unlike torch, libdescent steps every parameter together: a parameter whose
``.grad`` is None while others have one is an error (freeze parameters by
leaving them out of the optimizer). A step where no parameter has a
gradient does nothing, as in torch.
"""
import ctypes

import numpy as np
import torch as _torch

from . import Error, Optimizer as _NumpyOptimizer, _b, _lib, _s, kind as _kind

__all__ = ["Optimizer", "split", "SGD", "Adam", "AdamW", "Adagrad", "Lion", "Muon"]

_GROUP_META = ("params", "name", "spec")
# torch.optim keyword arguments that only choose torch's implementation.
_TORCH_ONLY = ("foreach", "capturable", "differentiable", "fused")


def _check_tensor(name, t, what="parameter"):
    if not isinstance(t, _torch.Tensor):
        raise TypeError("descent.torch: %s \"%s\" is a %s, not a torch.Tensor"
                        % (what, name, type(t).__name__))
    if t.layout != _torch.strided:
        raise Error("%s \"%s\" is a %s tensor; descent steps dense (strided) tensors"
                    % (what, name, t.layout))
    if t.device.type != "cpu":
        raise Error("%s \"%s\" is on %s; descent.torch steps CPU tensors in place "
                    "(keep the model on the CPU)" % (what, name, t.device))
    if t.dtype != _torch.float32:
        raise Error("%s \"%s\" is %s; descent steps float32 tensors (model.float())"
                    % (what, name, t.dtype))
    if not t.is_contiguous():
        raise Error("%s \"%s\" is not contiguous (stride %s); descent needs the "
                    "tensor's own dense memory" % (what, name, tuple(t.stride())))
    if t.dim() > _lib.MAX_NDIM:
        raise Error("%s \"%s\" has %d dimensions; descent takes at most %d"
                    % (what, name, t.dim(), _lib.MAX_NDIM), "DSC_SHAPE")


def _spec_value(key, v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, _torch.Tensor):
        v = v.item()
    return repr(float(v)) if isinstance(v, float) else str(v)


def _compose(spec, hyper):
    """spec "adamw:lr=1e-3" plus {"weight_decay": 0.1, "betas": (0.9, 0.95)}: keyword
    arguments replace the spec's value of the same key (libdescent refuses a
    key given twice)."""
    # The keys are the last ':' section when it holds '=' ("ema(decay=0.99):
    # adamw:lr=1e-3"); wrappers and the optimizer's name come before it.
    head, _, tail = spec.rpartition(":")
    if "=" not in tail or "(" in tail or not head:
        head, tail = spec, ""
    items = {}
    for t in (tail.split(",") if tail else []):
        k, eq, v = t.partition("=")
        items[k.strip() if eq else t] = v if eq else None
    for k, v in hyper.items():
        if k in _TORCH_ONLY:
            continue
        if k == "betas":
            b1, b2 = v
            items["beta1"], items["beta2"] = _spec_value(k, b1), _spec_value(k, b2)
        else:
            items[k] = _spec_value(k, v)
    text = ",".join(k if v is None else "%s=%s" % (k, v) for k, v in items.items())
    return head + (":" + text if items else "")


def _named(params, start):
    """[(name, tensor)] from tensors or (name, tensor) pairs."""
    if isinstance(params, _torch.Tensor):
        params = [params]
    elif isinstance(params, set):
        raise TypeError("descent.torch: parameters must be an ordered sequence, not a set")
    out = []
    for i, item in enumerate(params):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item)
        else:
            out.append(("param%d" % (start + i), item))
    return out


class Optimizer(_torch.optim.Optimizer):
    """A torch.optim.Optimizer run by libdescent.

    params: model.named_parameters() (names route by role and name error
    messages), model.parameters(), or a list of group dicts
    {"params": ..., "spec": "muon:lr=0.02", "name": "hidden", <key>: value}.
    spec: "kind" or "kind:key=value,...", for every group without its own;
    keyword arguments (torch's names: lr, betas, weight_decay, ...) add to it.
    """

    def __init__(self, params, spec="adamw", **hyper):
        self._dsc = _NumpyOptimizer()
        self._spec = spec
        self._hyper = hyper
        self._names = []       # descent index -> name
        self._tensors = []     # descent index -> parameter tensor
        self._group_of = []    # torch group index -> descent group name
        self._keys = []        # torch group index -> [(key, type)] of its optimizer
        self._synced = []      # torch group index -> {key: value last pushed}
        self._grads = []       # descent index -> the .grad tensor bound last
        self._gptr = []
        self._dptr = []
        self._numel = []
        self._prebuilt = None  # split(): {id(tensor): descent group} already registered
        self._split_specs = hyper.pop("_split", None)
        if self._split_specs is not None:
            self._prebuild(params)
            params = self._prebuilt_groups
        super().__init__(params, {})
        self._prebuilt = None
        if self.param_groups:
            self.defaults = {k: v for k, v in self.param_groups[0].items()
                             if k not in _GROUP_META}

    def __reduce_ex__(self, protocol):
        raise TypeError("descent.torch.Optimizer holds a C handle and cannot be copied or "
                        "pickled; save its state_dict() (or save()) instead")

    def __deepcopy__(self, memo):
        self.__reduce_ex__(2)

    def __copy__(self):
        self.__reduce_ex__(2)

    # ---------------------------------------------------------- groups
    def _prebuild(self, named):
        matrix, rest = self._split_specs
        d = self._dsc
        items = [(n, p) for n, p in named]
        for n, p in items:
            _check_tensor(n, p)
        d.use_split(_compose(matrix, self._hyper), _compose(rest, self._hyper))
        for n, p in items:
            self._register(n, p, None)
        where = {}
        for info in d.params():
            where.setdefault(info["group"], []).append(info["name"])
        by_name = dict(items)
        self._prebuilt = {}
        self._prebuilt_groups = []
        for gname, kind in d.groups():
            names = where.get(gname, [])
            if not names:
                continue
            for n in names:
                self._prebuilt[id(by_name[n])] = gname
            self._prebuilt_groups.append({"params": [(n, by_name[n]) for n in names],
                                          "name": gname})

    def _register(self, name, p, group):
        t = p.detach()
        flat = t.reshape(1) if t.dim() == 0 else t
        arr_shape = tuple(flat.shape)
        shape = (ctypes.c_int64 * len(arr_shape))(*arr_shape)
        d = self._dsc
        d._ck(_lib.add_param(d._h, _b(name), t.data_ptr(),
                             t.data_ptr(), len(arr_shape), shape, 0, _b(group)))
        self._names.append(name)
        self._tensors.append(p)
        self._grads.append(None)
        self._gptr.append(None)
        self._dptr.append(t.data_ptr())
        self._numel.append(t.numel())
        n = len(self._dptr)
        self._darr = (ctypes.c_void_p * n)(*self._dptr)
        self._garr = (ctypes.c_void_p * n)(*[x or 0 for x in self._gptr])

    def add_param_group(self, param_group):
        """Add a group (a dict with "params" and optionally "spec", "name" and
        hyperparameters). Every tensor is checked before anything changes."""
        if not isinstance(param_group, dict):
            raise TypeError("descent.torch: a param group must be a dict")
        pg = dict(param_group)
        named = _named(pg["params"], len(self._names))
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        known = set(self._names)
        if self._prebuilt is not None:
            gname = pg["name"]
        else:
            for n, p in named:
                _check_tensor(n, p)
                if id(p) in seen:
                    raise Error("parameter \"%s\" appears in more than one group" % n,
                                "DSC_DUPLICATE_NAME")
                if n in known:
                    raise Error("two parameters are named \"%s\"" % n, "DSC_DUPLICATE_NAME")
                seen.add(id(p))
                known.add(n)
            gname = pg.get("name") or "group%d" % len(self.param_groups)
            overrides = dict(self._hyper)
            overrides.update({k: v for k, v in pg.items() if k not in _GROUP_META})
            spec = _compose(pg.get("spec", self._spec), overrides)
            # A scratch optimizer checks the spec and every shape first, so a
            # rejected group leaves this one unchanged.
            for n, p in named:
                shp = tuple(p.shape) or (1,)
                arr = (ctypes.c_int64 * len(shp))(*shp)
                nbytes = ctypes.c_size_t()
                st = _lib.state_bytes_spec(_b(spec), len(shp), arr, ctypes.byref(nbytes))
                if st != 0:
                    probe = _NumpyOptimizer()
                    probe.add_group(gname, spec)  # raises with libdescent's message
                    raise Error("parameter \"%s\" (shape %s): %s does not take it (%s)"
                                % (n, tuple(p.shape), spec, _s(_lib.status_string(st))),
                                _s(_lib.status_name(st)))
            self._dsc.add_group(gname, spec)
            for n, p in named:
                self._register(n, p, gname)
        group = {"params": [p for _, p in named], "name": gname}
        kind = dict(self._dsc.groups())[gname]
        group["spec"] = kind
        keys = [(k["name"], k["type"]) for k in _kind(kind)["keys"]]
        self._group_of.append(gname)
        self._keys.append(keys)
        self._synced.append({})
        self._fill(len(self._group_of) - 1, group)
        super().add_param_group(group)

    def _fill(self, gi, group):
        """Write group gi's values from libdescent into the dict `group`."""
        gname = self._group_of[gi]
        synced = self._synced[gi]
        for key, typ in self._keys[gi]:
            v = self._dsc.get_hyper(gname, key)
            v = bool(v) if typ == "bool" else int(v) if typ == "int" else v
            group[key] = v
            synced[key] = v
        if "beta1" in synced and "beta2" in synced:
            group["betas"] = synced["betas"] = (synced["beta1"], synced["beta2"])

    def _sync(self):
        """Push the values of param_groups that changed since the last push; on
        a rejected value, undo this call's pushes and raise."""
        done = []
        try:
            for gi, group in enumerate(self.param_groups):
                synced = self._synced[gi]
                gname = self._group_of[gi]
                betas = group.get("betas")
                if betas is not None and "betas" in synced and betas != synced["betas"]:
                    b1, b2 = betas
                    group["beta1"], group["beta2"] = b1, b2
                for key, typ in self._keys[gi]:
                    v = group.get(key)
                    if v is None or v == synced[key]:
                        continue
                    old = synced[key]
                    try:
                        self._dsc.set_hyper(gname, key, float(v))
                    except Error as e:
                        raise Error("param_groups[%d][\"%s\"] = %r: %s" % (gi, key, v, e),
                                    e.status) from None
                    done.append((gi, key, old))
                    synced[key] = v
                if "betas" in synced:
                    synced["betas"] = group["betas"] = (group["beta1"], group["beta2"])
        except Exception:
            for gi, key, old in reversed(done):
                self._dsc.set_hyper(self._group_of[gi], key, float(old))
                self._synced[gi][key] = old
            raise

    # --------------------------------------------------------- stepping
    def _bind(self):
        """Point libdescent at the current .grad (and data) of every parameter.
        Returns False when no parameter has a gradient.

        The hot path: torch itself refuses a .grad of another shape, dtype or
        device, so a gradient tensor seen for the first time needs only the
        checks torch does not make (dense, contiguous, CPU); its address goes
        into a ctypes array kept between steps, and one rebind_all call hands
        the whole array to libdescent when anything changed."""
        changed = False
        missing = None
        have = 0
        grads, gptr, garr = self._grads, self._gptr, self._garr
        f32 = _torch.float32
        for i, p in enumerate(self._tensors):
            g = p.grad
            if g is None:
                missing = i
                continue
            have += 1
            if g is not grads[i] or g.data_ptr() != gptr[i]:
                if not (g.is_cpu and g.dtype is f32 and not g.is_sparse and g.is_contiguous()):
                    _check_tensor(self._names[i], g, "gradient of")
                if g.numel() != self._numel[i]:  # torch checks shapes; resize_ is possible
                    raise Error("gradient of \"%s\" has shape %s, the parameter %s"
                                % (self._names[i], tuple(g.shape), tuple(p.shape)),
                                "DSC_SHAPE")
                grads[i] = g
                gptr[i] = garr[i] = g.data_ptr()
                changed = True
            if p.data_ptr() != self._dptr[i]:
                _check_tensor(self._names[i], p)
                self._dptr[i] = self._darr[i] = p.data_ptr()
                changed = True
        if have == 0:
            return False
        if missing is not None:
            raise Error("parameter \"%s\" has no gradient (.grad is None) while others "
                        "have one; descent steps all its parameters together: leave "
                        "frozen parameters out of the optimizer" % self._names[missing])
        if changed:
            d = self._dsc
            d._ck(_lib.rebind_all(d._h, len(garr), self._darr, garr))
        return True

    @_torch.no_grad()
    def step(self, closure=None):
        """One libdescent step over every parameter; returns closure()'s loss."""
        loss = None
        if closure is not None:
            with _torch.enable_grad():
                loss = closure()
        self._sync()
        if not self._bind():
            return loss
        d = self._dsc
        d._ck(_lib.step(d._h))
        return loss

    def stats(self):
        """What the last step did (descent.StepStats)."""
        return self._dsc.stats()

    @property
    def descent(self):
        """The underlying descent.Optimizer (clipping, schedules, listings)."""
        return self._dsc

    # ------------------------------------------------------------ state
    def _index(self):
        """torch's numbering of parameters (group by group) -> descent index."""
        where = {id(p): i for i, p in enumerate(self._tensors)}
        return [where[id(p)] for g in self.param_groups for p in g["params"]]

    def state_dict(self):
        """torch's layout: {"state": {i: {"step", "exp_avg", ...}}, "param_groups":
        [...]}, numbered as torch numbers parameters. Slots hold copies, shaped
        as the parameter where they have its size; "step" is a float tensor as
        in torch 1.13. A parameter that has not stepped has no state. The
        groups' own state (if any) is under "descent_group_state"."""
        state = {}
        for ti, di in enumerate(self._index()):
            slots = self._dsc.state(self._names[di])
            p = self._tensors[di]
            if "step" in slots and int(slots["step"].reshape(-1)[0]) == 0:
                continue
            st = {}
            for k, a in slots.items():
                if k == "step":
                    st[k] = _torch.tensor(float(a.reshape(-1)[0]))
                    continue
                if a.dtype == np.uint16:  # bf16 bits (bf16_state): torch.bfloat16
                    t = _torch.from_numpy(a.view(np.int16)).view(_torch.bfloat16)
                else:
                    t = _torch.from_numpy(a)
                st[k] = t.reshape(p.shape) if t.numel() == p.numel() else t
            state[ti] = st
        groups, start = [], 0
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = list(range(start, start + len(g["params"])))
            start += len(g["params"])
            groups.append(packed)
        out = {"state": state, "param_groups": groups}
        gstate = {}
        for gname in self._group_of:
            s = self._dsc.state(gname, group_state=True)
            if s:
                gstate[gname] = {k: _torch.from_numpy(v) for k, v in s.items()}
        if gstate:
            out["descent_group_state"] = gstate
        return out

    def load_state_dict(self, state_dict):
        """Load a state_dict of this class or of a torch.optim optimizer running the
        same algorithm (Adam, AdamW, SGD, Adagrad): groups and parameters paired by
        order, as torch does. Everything is checked before anything changes."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise Error("state_dict has %d parameter groups, this optimizer %d"
                        % (len(groups), len(self.param_groups)), "DSC_MISMATCH")
        for gi, (g, sg) in enumerate(zip(self.param_groups, groups)):
            if len(g["params"]) != len(sg["params"]):
                raise Error("state_dict group %d has %d parameters, this optimizer's %d"
                            % (gi, len(sg["params"]), len(g["params"])), "DSC_MISMATCH")
        index = self._index()
        saved_ids = [i for sg in groups for i in sg["params"]]
        staged = []  # (descent index, {slot: numpy})
        for ti, di in enumerate(index):
            st = state_dict["state"].get(saved_ids[ti])
            if not st:
                continue
            name = self._names[di]
            slots = {n: (dt, sh, nb) for n, dt, sh, nb in self._dsc._slots(name, False)}
            out = {}
            for k, v in st.items():
                if v is None:  # torch.optim.SGD without momentum
                    continue
                if k not in slots:
                    raise Error("state of \"%s\" has \"%s\"; the %s optimizer keeps %s"
                                % (name, k, self.param_groups[self._group_at(di)]["spec"],
                                   ", ".join(slots)), "DSC_MISMATCH")
                dt, sh, nb = slots[k]
                if dt == np.uint16:  # a bf16 slot: torch's value rounded to bfloat16
                    v = _torch.as_tensor(v).detach().cpu().to(_torch.bfloat16)
                    v = v.view(_torch.int16).numpy().view(np.uint16)
                a = (v.detach().cpu().numpy() if isinstance(v, _torch.Tensor)
                     else np.asarray(v))
                if k == "step":
                    a = np.asarray(round(float(a.reshape(-1)[0])))
                a = np.ascontiguousarray(a, dtype=dt).reshape(-1)
                if a.size != int(np.prod(sh, dtype=np.int64)):
                    raise Error("state \"%s\" of \"%s\" has %d values, descent's holds %d"
                                % (k, name, a.size, int(np.prod(sh))), "DSC_SHAPE")
                out[k] = a
            if out and "step" in slots and "step" not in out:
                out["step"] = np.ones(1, np.int64)  # torch's SGD keeps no counter
            staged.append((name, out))
        gstate = state_dict.get("descent_group_state", {})
        for gname in gstate:
            if gname not in self._group_of:
                raise Error("state_dict has group state of \"%s\", which this optimizer "
                            "lacks" % gname, "DSC_MISMATCH")
        # Hyperparameters first (rolled back as a whole if one is rejected).
        before = [dict(g) for g in self.param_groups]
        for g, sg in zip(self.param_groups, groups):
            for k, v in sg.items():
                if k not in _GROUP_META:
                    g[k] = v
        try:
            self._sync()
        except Exception:
            for g, b in zip(self.param_groups, before):
                g.clear()
                g.update(b)
            raise
        for name, out in staged:
            self._dsc.set_state(name, out)
        for gname, s in gstate.items():
            self._dsc.set_state(gname, {k: v.numpy() for k, v in s.items()}, group_state=True)

    def _group_at(self, di):
        t = self._tensors[di]
        for gi, g in enumerate(self.param_groups):
            if any(p is t for p in g["params"]):
                return gi
        return 0

    def save(self, path):
        """libdescent's own safetensors checkpoint (every slot, groups, schedules;
        written atomically). Hyperparameters of param_groups are pushed first."""
        self._sync()
        self._dsc.save(path)

    def load(self, path):
        """Load a checkpoint written by save() of an optimizer set up alike; the
        param_groups show the loaded hyperparameters."""
        self._dsc.load(path)
        for gi, g in enumerate(self.param_groups):
            self._fill(gi, g)


def split(model, matrix="muon:lr=0.02", rest="adamw:lr=3e-4", **hyper):
    """Muon-style split of model.named_parameters() (those with requires_grad):
    hidden matrices and conv filters to the group "matrix" run by `matrix`,
    embeddings (names with wte, wpe, embed), the head (lm_head, head,
    classifier) and vectors to the group "fallback" run by `rest`; vectors
    (biases, gains) get weight_decay 0. Keyword arguments go to both specs.
    opt.descent.params() lists where each tensor went."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return Optimizer(named, _split=(matrix, rest), **hyper)


def _factory(kind, doc):
    def make(params, lr=None, **hyper):
        if lr is not None:
            hyper["lr"] = lr
        return Optimizer(params, kind, **hyper)
    make.__name__ = make.__qualname__ = kind.capitalize()
    make.__doc__ = ("descent.torch.Optimizer(params, \"%s\", lr=..., ...): %s; takes "
                    "torch's keyword arguments (betas=(b1, b2) too)." % (kind, doc))
    return make


SGD = _factory("sgd", "torch.optim.SGD's update")
Adam = _factory("adam", "torch.optim.Adam's update")
AdamW = _factory("adamw", "torch.optim.AdamW's update")
Adagrad = _factory("adagrad", "torch.optim.Adagrad's update")
Lion = _factory("lion", "Lion (Chen et al. 2023)")
Muon = _factory("muon", "Muon (matrices only)")
