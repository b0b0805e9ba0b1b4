"""Mutations for tools/fuzz.py: raw bytes, protobuf fields (ONNX, caffemodel), JSON configs,
prototxt text, HDF5 attributes and datasets, and .keras zip members. Every function takes a
random.Random and returns new bytes (or files); nothing here runs Ferry."""
import io
import json
import os
import re
import struct
import tempfile
import zipfile

# Values that break size arithmetic: overflowing products, negatives, the edges of 32/64 bits.
INTERESTING_INTS = [0, 1, -1, 2, 3, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1,
                    2**40, 2**53, 2**62, 2**63 - 1, -(2**31), -(2**63), 46341, 3037000500, 1 << 20, 7, 1000003]


def mutate_bytes(data, rng, others=()):
    """Bit flips, boundary bytes, truncation, splices of another seed, duplicated ranges."""
    data = bytearray(data)
    kind = rng.choice(["flip", "bytes", "truncate", "splice", "duplicate", "int"])
    if not data:
        return bytes(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            value = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x01]).to_bytes(1, "little") * rng.choice([1, 2, 4, 8])
            data[i:i + len(value)] = value
    elif kind == "truncate":
        data = data[:rng.randrange(len(data))]
    elif kind == "splice" and others:
        other = rng.choice(others)
        a, b = rng.randrange(len(data)), rng.randrange(len(other) or 1)
        data = data[:a] + other[b:b + rng.randint(1, 4096)] + data[a:]
    elif kind == "int":
        # An interesting integer written over a random position as 4 or 8 little-endian bytes.
        i = rng.randrange(len(data))
        v = rng.choice(INTERESTING_INTS)
        width = rng.choice([4, 8])
        data[i:i + width] = (v % (1 << (8 * width))).to_bytes(width, "little")
    else:
        a = rng.randrange(len(data))
        data = data[:a] + data[a:a + rng.randint(1, 512)] * 2 + data[a:]
    return bytes(data)


# ---------------------------------------------------------------- protobuf wire format

def _varint(data, i):
    shift = value = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _enc_varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Field:
    """One field of a message; `children` when its bytes parse as a message themselves."""
    __slots__ = ("number", "wire", "value", "children")

    def __init__(self, number, wire, value, children=None):
        self.number, self.wire, self.value, self.children = number, wire, value, children


def parse_message(data, depth=0):
    fields = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field 0")
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            if i + 8 > len(data):
                raise ValueError("short")
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            if i + 4 > len(data):
                raise ValueError("short")
            value, i = data[i:i + 4], i + 4
        elif wire == 2:
            n, i = _varint(data, i)
            if i + n > len(data):
                raise ValueError("short")
            value, i = data[i:i + n], i + n
        else:
            raise ValueError("wire type")
        children = None
        if wire == 2 and depth < 12 and value and len(value) < 1 << 22:
            try:
                children = parse_message(value, depth + 1)
            except (ValueError, RecursionError):
                children = None
        fields.append(Field(number, wire, value, children))
    return fields


def encode_message(fields):
    out = bytearray()
    for f in fields:
        out += _enc_varint(f.number << 3 | f.wire)
        if f.wire == 0:
            out += _enc_varint(f.value)
        elif f.wire in (1, 5):
            out += f.value
        else:
            payload = encode_message(f.children) if f.children is not None else f.value
            out += _enc_varint(len(payload)) + payload
    return bytes(out)


def _all_fields(fields, out=None, parent=None):
    out = [] if out is None else out
    for f in fields:
        out.append((f, fields))
        if f.children is not None:
            _all_fields(f.children, out, f)
    return out


def _looks_like_name(value):
    return 0 < len(value) < 200 and all(32 <= b < 127 for b in value)


