"""descent: libdescent's optimizers from Python.

``descent.Optimizer`` steps float32 numpy buffers that the caller owns (no
copies: libdescent reads the gradient arrays and updates the parameter
arrays in place). ``descent.torch`` wraps the same engine as a
``torch.optim.Optimizer``.

    import numpy as np, descent
    w = np.zeros((64, 32), np.float32); dw = np.zeros_like(w)
    opt = descent.Optimizer()
    opt.add_group("all", "adamw:lr=1e-3,weight_decay=0.1")
    opt.add_param("w", w, dw, group="all")
    for _ in range(100):
        dw[:] = grad_of(w)          # fill the gradient in place
        opt.step()

Every failure raises ``descent.Error`` (a subclass of ValueError) whose
text is libdescent's message and whose ``status`` is the C status name
("DSC_UNKNOWN_KEY", ...); a failed call changes nothing.
"""
import ctypes

import numpy as np

from . import _lib

__version__ = "0.1.0"
__all__ = ["Error", "Optimizer", "StepStats", "build_info", "kinds", "set_num_threads",
           "get_num_threads", "library_path", "ROLES"]

library_path = _lib.path
ROLES = ("auto", "matrix", "embedding", "head", "vector", "conv")
_CLIP = {"none": 0, "norm": 1, "value": 2}
_NONFINITE = {"skip": 0, "zero": 1, "fail": 2}
_KEY_TYPES = ("float", "int", "bool")
# BF16 slots (bf16_state) come as their raw bits: numpy has no bfloat16, and
# uint16 appears for nothing else (descent.torch turns them into
# torch.bfloat16 tensors).
_DTYPES = {"F32": np.float32, "F64": np.float64, "U8": np.uint8, "I64": np.int64,
           "BF16": np.uint16}


class Error(ValueError):
    """A libdescent call failed; str() is its message, .status the C status name."""

    def __init__(self, message, status="DSC_INVALID_ARGUMENT"):
        super().__init__(message)
        self.status = status


def _b(s):
    return None if s is None else s.encode()


def _s(b):
    return None if b is None else b.decode()


def _check(handle, st, what=None):
    if st == 0:
        return
    msg = _s(_lib.error(handle)) if handle else ""
    name = _s(_lib.status_name(st))
    if not msg:
        msg = "%s: %s" % (what or "descent", _s(_lib.status_string(st)))
    raise Error(msg, name)


def build_info():
    """Version, BLAS, OpenMP and kernels of the loaded library, and its path."""
    b = _lib.build_info()
    return {"version": _s(b.version), "blas": _s(b.blas), "openmp": bool(b.openmp),
            "max_threads": b.max_threads, "kernels": _s(b.kernels), "library": _lib.path}


def set_num_threads(n):
    """Threads used by steps (0: the OpenMP default). Results do not depend on it."""
    _lib.set_num_threads(int(n))


def get_num_threads():
    return _lib.get_num_threads()


def _kind_dict(p):
    k = p.contents
    keys = []
    for i in range(k.nkeys):
        e = k.keys[i]
        keys.append({"name": _s(e.name), "type": _KEY_TYPES[e.type],
                     "default": e.default_value, "min": e.min_value, "max": e.max_value,
                     "help": _s(e.help)})
    return {"name": _s(k.name), "summary": _s(k.summary), "paper": _s(k.paper),
            "matrix": bool(k.matrix), "keys": keys}


def kinds():
    """Every optimizer of the library: name, summary, paper and keys (with defaults)."""
    return [_kind_dict(_lib.kind(i)) for i in range(_lib.kind_count())]


def kind(name):
    """One optimizer's description by name or alias; Error if unknown."""
    p = _lib.kind_find(_b(name))
    if not p:
        raise Error("unknown optimizer \"%s\" (descent.kinds() lists them)" % name,
                    "DSC_UNKNOWN_OPTIMIZER")
    return _kind_dict(p)


class StepStats:
    """What the last step did (dsc_step_stats)."""

    __slots__ = ("step", "applied", "skipped", "grad_l2", "grad_l1", "grad_linf",
                 "clip_scale", "nonfinite", "skipped_total", "zeroed_total", "lr",
                 "update_l2", "clipped_total")

    def __init__(self, s):
        for f in self.__slots__:
            v = getattr(s, f)
            setattr(self, f, bool(v) if f in ("applied", "skipped") else v)

    def __repr__(self):
        return "StepStats(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in self.__slots__)


def _role(role):
    if isinstance(role, int):
        return role
    try:
        return ROLES.index(role)
    except ValueError:
        raise Error("unknown role \"%s\" (one of %s)" % (role, ", ".join(ROLES))) from None


