"""Reading and rewriting glb files (the glTF 2.0 binary container); no bpy.

Blender's glTF exporter writes every morph target densely before Blender 3.6 (one offset
per vertex, nearly all zero for a face shape that moves the mouth only): from Blender 3.4
the astronaut's glb was 21 MB against 7 MB from 5.0. `sparse_morph_targets` turns those
accessors into glTF sparse accessors (the indices and offsets of the vertices that move)
where that is smaller, which is what newer exporters write themselves.
"""

import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

FLOAT = 5126
_INDEX_TYPES = ((2**16, 5123, np.uint16), (2**32, 5125, np.uint32))
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


class GlbError(ValueError):
    """Not a glb this module can read or rewrite; the message says why."""


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """The JSON and BIN chunks of a glb."""
    if len(data) < 20:
        raise GlbError("not a glTF binary (too short)")
    magic, version, _ = struct.unpack_from("<4sII", data)
    if (magic, version) != (b"glTF", 2):
        raise GlbError("not a glTF 2.0 binary")
    json_length, _ = struct.unpack_from("<I4s", data, 12)
    gltf = json.loads(data[20:20 + json_length])
    offset = 20 + json_length
    binary = b""
    if offset + 8 <= len(data):
        bin_length, _ = struct.unpack_from("<I4s", data, offset)
        binary = data[offset + 8:offset + 8 + bin_length]
    return gltf, binary


def write_glb(gltf: dict, binary: bytes) -> bytes:
    """A glb from a JSON document and its BIN chunk (both padded to 4 bytes)."""
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    length = 12 + 8 + len(text) + (8 + len(binary) if binary else 0)
    out = struct.pack("<4sII", b"glTF", 2, length) + struct.pack("<I4s", len(text), b"JSON")
    out += text
    if binary:
        out += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return out


def _view_bytes(gltf: dict, binary: bytes, index: int) -> bytes:
    view = gltf["bufferViews"][index]
    start = view.get("byteOffset", 0)
    return binary[start:start + view["byteLength"]]


def _dense_float_rows(gltf: dict, binary: bytes, accessor: dict) -> np.ndarray | None:
    """(count, width) float32 values of a tightly packed float accessor without sparse
    substitutions; None for any other kind."""
    width = _WIDTH.get(accessor["type"], 0)
    if ("bufferView" not in accessor or "sparse" in accessor
            or accessor["componentType"] != FLOAT or width == 0):
        return None
    view = gltf["bufferViews"][accessor["bufferView"]]
    if view.get("byteStride", 4 * width) != 4 * width:
        return None
    data = _view_bytes(gltf, binary, accessor["bufferView"])
    start = accessor.get("byteOffset", 0)
    count = accessor["count"]
    return np.frombuffer(data, np.float32, count * width, start).reshape(count, width)


def _sparse_parts(values: np.ndarray) -> tuple[bytes, int, bytes, int] | None:
    """(indices bytes, their component type, values bytes, count) for the non-zero rows
    of values (N, W) when that is smaller than the dense array, else None."""
    rows = np.flatnonzero(np.any(values != 0, axis=1))
    if len(rows) == 0:
        rows = np.zeros(1, dtype=np.int64)  # glTF: a sparse accessor has count >= 1
    _, component, dtype = next(t for t in _INDEX_TYPES if len(values) <= t[0])
    index_bytes = rows.astype(dtype).tobytes()
    value_bytes = np.ascontiguousarray(values[rows], dtype=np.float32).tobytes()
    if len(index_bytes) + len(value_bytes) >= values.nbytes:
        return None
    return index_bytes, component, value_bytes, len(rows)


def _morph_accessors(gltf: dict) -> list[int]:
    return sorted({index for mesh in gltf.get("meshes", [])
                   for primitive in mesh.get("primitives", [])
                   for target in primitive.get("targets", []) for index in target.values()})


