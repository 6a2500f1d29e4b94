"""torchstate.py - save a torch.optim state_dict in the flat layout `descent
convert` reads, and load the files it writes (docs/convert.md shows the same
code). Plain numpy and json: no safetensors package is needed.

Layout, in either file format:
  tensors   "state.<i>.<slot>"   i: torch's parameter index, slot: exp_avg, ...
  metadata  "format": "torch-optimizer-state", "format_version": "1",
            "optimizer": "adamw" (torch's class in lower case),
            "param_groups": json.dumps(state_dict["param_groups"])
In .npz the metadata is the member "__metadata__": a uint8 vector holding the
UTF-8 JSON of that object. In safetensors it is the header's "__metadata__".
"""
import json
import struct

import numpy as np
import torch


def flatten(opt, kind):
    """state_dict -> ({name: numpy array}, {metadata})."""
    sd = opt.state_dict()
    arrays = {}
    for i, st in sd["state"].items():
        for slot, v in st.items():
            if v is None:  # SGD without momentum
                continue
            arrays["state.%d.%s" % (i, slot)] = torch.as_tensor(v).detach().cpu().numpy()
    meta = {"format": "torch-optimizer-state", "format_version": "1", "optimizer": kind,
            "param_groups": json.dumps(sd["param_groups"])}
    return arrays, meta


def save_npz(opt, path, kind, compressed=False):
    arrays, meta = flatten(opt, kind)
    arrays["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


_ST_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64",
              np.dtype("<i4"): "I32", np.dtype("uint8"): "U8"}


def write_safetensors(path, arrays, meta):
    """The safetensors layout: u64 header length, JSON header, data."""
    header, chunks, off = {"__metadata__": meta}, [], 0
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        b = a.tobytes()
        header[name] = {"dtype": _ST_DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def read_safetensors(path):
    from_st = {v: k for k, v in _ST_DTYPES.items()}
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    arrays = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        arrays[name] = np.frombuffer(data[b:en], from_st[e["dtype"]]).reshape(e["shape"]).copy()
    return arrays, meta


def save_safetensors(opt, path, kind):
    arrays, meta = flatten(opt, kind)
    write_safetensors(path, arrays, meta)


def read_any(path):
    if str(path).endswith(".npz"):
        z = np.load(path)
        meta = json.loads(bytes(z["__metadata__"]).decode())
        return {k: z[k] for k in z.files if k != "__metadata__"}, meta
    return read_safetensors(path)


def load(opt, path):
    """Load a file written by `descent convert` into a torch optimizer made
    with the same parameter groups, in the same order."""
    arrays, meta = read_any(path)
    groups = json.loads(meta["param_groups"])
    params = [p for g in opt.param_groups for p in g["params"]]
    ids = [i for g in groups for i in g["params"]]
    shape_of = dict(zip(ids, (p.shape for p in params)))
    state = {}
    for name, a in arrays.items():
        _, i, slot = name.split(".", 2)
        t = torch.from_numpy(a)
        if slot != "step":
            t = t.reshape(shape_of[int(i)])  # descent keeps 0-dim tensors as (1,)
        state.setdefault(int(i), {})[slot] = t
    # keys torch's class needs but the file does not carry (foreach, fused,
    # ...) come from the optimizer as it was made
    merged = [{**{k: v for k, v in mine.items() if k != "params"}, **saved}
              for mine, saved in zip(opt.param_groups, groups)]
    opt.load_state_dict({"state": state, "param_groups": merged})