def mutate_protobuf(data, rng):
    """Decodes the wire format (sub-messages found by trying to parse every byte field), changes
    fields and encodes again with consistent lengths: varints (dims, sizes, attribute values) to
    huge, negative or overflowing values; packed arrays (dims, float data) cut or lengthened so
    declared sizes and data disagree; names swapped with other names (dangling references,
    duplicates, cycles); fields duplicated or dropped."""
    try:
        fields = parse_message(data)
    except (ValueError, RecursionError):
        return mutate_bytes(data, rng)
    everything = _all_fields(fields)
    if not everything:
        return mutate_bytes(data, rng)
    names = [f for f, _ in everything if f.wire == 2 and f.children is None and _looks_like_name(f.value)]
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["varint", "varint", "packed", "bytes", "name", "name", "duplicate", "drop", "fixed"])
        if kind == "varint":
            candidates = [f for f, _ in everything if f.wire == 0]
            if candidates:
                rng.choice(candidates).value = rng.choice(INTERESTING_INTS) % (1 << 64)
        elif kind == "fixed":
            candidates = [f for f, _ in everything if f.wire in (1, 5)]
            if candidates:
                f = rng.choice(candidates)
                f.value = rng.choice([b"\xff", b"\x00", b"\x7f"]) * len(f.value)
        elif kind == "packed":
            # A byte field without a message inside: packed numbers or raw tensor data.
            candidates = [f for f, _ in everything if f.wire == 2 and f.children is None and len(f.value) > 0]
            if candidates:
                f = rng.choice(candidates)
                choice = rng.randrange(4)
                if choice == 0:
                    f.value = f.value[:rng.randrange(len(f.value))]
                elif choice == 1:
                    f.value = f.value + f.value[:rng.randint(1, 64)]
                elif choice == 2:
                    f.value = b"".join(_enc_varint(rng.choice(INTERESTING_INTS)) for _ in range(rng.randint(1, 6)))
                else:
                    f.value = f.value[:1]
        elif kind == "bytes":
            candidates = [f for f, _ in everything if f.wire == 2 and f.children is None]
            if candidates:
                f = rng.choice(candidates)
                f.value = mutate_bytes(f.value, rng) if f.value else b"\x00"
        elif kind == "name" and len(names) > 1:
            # Every name mutation makes a reference point somewhere else: to another value
            # (a cycle, a duplicate output, a shared name) or to nothing.
            f = rng.choice(names)
            f.value = rng.choice(names).value if rng.random() < 0.8 else b"nowhere_" + f.value
        elif kind == "duplicate":
            f, owner = rng.choice(everything)
            owner.insert(rng.randrange(len(owner) + 1), Field(f.number, f.wire, f.value, f.children))
        elif kind == "drop":
            f, owner = rng.choice(everything)
            if f in owner:
                owner.remove(f)
        everything = _all_fields(fields)
        if not everything:
            break
    return encode_message(fields)


# ---------------------------------------------------------------- ONNX (with the onnx package)

def mutate_onnx(data, rng):
    """Semantic ONNX mutations: dims of initializers and inputs, raw data lengths, dangling,
    duplicate and cyclic value names, attribute values. Falls back to the wire-format mutator."""
    try:
        import onnx
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception:
        return mutate_protobuf(data, rng)
    g = model.graph
    kind = rng.choice(["init_dims", "raw_data", "dangling", "duplicate_output", "cycle", "attribute",
                       "input_dims", "duplicate_initializer", "int_values", "opset"])
    if kind == "init_dims" and g.initializer:
        t = rng.choice(g.initializer)
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(INTERESTING_INTS)
        else:
            t.dims.append(rng.choice(INTERESTING_INTS))
    elif kind == "raw_data" and g.initializer:
        t = rng.choice(g.initializer)
        if t.raw_data:
            t.raw_data = t.raw_data[:rng.randrange(len(t.raw_data))] if rng.random() < 0.5 else t.raw_data + b"\0" * rng.randint(1, 16)
        else:
            t.raw_data = b"\x01\x02\x03"
    elif kind == "dangling" and g.node:
        n = rng.choice(g.node)
        if n.input:
            n.input[rng.randrange(len(n.input))] = "dangling_" + str(rng.randrange(100))
    elif kind == "duplicate_output" and len(g.node) > 1:
        a, b = rng.sample(list(g.node), 2)
        if a.output and b.output:
            a.output[0] = b.output[0]
    elif kind == "cycle" and g.node:
        # A node reads a value computed after it (or by itself).
        i = rng.randrange(len(g.node))
        j = rng.randrange(i, len(g.node))
        if g.node[i].input and g.node[j].output:
            g.node[i].input[0] = g.node[j].output[0]
    elif kind == "attribute":
        attrs = [a for n in g.node for a in n.attribute]
        if attrs:
            a = rng.choice(attrs)
            if a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice(INTERESTING_INTS)
            elif a.type == onnx.AttributeProto.INT:
                a.i = rng.choice(INTERESTING_INTS)
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice([float("nan"), float("inf"), -1e38, 0.0, 1e-45])
            else:
                a.type = rng.choice([1, 2, 3, 7])
    elif kind == "input_dims" and g.input:
        v = rng.choice(g.input)
        dims = v.type.tensor_type.shape.dim
        if dims:
            dims[rng.randrange(len(dims))].dim_value = rng.choice(INTERESTING_INTS)
    elif kind == "duplicate_initializer" and len(g.initializer) > 1:
        g.initializer[0].name = g.initializer[1].name
    elif kind == "int_values":
        ints = [t for t in g.initializer if t.data_type in (6, 7)]
        if ints:
            t = rng.choice(ints)
            count = len(t.raw_data) // (8 if t.data_type == 7 else 4)
            if count:
                fmt = "<q" if t.data_type == 7 else "<i"
                i = rng.randrange(count)
                width = struct.calcsize(fmt)
                v = rng.choice(INTERESTING_INTS)
                v = max(min(v, 2**(8 * width - 1) - 1), -(2**(8 * width - 1)))
                raw = bytearray(t.raw_data)
                raw[i * width:(i + 1) * width] = struct.pack(fmt, v)
                t.raw_data = bytes(raw)
    elif kind == "opset" and model.opset_import:
        model.opset_import[0].version = rng.choice([0, 1, 5, 6, 7, 24, 25, 2**62])
    try:
        return model.SerializeToString()
    except Exception:
        return mutate_protobuf(data, rng)