def sparsify(gltf: dict, binary: bytes) -> tuple[dict, bytes, int]:
    """The document with its dense morph-target accessors made sparse where smaller, the
    new BIN chunk and how many accessors changed. Only plain files (one buffer, no
    bufferView extensions, as Blender writes them) are rewritten; others come back as
    they are."""
    views = gltf.get("bufferViews", [])
    if len(gltf.get("buffers", [])) != 1 or any("extensions" in v for v in views):
        return gltf, binary, 0
    new_views: list[tuple[bytes, int | None]] = []  # (bytes, byteStride) appended
    changed = 0
    for index in _morph_accessors(gltf):
        accessor = gltf["accessors"][index]
        values = _dense_float_rows(gltf, binary, accessor)
        parts = None if values is None else _sparse_parts(values)
        if parts is None:
            continue
        index_bytes, component, value_bytes, count = parts
        first = len(views) + len(new_views)
        new_views += [(index_bytes, None), (value_bytes, None)]
        del accessor["bufferView"]
        accessor.pop("byteOffset", None)
        accessor["sparse"] = {"count": count,
                              "indices": {"bufferView": first, "componentType": component},
                              "values": {"bufferView": first + 1}}
        changed += 1
    if not changed:
        return gltf, binary, 0
    return gltf, repack(gltf, binary, appended=new_views, drop_unused=True), changed


def _view_references(gltf: dict) -> list[tuple[dict, str]]:
    """Every (object, key) in the document that holds a bufferView index."""
    refs = []
    for accessor in gltf.get("accessors", []):
        if "bufferView" in accessor:
            refs.append((accessor, "bufferView"))
        sparse = accessor.get("sparse")
        if sparse:
            refs += [(sparse["indices"], "bufferView"), (sparse["values"], "bufferView")]
    refs += [(image, "bufferView") for image in gltf.get("images", []) if "bufferView" in image]
    return refs


def repack(gltf: dict, binary: bytes, replaced: Mapping[int, bytes] | None = None,
           appended: Sequence[tuple[bytes, int | None]] = (), drop_unused: bool = False
           ) -> bytes:
    """The BIN chunk (buffer 0) rebuilt, with the document updated in place to match.

    replaced: bufferView index -> its new bytes; appended: (bytes, byteStride or None) of
    new views in buffer 0, numbered after the existing ones; drop_unused: views that no
    accessor, sparse accessor or image refers to are dropped and the rest renumbered (only
    for plain files: a view an extension refers to would be lost). Every range in buffer 0
    (views, and EXT_meshopt_compression's compressed ranges) is written in its old order,
    appended views last, each 4-byte aligned, and its byteOffset/byteLength updated; views
    in other buffers are left as they are."""
    replaced = replaced or {}
    views = gltf.get("bufferViews", [])
    new_views = [{"buffer": 0, **({"byteStride": stride} if stride else {})}
                 for _, stride in appended]
    if new_views:
        views = gltf["bufferViews"] = views + new_views
    # (sort key, the view it belongs to, object holding byteOffset/byteLength, bytes)
    ranges: list[tuple[tuple[int, int], dict, dict, bytes]] = []
    for index, view in enumerate(views[:len(views) - len(new_views)]):
        if view.get("buffer") == 0:
            data = replaced[index] if index in replaced else _view_bytes(gltf, binary, index)
            ranges.append(((0, view.get("byteOffset", 0)), view, view, data))
        meshopt = view.get("extensions", {}).get("EXT_meshopt_compression")
        if meshopt is not None and meshopt.get("buffer") == 0:
            start = meshopt.get("byteOffset", 0)
            ranges.append(((0, start), view, meshopt,
                           binary[start:start + meshopt["byteLength"]]))
    ranges += [((1, order), view, view, data)
               for order, (view, (data, _)) in enumerate(zip(new_views, appended, strict=True))]
    if drop_unused:
        refs = _view_references(gltf)
        used = sorted({holder[key] for holder, key in refs})
        renumber = {old_index: new_index for new_index, old_index in enumerate(used)}
        for holder, key in refs:
            holder[key] = renumber[holder[key]]
        gltf["bufferViews"] = [views[index] for index in used]
        kept = {id(view) for view in gltf["bufferViews"]}
        ranges = [item for item in ranges if id(item[1]) in kept]
    ranges.sort(key=lambda item: item[0])
    out = bytearray()
    for _, _, holder, data in ranges:
        out += b"\0" * (-len(out) % 4)
        holder["byteOffset"], holder["byteLength"] = len(out), len(data)
        out += data
    gltf["buffers"][0]["byteLength"] = len(out)
    return bytes(out)


def sparse_morph_targets(path: Path) -> int:
    """Rewrite a glb in place with sparse morph targets (see `sparsify`); returns how
    many accessors changed (0: the file is left untouched)."""
    gltf, binary = read_glb(path.read_bytes())
    gltf, binary, changed = sparsify(gltf, binary)
    if changed:
        path.write_bytes(write_glb(gltf, binary))
    return changed