def _check_buffer(name, what, a, shape=None):
    if not isinstance(a, np.ndarray):
        raise Error("parameter \"%s\": %s must be a numpy array, not %s"
                    % (name, what, type(a).__name__))
    if a.dtype != np.float32:
        raise Error("parameter \"%s\": %s is %s; libdescent steps float32 buffers"
                    % (name, what, a.dtype))
    if not a.flags.c_contiguous:
        raise Error("parameter \"%s\": %s is not C-contiguous (np.ascontiguousarray makes "
                    "a copy that you then own)" % (name, what))
    if what == "data" and not a.flags.writeable:
        raise Error("parameter \"%s\": data is read-only" % name)
    if shape is not None and a.shape != shape:
        raise Error("parameter \"%s\": %s has shape %s, data has %s"
                    % (name, what, a.shape, shape), "DSC_SHAPE")


class Optimizer:
    """libdescent's optimizer over caller-owned float32 numpy buffers.

    Groups are added with a spec ("adamw:lr=3e-4,weight_decay=0.1"), or
    routed by role with use_split(); parameters are registered by name with
    their gradient arrays, which must stay alive (this object keeps a
    reference) and are read in place at every step().
    """

    def __init__(self):
        self._h = _lib.new()
        if not self._h:
            raise MemoryError("descent: cannot allocate an optimizer")
        self._buffers = {}  # name -> (data, grad): keeps the arrays alive

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            _lib.free(h)
            self._h = None

    def __reduce__(self):
        # Two Python objects over one C handle would free it twice.
        raise TypeError("a descent optimizer holds a C handle and cannot be copied or "
                        "pickled; save() its checkpoint (or its state_dict) instead")

    def __deepcopy__(self, memo):
        self.__reduce__()

    __copy__ = __reduce__

    def _ck(self, st, what=None):
        _check(self._h, st, what)

    # ----------------------------------------------------------- setup
    def add_group(self, name, spec):
        self._ck(_lib.add_group(self._h, _b(name), _b(spec)))

    def add_rule(self, pattern=None, role="auto", group=None, no_decay=False):
        self._ck(_lib.add_rule(self._h, _b(pattern), _role(role), _b(group), int(bool(no_decay))))

    def use_split(self, matrix, fallback):
        """Groups "matrix" (hidden matrices, conv filters) and "fallback" (the rest)."""
        self._ck(_lib.use_split(self._h, _b(matrix), _b(fallback)))

    def add_param(self, name, data, grad, group=None, role="auto"):
        """Register `data` (updated in place) and `grad` (read): float32, C-contiguous,
        1 to 4 dimensions. group None routes by the rules."""
        _check_buffer(name, "data", data)
        _check_buffer(name, "grad", grad, data.shape)
        if not 1 <= data.ndim <= _lib.MAX_NDIM:
            raise Error("parameter \"%s\": %d dimensions (libdescent takes 1 to %d)"
                        % (name, data.ndim, _lib.MAX_NDIM), "DSC_SHAPE")
        shape = (ctypes.c_int64 * data.ndim)(*data.shape)
        self._ck(_lib.add_param(self._h, _b(name), data.ctypes.data, grad.ctypes.data,
                                data.ndim, shape, _role(role), _b(group)))
        self._buffers[name] = (data, grad)

    def rebind(self, name, data, grad):
        """Point a parameter at new buffers of the same shape."""
        old = self._buffers.get(name)
        if old is None:
            raise Error("rebind: no parameter named \"%s\"" % name, "DSC_UNKNOWN_NAME")
        _check_buffer(name, "data", data, old[0].shape)
        _check_buffer(name, "grad", grad, old[0].shape)
        self._ck(_lib.rebind(self._h, _b(name), data.ctypes.data, grad.ctypes.data))
        self._buffers[name] = (data, grad)

    def move_param(self, name, group):
        self._ck(_lib.move_param(self._h, _b(name), _b(group)))

    # ------------------------------------------------- hyperparameters
    def set_hyper(self, group, key, value):
        """Set a hyperparameter of a group (None: every group)."""
        self._ck(_lib.set_hyper(self._h, _b(group), _b(key), float(value)))

    def get_hyper(self, group, key):
        v = ctypes.c_double()
        self._ck(_lib.get_hyper(self._h, _b(group), _b(key), ctypes.byref(v)))
        return v.value

    def set_param_hyper(self, param, key, value):
        """Override a hyperparameter for one parameter only."""
        self._ck(_lib.set_param_hyper(self._h, _b(param), _b(key), float(value)))

    def set_schedule(self, group, key, schedule):
        """A multiplier on a float key over steps: "cosine:warmup=100,total=5000,
        min_ratio=0.1", "wsd:...", "step:step_size=..,gamma=..", "linear_warmup:...",
        "constant". group None: every group."""
        s = _lib.Schedule()
        err = ctypes.create_string_buffer(256)
        st = _lib.schedule_parse(_b(schedule), ctypes.byref(s), err, 256)
        if st != 0:
            raise Error(_s(err.value) or "bad schedule \"%s\"" % schedule,
                        _s(_lib.status_name(st)))
        self._ck(_lib.set_schedule(self._h, _b(group), _b(key), ctypes.byref(s)))

    def set_clip(self, kind, limit=0.0):
        """Clip over all parameters: "norm" (global l2), "value", or "none"."""
        if kind not in _CLIP:
            raise Error("clip kind \"%s\": one of %s" % (kind, ", ".join(_CLIP)))
        self._ck(_lib.set_clip(self._h, _CLIP[kind], float(limit)))

    def set_nonfinite(self, policy):
        """What a NaN/Inf gradient does: "skip" the step, "zero" the entries, "fail"."""
        if policy not in _NONFINITE:
            raise Error("non-finite policy \"%s\": one of %s" % (policy, ", ".join(_NONFINITE)))
        self._ck(_lib.set_nonfinite(self._h, _NONFINITE[policy]))

    def set_accumulation(self, micro_steps):
        self._ck(_lib.set_accumulation(self._h, int(micro_steps)))

    def set_stats(self, on=True):
        """Gradient norms in stats() every step (one more pass over the gradients)."""
        self._ck(_lib.set_stats(self._h, int(bool(on))))

    def use_reference(self, on=True):
        _lib.use_reference(self._h, int(bool(on)))

    # --------------------------------------------------------- stepping
    def step(self):
        """One step (or micro-step) over every group; returns its StepStats."""
        self._ck(_lib.step(self._h))
        return self.stats()

    def stats(self):
        s = _lib.StepStats()
        self._ck(_lib.stats(self._h, ctypes.byref(s)))
        return StepStats(s)

    @property
    def step_count(self):
        return _lib.step_count(self._h)

    # --------------------------------------------------------- listings
    def params(self):
        """One dict per parameter, in registration order: name, group, optimizer,
        role, shape, numel, no_decay, state_bytes."""
        out = []
        info = _lib.ParamInfo()
        for i in range(_lib.param_count(self._h)):
            self._ck(_lib.param_info(self._h, i, ctypes.byref(info)))
            out.append({"name": _s(info.name), "group": _s(info.group),
                        "optimizer": _s(info.optimizer), "role": ROLES[info.role],
                        "shape": tuple(info.shape[:info.ndim]), "numel": info.numel,
                        "no_decay": bool(info.no_decay), "state_bytes": info.state_bytes})
        return out

    def groups(self):
        """[(group name, optimizer name)] in creation order."""
        return [(_s(_lib.group_name(self._h, i)), _s(_lib.group_kind(self._h, i)))
                for i in range(_lib.group_count(self._h))]

    @property
    def state_bytes(self):
        return _lib.state_bytes(self._h)

    # ------------------------------------------------------------ state
    def _slots(self, owner, group_state):
        n = _lib.slot_count(self._h, _b(owner), int(group_state))
        if n < 0:
            raise Error("no %s named \"%s\"" % ("group" if group_state else "parameter", owner),
                        "DSC_UNKNOWN_NAME")
        info = _lib.SlotInfo()
        out = []
        for i in range(n):
            self._ck(_lib.slot_info(self._h, _b(owner), int(group_state), i, ctypes.byref(info)))
            out.append((_s(info.name), _DTYPES[_s(info.dtype)], tuple(info.shape[:info.ndim]),
                        info.bytes))
        return out

    def state(self, owner, group_state=False):
        """A copy of the optimizer state of a parameter (or, with group_state, of a
        group) as {slot name: numpy array}."""
        out = {}
        for name, dtype, shape, nbytes in self._slots(owner, group_state):
            a = np.empty(shape, dtype)
            self._ck(_lib.read_slot(self._h, _b(owner), int(group_state), _b(name),
                                    a.ctypes.data, nbytes))
            out[name] = a
        return out

    def set_state(self, owner, state, group_state=False):
        """Write slots from {slot name: array}; every array is checked (name, size)
        before anything is written. Slots not named keep their values."""
        slots = {n: (dt, sh, nb) for n, dt, sh, nb in self._slots(owner, group_state)}
        staged = []
        for name, value in state.items():
            if name not in slots:
                raise Error("\"%s\" has no state slot \"%s\" (it has %s)"
                            % (owner, name, ", ".join(slots) or "none"), "DSC_UNKNOWN_NAME")
            dt, sh, nb = slots[name]
            a = np.ascontiguousarray(np.asarray(value), dtype=dt)
            if a.size != int(np.prod(sh, dtype=np.int64)):
                raise Error("state \"%s\" of \"%s\": %d values given, the slot holds %s"
                            % (name, owner, a.size, sh or "1"), "DSC_SHAPE")
            staged.append((name, a))
        for name, a in staged:
            self._ck(_lib.write_slot(self._h, _b(owner), int(group_state), _b(name),
                                     a.ctypes.data, a.nbytes))

    # ------------------------------------------------------ checkpoints
    def save(self, path):
        """libdescent's safetensors checkpoint (written atomically)."""
        self._ck(_lib.save(self._h, _b(str(path))))

    def load(self, path):
        """Load a checkpoint of an optimizer with the same groups and parameters."""
        self._ck(_lib.load(self._h, _b(str(path))))