# ---------------------------------------------------------------- JSON configs

def _json_nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_nodes(v, path + (i,))


def _set(root, path, value):
    target = root
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value


def mutate_json_value(root, rng):
    """Changes types, numbers (huge, negative, fractional), names (inbound node references that
    dangle or loop, duplicate layer names), drops keys and duplicates list items."""
    nodes = list(_json_nodes(root))
    strings = [v for _, v in nodes if isinstance(v, str)]
    for _ in range(rng.randint(1, 3)):
        path, value = rng.choice(nodes)
        if not path:
            continue
        kind = rng.randrange(7)
        if isinstance(value, bool) or kind == 0:
            _set(root, path, rng.choice([None, True, 0, -1, "x", [], {}, [1, 2], 1.5, 2**63, -(2**63) - 1]))
        elif isinstance(value, (int, float)):
            _set(root, path, rng.choice(INTERESTING_INTS + [1e308, -1e308, 0.5, -0.5, 1e-300]))
        elif isinstance(value, str) and strings:
            _set(root, path, rng.choice(strings) if rng.random() < 0.8 else value + "_missing")
        elif isinstance(value, list) and value:
            if kind < 3:
                value.append(value[rng.randrange(len(value))])
            elif kind < 5:
                del value[rng.randrange(len(value))]
            else:
                value.reverse()
        elif isinstance(value, dict) and value:
            key = rng.choice(list(value))
            if kind < 4:
                del value[key]
            else:
                value[key] = rng.choice([None, [], {}, "relu", 3])
        nodes = list(_json_nodes(root))
    return root


def mutate_json(data, rng):
    try:
        root = json.loads(data)
    except Exception:
        return mutate_bytes(data, rng)
    if rng.random() < 0.15:
        return mutate_bytes(data, rng)
    return json.dumps(mutate_json_value(root, rng)).encode()


# ---------------------------------------------------------------- prototxt text

_NUMBER = re.compile(rb"(?<=:)\s*-?\d+(\.\d+)?(e-?\d+)?")
_QUOTED = re.compile(rb'"[^"\n]*"')
_BLOCK = re.compile(rb"\blayers?\s*\{")


def mutate_prototxt(data, rng):
    """Numbers to huge or negative values, quoted names swapped (dangling bottoms, duplicate
    tops, cycles), layer blocks duplicated, lines dropped; else raw byte mutations."""
    kind = rng.choice(["number", "number", "name", "name", "layer", "line", "bytes"])
    if kind == "number":
        spans = [m.span() for m in _NUMBER.finditer(data)]
        if spans:
            a, b = rng.choice(spans)
            return data[:a] + b" " + str(rng.choice(INTERESTING_INTS + [1e39, -0.5])).encode() + data[b:]
    elif kind == "name":
        quoted = [m.span() for m in _QUOTED.finditer(data)]
        if len(quoted) > 1:
            a, b = rng.choice(quoted)
            c, d = rng.choice(quoted)
            return data[:a] + data[c:d] + data[b:]
    elif kind == "layer":
        starts = [m.start() for m in _BLOCK.finditer(data)]
        if starts:
            i = rng.randrange(len(starts))
            end = starts[i + 1] if i + 1 < len(starts) else len(data)
            block = data[starts[i]:end]
            at = rng.choice(starts + [len(data)])
            return data[:at] + block + data[at:]
    elif kind == "line":
        lines = data.split(b"\n")
        if len(lines) > 1:
            del lines[rng.randrange(len(lines))]
            return b"\n".join(lines)
    return mutate_bytes(data, rng)


# ---------------------------------------------------------------- HDF5 (with h5py)

