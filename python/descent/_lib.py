"""ctypes declarations of libdescent's C API (include/descent.h).

The package loads the shared library it was built with, looked up in this
order:

1. the ``DESCENT_LIBRARY`` environment variable (a path to libdescent.so);
2. ``_installed.py`` beside this file, written by ``make install``: the
   library installed with the package (a path relative to the package, so
   a moved prefix still works);
3. a source checkout: ``build/libdescent.so`` at the top of the clone that
   holds this package (``make`` builds it there);
4. the system's library path (``libdescent.so.0``).
"""
import ctypes
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    env = os.environ.get("DESCENT_LIBRARY")
    if env:
        return [("DESCENT_LIBRARY", env)]
    out = []
    try:
        from . import _installed  # written by `make install`
        out.append(("installed", os.path.normpath(os.path.join(_HERE, _installed.LIBRARY))))
    except ImportError:
        pass
    out.append(("checkout", os.path.join(os.path.dirname(os.path.dirname(_HERE)),
                                         "build", "libdescent.so")))
    out.append(("system", "libdescent.so.0"))
    return out


def _load():
    tried = []
    for how, path in _candidates():
        if how != "system" and not os.path.exists(path):
            tried.append("%s (%s: no such file)" % (path, how))
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s: %s)" % (path, how, e))
    raise ImportError("descent: cannot load libdescent; tried " + "; ".join(tried) +
                      ". Build it with `make`, or set DESCENT_LIBRARY to the path of "
                      "libdescent.so")


lib, path = _load()

c_int, c_double, c_size_t, c_char_p, c_void_p = (ctypes.c_int, ctypes.c_double, ctypes.c_size_t,
                                                  ctypes.c_char_p, ctypes.c_void_p)
c_int64 = ctypes.c_int64
MAX_NDIM = 4


class BuildInfo(ctypes.Structure):
    _fields_ = [("version", c_char_p), ("blas", c_char_p), ("openmp", c_int),
                ("max_threads", c_int), ("kernels", c_char_p)]


class KeyInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("type", c_int), ("default_value", c_double),
                ("min_value", c_double), ("max_value", c_double), ("min_open", c_int),
                ("max_open", c_int), ("help", c_char_p)]


class OptimizerInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("summary", c_char_p), ("paper", c_char_p),
                ("source", c_char_p), ("nkeys", c_int), ("keys", ctypes.POINTER(KeyInfo)),
                ("matrix", c_int)]


class ParamInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("group", c_char_p), ("optimizer", c_char_p),
                ("role", c_int), ("ndim", c_int), ("shape", c_int64 * MAX_NDIM),
                ("numel", c_size_t), ("no_decay", c_int), ("state_bytes", c_size_t),
                ("bf16", c_int), ("work_bytes", c_size_t),
                ("_spare", ctypes.c_char * 256)]


class Schedule(ctypes.Structure):
    _fields_ = [("kind", c_int), ("warmup", c_int64), ("total", c_int64), ("decay", c_int64),
                ("step_size", c_int64), ("gamma", c_double), ("min_ratio", c_double)]


class StepStats(ctypes.Structure):
    _fields_ = [("step", c_int64), ("applied", c_int), ("skipped", c_int),
                ("grad_l2", c_double), ("grad_l1", c_double), ("grad_linf", c_double),
                ("clip_scale", c_double), ("nonfinite", c_size_t),
                ("skipped_total", c_int64), ("zeroed_total", c_int64), ("lr", c_double),
                ("update_l2", c_double), ("clipped_total", c_int64),
                ("_spare", ctypes.c_char * 256)]


class SlotInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_char_p), ("ndim", c_int),
                ("shape", c_int64 * MAX_NDIM), ("count", c_size_t), ("bytes", c_size_t),
                ("_spare", ctypes.c_char * 256)]


# Structures that libdescent fills through a pointer end with spare room, so
# that a library newer than this file (a field added at the end) cannot write
# past them; tests/python/test_numpy.py checks the fields against the header.


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