def mutate_h5(data, rng, scratch):
    """Structure-aware HDF5 mutations through h5py on a scratch copy: the model_config JSON,
    weight_names / layer_names attributes (dangling, duplicate), dataset shapes (huge declared
    shapes with no data behind them, empty, scalar; gzip-compressed or not), dataset types
    (integer, string), attribute types. Returns the bytes of the changed file (or raw byte mutations when h5py fails)."""
    import h5py
    import numpy as np
    with open(scratch, "wb") as f:
        f.write(data)
    try:
        with h5py.File(scratch, "r+") as h5:
            datasets, groups = [], []
            h5.visititems(lambda name, obj: (datasets if isinstance(obj, h5py.Dataset) else groups).append(name))
            kind = rng.choice(["config", "config", "names", "shape", "shape", "dtype", "attr_type", "delete"])
            if kind == "config" and "model_config" in h5.attrs:
                raw = h5.attrs["model_config"]
                raw = raw.decode() if isinstance(raw, bytes) else str(raw)
                h5.attrs["model_config"] = json.dumps(mutate_json_value(json.loads(raw), rng))
            elif kind == "names":
                holders = [h5[g] for g in groups if "weight_names" in h5[g].attrs or "layer_names" in h5[g].attrs]
                if holders:
                    g = rng.choice(holders)
                    key = "weight_names" if "weight_names" in g.attrs else "layer_names"
                    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs[key]]
                    if names and rng.random() < 0.5:
                        names[rng.randrange(len(names))] = rng.choice(names + ["missing/kernel:0", "", "../x", "a" * 300])
                    else:
                        names = names + names[:1]
                    g.attrs[key] = np.array([n.encode() for n in names])
            elif kind == "shape" and datasets:
                name = rng.choice(datasets)
                del h5[name]
                shape = rng.choice([(2**40,), (2**31, 2**31), (0,), (), (3, 0, 7), (1, 1, 1, 1, 1, 1, 1), (2**20, 2**20), (5,)])
                # Compressed or not: gzip, the one filter Ferry reads, bounds the expansion it allows.
                options = rng.choice([{}, {"compression": "gzip"}, {"compression": "gzip", "shuffle": True}])
                if shape and np.prod([float(s) for s in shape]) > 1e6:
                    # Declared huge, stored nowhere: chunked with no chunk written (fill values).
                    h5.create_dataset(name, shape=shape, dtype="f4", chunks=tuple(1 for _ in shape), **options)
                else:
                    h5.create_dataset(name, data=np.ones(shape, dtype="f4"), **(options if shape else {}))
            elif kind == "dtype" and datasets:
                name = rng.choice(datasets)
                shape = h5[name].shape
                del h5[name]
                dtype = rng.choice(["i4", "i8", "u1", "f8", "f2", h5py.string_dtype()])
                h5.create_dataset(name, shape=shape, dtype=dtype)
            elif kind == "attr_type":
                holders = [h5] + [h5[g] for g in groups]
                g = rng.choice(holders)
                if g.attrs:
                    key = rng.choice(list(g.attrs))
                    g.attrs[key] = rng.choice([np.int64(7), np.zeros((2, 2)), b"", np.array([], dtype="f4"), "x"])
            elif kind == "delete" and (datasets or groups):
                name = rng.choice(datasets + groups)
                if name in h5:
                    del h5[name]
        with open(scratch, "rb") as f:
            return f.read()
    except Exception:
        return mutate_bytes(data, rng)


# ---------------------------------------------------------------- .keras zip

def mutate_keras_zip(data, rng, scratch):
    """Rebuilds the zip with a mutated member: config.json (JSON mutations), model.weights.h5
    (HDF5 or byte mutations), member names that escape the target (`../`, absolute) or repeat,
    declared sizes that lie; else raw byte mutations of the whole archive."""
    try:
        members = []
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                members.append([info.filename, z.read(info)])
    except Exception:
        return mutate_bytes(data, rng)
    kind = rng.choice(["config", "config", "weights", "weights_bytes", "names", "bytes", "sizes"])
    if kind == "bytes":
        return mutate_bytes(data, rng)
    for m in members:
        if kind == "config" and m[0] == "config.json":
            m[1] = mutate_json(m[1], rng)
        elif kind == "weights" and m[0] == "model.weights.h5":
            m[1] = mutate_h5(m[1], rng, scratch)
        elif kind == "weights_bytes" and m[0] == "model.weights.h5":
            m[1] = mutate_bytes(m[1], rng)
    if kind == "names":
        evil = rng.choice(["../model.weights.h5", "/tmp/config.json", "a/../../x", "..\\x", "config.json", "model.weights.h5"])
        i = rng.randrange(len(members))
        if rng.random() < 0.5:
            members[i][0] = evil
        else:
            members.append([evil, members[i][1]])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as z:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, content in members:
                z.writestr(name, content)
    result = bytearray(out.getvalue())
    if kind == "sizes":
        # Lie in a local or central header's sizes (offsets 18..25 of a local header).
        heads = [m.start() for m in re.finditer(rb"PK\x03\x04|PK\x01\x02", bytes(result))]
        if heads:
            h = rng.choice(heads)
            field = h + (18 if result[h + 2] == 3 else 20) + rng.choice([0, 4])
            result[field:field + 4] = struct.pack("<I", rng.choice([0, 1, 2**31, 2**32 - 1, 12345678]))
    return bytes(result)