H = c_void_p  # dsc_optimizer *
status_name = _fn("dsc_status_name", c_char_p, c_int)
status_string = _fn("dsc_status_string", c_char_p, c_int)
build_info = _fn("dsc_build_info", BuildInfo)
set_num_threads = _fn("dsc_set_num_threads", None, c_int)
get_num_threads = _fn("dsc_get_num_threads", c_int)
kind_count = _fn("dsc_optimizer_kind_count", c_int)
kind = _fn("dsc_optimizer_kind", ctypes.POINTER(OptimizerInfo), c_int)
kind_find = _fn("dsc_optimizer_kind_find", ctypes.POINTER(OptimizerInfo), c_char_p)
new = _fn("dsc_optimizer_new", H)
free = _fn("dsc_optimizer_free", None, H)
error = _fn("dsc_optimizer_error", c_char_p, H)
add_group = _fn("dsc_optimizer_add_group", c_int, H, c_char_p, c_char_p)
add_rule = _fn("dsc_optimizer_add_rule", c_int, H, c_char_p, c_int, c_char_p, c_int)
use_split = _fn("dsc_optimizer_use_split", c_int, H, c_char_p, c_char_p)
add_param = _fn("dsc_optimizer_add_param", c_int, H, c_char_p, c_void_p, c_void_p, c_int,
                ctypes.POINTER(c_int64), c_int, c_char_p)
rebind = _fn("dsc_optimizer_rebind", c_int, H, c_char_p, c_void_p, c_void_p)
rebind_all = _fn("dsc_optimizer_rebind_all", c_int, H, c_int, c_void_p, c_void_p)
move_param = _fn("dsc_optimizer_move_param", c_int, H, c_char_p, c_char_p)
set_hyper = _fn("dsc_optimizer_set_hyper", c_int, H, c_char_p, c_char_p, c_double)
get_hyper = _fn("dsc_optimizer_get_hyper", c_int, H, c_char_p, c_char_p,
                ctypes.POINTER(c_double))
set_param_hyper = _fn("dsc_optimizer_set_param_hyper", c_int, H, c_char_p, c_char_p, c_double)
param_count = _fn("dsc_optimizer_param_count", c_int, H)
param_info = _fn("dsc_optimizer_param_info", c_int, H, c_int, ctypes.POINTER(ParamInfo))
group_count = _fn("dsc_optimizer_group_count", c_int, H)
group_name = _fn("dsc_optimizer_group_name", c_char_p, H, c_int)
group_kind = _fn("dsc_optimizer_group_kind", c_char_p, H, c_int)
state_bytes = _fn("dsc_optimizer_state_bytes", c_size_t, H)
schedule_parse = _fn("dsc_schedule_parse", c_int, c_char_p, ctypes.POINTER(Schedule),
                     c_char_p, c_size_t)
set_schedule = _fn("dsc_optimizer_set_schedule", c_int, H, c_char_p, c_char_p,
                   ctypes.POINTER(Schedule))
set_clip = _fn("dsc_optimizer_set_clip", c_int, H, c_int, c_double)
set_nonfinite = _fn("dsc_optimizer_set_nonfinite", c_int, H, c_int)
set_accumulation = _fn("dsc_optimizer_set_accumulation", c_int, H, c_int)
set_stats = _fn("dsc_optimizer_set_stats", c_int, H, c_int)
step = _fn("dsc_optimizer_step", c_int, H)
stats = _fn("dsc_optimizer_stats", c_int, H, ctypes.POINTER(StepStats))
step_count = _fn("dsc_optimizer_step_count", c_int64, H)
use_reference = _fn("dsc_optimizer_use_reference", None, H, c_int)
save = _fn("dsc_optimizer_save", c_int, H, c_char_p)
load = _fn("dsc_optimizer_load", c_int, H, c_char_p)
slot_count = _fn("dsc_optimizer_slot_count", c_int, H, c_char_p, c_int)
slot_info = _fn("dsc_optimizer_slot_info", c_int, H, c_char_p, c_int, c_int,
                ctypes.POINTER(SlotInfo))
read_slot = _fn("dsc_optimizer_read_slot", c_int, H, c_char_p, c_int, c_char_p, c_void_p,
                c_size_t)
write_slot = _fn("dsc_optimizer_write_slot", c_int, H, c_char_p, c_int, c_char_p, c_void_p,
                 c_size_t)
state_bytes_spec = _fn("dsc_state_bytes", c_int, c_char_p, c_int, ctypes.POINTER(c_int64),
                       ctypes.POINTER(c_size_t))
