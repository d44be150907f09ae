"""Checkpoint layouts a traced model needs: literal values, overlays, and tensors that are a block
of a bigger (virtual) tensor.

What is checked, and against what:

- ``values``: the literal float64 values come back exactly in float64 and, in every other dtype,
  rounded once as ``constant`` rounds its value (compared with ``constant`` and with
  ``dtypes.round_to_dtype`` element by element); ``index=`` and ``out=`` select and write the same
  bytes; bad, truncated, over-long, non-finite and zip-bomb data are refused with a one-line
  ValueError naming ``data``, the bomb without inflating more than the tensor's bytes.
- ``TensorSpec.writes`` and ``TensorSpec.source``: every stored byte equals a NumPy reference
  built from the definitions alone (the whole stream tensor generated, the overlays assigned with
  NumPy basic indexing in order, the source block taken and its axes permuted), for hand-made
  MoE layouts and for random layouts (hypothesis), at chunk sizes down to one row and one byte, so
  chunks cut through overlays and expert boundaries; whole-tensor schemes (orthogonal, sparse)
  likewise, with and without the writer's cache; the per-expert tensors of a fused parameter put
  back together are the fused tensor, byte for byte.
- Memory: a block of a 1 GiB virtual tensor is written with a peak (tracemalloc) of a few chunks.
- Records: tensors without source / writes keep their record byte for byte; the records of the
  new ones regenerate them in ``verify`` (one flipped byte inside an overlay or a sourced tensor
  is found); malformed records in a file, and malformed JSON manifests, are one-line
  ``CheckpointError``s naming the tensor (CLI: status 2, no traceback).
- JSON manifests: the documented forms read back to the same specs; ``with_overrides`` clears
  writes and keeps the source; ``fastinit.dask.write_checkpoint`` and ``part=`` write the same bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastinit
import fastinit.checkpoint as ck
from fastinit import driver, dtypes
from fastinit.checkpoint import writer
from fastinit.checkpoint.manifest import TensorSource, TensorSpec, manifest_to_json
from fastinit.dtypes import resolve_dtype
from fastinit.schemes.deterministic import encode_values

DTYPES = ["float32", "float64", "float16", "bfloat16"]
F32 = resolve_dtype("float32")
NORMAL = fastinit.get_initializer("normal", std=0.02)
ZEROS = fastinit.get_initializer("zeros")


# ==== the "values" scheme ========================================================================


def _tricky_values() -> list[float]:
    """float64 values whose rounding to the 16- and 32-bit dtypes is a tie, just off a tie, a
    subnormal, a signed zero or near the largest finite value."""
    f32_tie = 1.0 + 2.0**-24  # halfway between two float32 values
    bf16_tie = 1.0 + 2.0**-8
    f16_tie = 1.0 + 2.0**-11
    out = [0.0, -0.0, 1.0, -1.0, 0.1, -1 / 3, math.pi, 1e-30, 5e-324, -(2.0**-140), 2.0**-149, 3.0 * 2.0**-150]  # fmt: skip
    for tie in (f32_tie, bf16_tie, f16_tie):
        out += [tie, -tie, tie + 2.0**-52, tie - 2.0**-52, 1.0 + 3 * (tie - 1.0)]
    out += [65504.0, 65519.99, 3.3895313892515355e38, 3.3961e38, 3.4028234663852886e38, 6e-8, 2.0**-24 * 0.5]
    out += [math.inf, -math.inf]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_values_round_like_constant(dtype):
    """values() holds, in every dtype, what constant() gives for the same float64 value; where
    constant refuses (a finite value beyond the dtype) values refuses too."""
    for x in _tricky_values():
        data = encode_values(np.full((2, 3), x))
        try:
            expected = fastinit.constant((2, 3), x, dtype=dtype).tobytes()
        except ValueError:
            with pytest.raises(ValueError, match="data"):
                fastinit.values((2, 3), data, dtype=dtype)
            continue
        assert fastinit.values((2, 3), data, dtype=dtype).tobytes() == expected, (x, dtype)


def _near_ties(dtype: str, rng) -> np.ndarray:
    """Random float64 values, the midpoints between neighbouring values of dtype near them (exact
    ties), and those midpoints one float64 step off (a rounding through float32 gets them wrong)."""
    x = rng.standard_normal(400) * np.exp2(rng.integers(-20, 12, 400))
    x = np.concatenate([x, rng.standard_normal(50) * 2.0**-135, rng.standard_normal(50) * 2.0**-146])
    if dtype == "bfloat16":
        low = x.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
        mid = (low | np.uint32(0x8000)).view(np.float32).astype(np.float64)
    else:
        t = np.float32 if dtype == "float32" else np.float16
        with np.errstate(over="ignore", under="ignore"):
            g = x.astype(t)
        mid = (g.astype(np.float64) + np.nextafter(g, t(np.inf)).astype(np.float64)) / 2
    mid = mid[np.isfinite(mid)]
    return np.concatenate([x, mid, np.nextafter(mid, 0.0), np.nextafter(mid, np.inf)])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_values_round_once_element_by_element(dtype):
    """Every element rounded as constant() rounds that value alone."""
    x = _near_ties(dtype, np.random.default_rng(5))
    got = fastinit.values(x.shape, encode_values(x), dtype=dtype).raw
    expected = np.concatenate([fastinit.constant((1,), float(v), dtype=dtype).raw for v in x])
    assert got.tobytes() == expected.tobytes()
    if dtype == "bfloat16":
        as_float = (got.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    else:
        as_float = got.astype(np.float64)
    assert as_float[:300].tolist() == [dtypes.round_to_dtype(float(v), dtype) for v in x[:300]]


def test_values_float64_exact_and_c_order():
    x = np.array([[0.1, -0.0, 5e-324], [math.inf, -math.inf, 1e308]])
    out = fastinit.values(x.shape, encode_values(x), dtype="float64").raw
    assert out.tobytes() == x.tobytes()
    y = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    assert np.array_equal(fastinit.values((3, 4), encode_values(y), dtype="float64").raw, y)
    assert encode_values([1, 2, 3]) == encode_values(np.array([1.0, 2.0, 3.0]))
    assert fastinit.values((), encode_values(2.5)).raw.tolist() == 2.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_values_index_and_out(dtype):
    x = np.random.default_rng(1).standard_normal((5, 6, 7))
    data = encode_values(x)
    full = fastinit.values(x.shape, data, dtype=dtype).raw
    for index in [(slice(1, 4),), (2, slice(None, None, -2)), (Ellipsis, 3), (slice(4, 0, -3), 1, slice(1, 7, 2)),
                  (slice(0, 0),), 4]:  # fmt: skip
        got = fastinit.values(x.shape, data, dtype=dtype, index=index)
        assert got.tobytes() == np.ascontiguousarray(full[index]).tobytes(), index
        out = np.zeros(full[index].shape, full.dtype)
        fastinit.values(x.shape, data, dtype=dtype, index=index, out=out)
        assert out.tobytes() == got.tobytes()
    # seed and name are validated, and change nothing
    assert fastinit.values(x.shape, data, seed=9, name="a", dtype=dtype).tobytes() == full.tobytes()
    with pytest.raises(ValueError, match="seed"):
        fastinit.values(x.shape, data, seed=-1)


def _bad_data_cases():
    good = np.arange(6.0)
    raw = zlib.compress(good.astype("<f8").tobytes())
    b64 = base64.b64encode
    return {
        "short": encode_values(np.arange(5.0)),
        "long": encode_values(np.arange(7.0)),
        "empty": encode_values(np.zeros(0)),
        "not base64": "@@@@",
        "base64 with junk": encode_values(good) + "!",
        "not zlib": b64(b"\x00" * 48).decode(),
        "truncated zlib": b64(raw[:-6]).decode(),
        "trailing bytes": b64(raw + b"xyz").decode(),
        "two streams": b64(raw + raw).decode(),
        "nan": encode_values([1.0, 2.0, math.nan, 4.0, 5.0, 6.0]),
        "beyond float32": encode_values([1.0, 2.0, 1e39, 4.0, 5.0, 6.0]),
        "non-ascii": "é" * 8,
    }


@pytest.mark.parametrize("case", list(_bad_data_cases()))
def test_values_bad_data_is_a_one_line_value_error(case):
    data = _bad_data_cases()[case]
    with pytest.raises(ValueError) as info:
        fastinit.values((2, 3), data)
    assert "data" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("data", [None, b"abc", 3, ["x"]], ids=repr)
def test_values_data_must_be_text(data):
    with pytest.raises(TypeError, match="data"):
        fastinit.values((2, 3), data)


def test_values_overflow_in_float16_only():
    data = encode_values([1e5, 1.0])
    assert fastinit.values((2,), data).raw.tolist() == [1e5, 1.0]
    with pytest.raises(ValueError, match="data"):
        fastinit.values((2,), data, dtype="float16")


def test_values_zip_bomb_is_refused_without_inflating_it():
    """200 MiB of zeros compress to ~200 KB; a (4,)-tensor reads at most its 32 bytes of them."""
    c = zlib.compressobj(9)
    parts = [c.compress(bytes(1 << 20)) for _ in range(200)] + [c.flush()]
    data = base64.b64encode(b"".join(parts)).decode()
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="data"):
            fastinit.values((4,), data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(data) + (1 << 20), peak
    # a shape that claims more values than any zlib stream this long can hold: refused at once
    with pytest.raises(ValueError, match="data"):
        fastinit.values((1 << 40,), encode_values([1.0]))


def test_values_initializer_round_trips_through_json():
    data = encode_values(np.linspace(-1, 1, 12))
    init = fastinit.Initializer("values", data=data)
    config = init.to_config()
    assert config == {"scheme": "values", "data": data}
    back = fastinit.Initializer.from_config(json.loads(json.dumps(config)))
    assert back == init and hash(back) == hash(init)
    assert (
        back((3, 4), dtype="bfloat16").tobytes() == fastinit.values((3, 4), data, dtype="bfloat16").tobytes()
    )


def test_values_is_a_registered_public_scheme():
    from fastinit.schemes import registry

    assert registry.SCHEMES["values"] is fastinit.values is fastinit.schemes.values
    assert "values" in fastinit.list_initializers() and "values" in fastinit.__all__
    assert fastinit.schemes.encode_values is encode_values


def test_values_prediction_in_inspect():
    from fastinit import inspection

    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    p = inspection.predict({"scheme": "values", "data": encode_values(x)}, x.shape)
    assert p.kind == "exact" and p.mean == pytest.approx(x.mean()) and p.std == pytest.approx(x.std())
    assert (p.low, p.high) == (1.0, 5.0)


# ==== references for source / writes ==============================================================


def stream_of(spec: TensorSpec) -> tuple[str, tuple[int, ...]]:
    return (spec.source.name, spec.source.shape) if spec.source is not None else (spec.name, spec.shape)


def reference_bytes(spec: TensorSpec, seed: int) -> bytes:
    """The stored tensor from the definitions: the whole stream tensor, the overlays assigned in
    order with NumPy basic indexing, the source block with its axes permuted, zero_rows zeroed."""
    name, shape = stream_of(spec)
    full = spec.init(shape, seed=seed, name=name, dtype=spec.dtype).raw.copy()
    for index, init in spec.writes:
        full[index] = init(shape, seed=seed, name=name, dtype=spec.dtype, index=index).raw
    stored = full if spec.source is None else np.transpose(full[spec.source.index], spec.source.axes)
    stored = np.array(stored)
    for row in spec.zero_rows:
        stored[row] = 0
    assert stored.shape == spec.shape
    return stored.tobytes()


def chunked_bytes(spec: TensorSpec, seed: int, chunk_bytes: int, cache=None) -> bytes:
    """The tensor as the writer generates it, chunk by chunk, into buffers of chunk_bytes."""
    out = bytearray(spec.nbytes)
    end = 0
    for r0, r1, b0, b1 in writer.row_chunks(spec, chunk_bytes):
        assert b0 == end
        buf = np.full(max(b1 - b0, chunk_bytes), 0xAB, np.uint8)
        out[b0:b1] = writer.generate_chunk(spec, seed, r0, r1, buf, cache=cache).tobytes()
        end = b1
    assert end == spec.nbytes
    return bytes(out)


def read_tensors(directory) -> dict[str, bytes]:
    """name -> raw bytes of every tensor of a checkpoint, parsed with struct + json."""
    found = {}
    for path in sorted(Path(directory).glob("*.safetensors")):
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        header.pop("__metadata__", None)
        for name, info in header.items():
            b0, b1 = info["data_offsets"]
            found[name] = raw[8 + n + b0 : 8 + n + b1]
    return found


def digests(directory) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).iterdir())
            if not p.name.startswith(".")}  # fmt: skip


def moe_manifest(
    dtype="float32", experts=3, inter=4, hidden=5, transpose_down=False, writes=()
) -> ck.Manifest:
    """transformers 5's fused experts, saved per expert: gate = gate_up[e, :I], up = gate_up[e, I:],
    down = down_proj[e] (or its transpose)."""
    dt = resolve_dtype(dtype)
    gate_up, down = "model.layers.0.mlp.experts.gate_up_proj", "model.layers.0.mlp.experts.down_proj"
    fused = (experts, 2 * inter, hidden)
    down_shape = (experts, hidden, inter)
    init = fastinit.get_initializer("kaiming_uniform", a=math.sqrt(5))
    specs = [TensorSpec("model.embed_tokens.weight", (7, hidden), dt, NORMAL, (3,))]
    for e in range(experts):
        p = f"model.layers.0.mlp.experts.{e}"
        specs.append(TensorSpec(f"{p}.gate_proj.weight", (inter, hidden), dt, init, writes=writes,
                                source=TensorSource(gate_up, fused, (e, slice(0, inter)), (0, 1))))  # fmt: skip
        specs.append(TensorSpec(f"{p}.up_proj.weight", (inter, hidden), dt, init, writes=writes,
                                source=TensorSource(gate_up, fused, (e, slice(inter, 2 * inter)), (0, 1))))  # fmt: skip
        axes = (1, 0) if transpose_down else (0, 1)
        shape = (inter, hidden) if transpose_down else (hidden, inter)
        specs.append(TensorSpec(f"{p}.down_proj.weight", shape, dt, NORMAL,
                                source=TensorSource(down, down_shape, (e,), axes)))  # fmt: skip
    return ck.Manifest(specs, {"model_type": "test-moe"}, source="test")


# ==== writes and source: bytes =======================================================================


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose_down", [False, True])
def test_per_expert_tensors_are_blocks_of_the_fused_stream(dtype, transpose_down):
    manifest = moe_manifest(dtype, transpose_down=transpose_down)
    init = manifest.tensors[1].init
    fused = init((3, 8, 5), seed=4, name="model.layers.0.mlp.experts.gate_up_proj", dtype=dtype).raw
    down = NORMAL((3, 5, 4), seed=4, name="model.layers.0.mlp.experts.down_proj", dtype=dtype).raw
    for spec in manifest.tensors:
        expected = reference_bytes(spec, 4)
        for chunk in (1, 7, 20, 21, 40, 1 << 20):
            assert chunked_bytes(spec, 4, chunk) == expected, (spec.name, chunk)
    by_name = {s.name: np.frombuffer(chunked_bytes(s, 4, 13), fused.dtype).reshape(s.shape)
               for s in manifest.tensors}  # fmt: skip
    rebuilt = np.stack([np.concatenate([by_name[f"model.layers.0.mlp.experts.{e}.gate_proj.weight"],
                                        by_name[f"model.layers.0.mlp.experts.{e}.up_proj.weight"]])
                        for e in range(3)])  # fmt: skip
    assert rebuilt.tobytes() == fused.tobytes()
    downs = np.stack([by_name[f"model.layers.0.mlp.experts.{e}.down_proj.weight"] for e in range(3)])
    assert (downs.transpose(0, 2, 1) if transpose_down else downs).tobytes() == down.tobytes()


def test_fans_of_a_sourced_tensor_come_from_the_source_shape():
    spec = moe_manifest().tensors[1]
    bound = math.sqrt(6 / ((1 + 5) * 8 * 5))  # kaiming_uniform(a=sqrt 5) on (3, 8, 5): fan_in = 8 * 5
    x = np.frombuffer(chunked_bytes(spec, 0, 1 << 20), np.float32)
    own = fastinit.get_initializer("kaiming_uniform", a=math.sqrt(5))((4, 5), seed=0, name=spec.name).raw
    assert np.abs(x).max() <= bound < np.abs(own).max()


def overlay_spec(dtype="float32", source=None, zero_rows=()) -> TensorSpec:
    shape = (10, 6)
    writes = (
        ((slice(2, 9, 3), slice(None, None, 2)), ZEROS),
        ((3,), fastinit.get_initializer("constant", value=0.5)),
        ((slice(None, None, -4), 1), fastinit.get_initializer("normal", mean=7.0, std=5.0)),
        ((Ellipsis, slice(4, 1, -1)), fastinit.get_initializer("uniform", low=2.0, high=3.0)),
        ((9, 5), fastinit.get_initializer("ones")),
    )
    return TensorSpec("w", shape, resolve_dtype(dtype), NORMAL, zero_rows, writes=writes, source=source)


@pytest.mark.parametrize("dtype", DTYPES)
def test_overlays_in_order_at_every_chunk_size(dtype):
    spec = overlay_spec(dtype, zero_rows=(4,))
    expected = reference_bytes(spec, 2)
    full = np.frombuffer(expected, spec.dtype.storage).reshape(spec.shape)
    assert not np.any(full[4]) and full[9, 5] == fastinit.ones(1, dtype=dtype).raw[0]
    for chunk in (1, spec.dtype.itemsize * 6, spec.dtype.itemsize * 7, 100, 1 << 20):
        assert chunked_bytes(spec, 2, chunk) == expected, chunk


def test_an_overlay_draws_from_the_tensors_own_stream():
    """An overlay's values at its positions are init_k(shape, name=<the tensor's>, index=...)."""
    init = fastinit.get_initializer("uniform", low=-4.0, high=-3.0)
    spec = TensorSpec("emb", (6, 4), F32, NORMAL, writes=(((slice(1, 5, 2), slice(1, 3)), init),))
    got = np.frombuffer(chunked_bytes(spec, 3, 16), np.float32).reshape(6, 4)
    assert (
        got[1:5:2, 1:3].tobytes()
        == init((6, 4), seed=3, name="emb", index=(slice(1, 5, 2), slice(1, 3))).tobytes()
    )
    base = NORMAL((6, 4), seed=3, name="emb").raw
    mask = np.ones((6, 4), bool)
    mask[1:5:2, 1:3] = False
    assert np.array_equal(got[mask], base[mask])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_overlays_of_a_sourced_tensor_are_in_stream_coordinates(dtype):
    """Overlays on the fused tensor, per-expert tensors reversed and transposed out of it."""
    writes = (((slice(None), slice(3, 6)), ZEROS), ((1, 2), fastinit.get_initializer("constant", value=-2.0)),
              ((slice(None, None, 2), slice(None, None, -3), slice(1, 5, 3)), fastinit.get_initializer("ones")))  # fmt: skip
    dt = resolve_dtype(dtype)
    specs = [
        TensorSpec(f"e{e}.{part}", (5, 4), dt, NORMAL, writes=writes,
                   source=TensorSource("fused", (3, 8, 5), (e, slice(lo + 3, lo - 1 if lo else None, -1)), (1, 0)))
        for e in range(3) for part, lo in (("gate", 0), ("up", 4))
    ]  # fmt: skip
    for spec in specs:
        expected = reference_bytes(spec, 8)
        for chunk in (1, dt.itemsize * 4, dt.itemsize * 9, 1 << 20):
            assert chunked_bytes(spec, 8, chunk) == expected, (spec.name, chunk)


@pytest.mark.parametrize("axes", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0)])
def test_three_dimensional_permutations(axes):
    """axes and their inverse differ only from 3 dimensions on."""
    writes = (
        ((slice(None), 2), ZEROS),
        ((1, slice(None, None, -2), slice(1, 4)), fastinit.get_initializer("ones")),
    )
    source = TensorSource("s", (3, 4, 5, 6), (slice(None, None, -1), 1), axes)
    block = (3, 5, 6)
    spec = TensorSpec("t", tuple(block[a] for a in axes), F32, NORMAL, writes=writes, source=source)
    expected = reference_bytes(spec, 1)
    for chunk in (1, 4 * 7, 1 << 20):
        assert chunked_bytes(spec, 1, chunk) == expected, chunk


@pytest.mark.parametrize(
    "init, stream, index, axes",
    [
        ({"scheme": "orthogonal"}, (3, 8, 5), (1, slice(4, 8)), (0, 1)),
        (
            {"scheme": "orthogonal", "batch_dims": 1, "gain": 2.0},
            (3, 8, 5),
            (2, slice(None, None, -2)),
            (1, 0),
        ),
        ({"scheme": "delta_orthogonal"}, (3, 3, 4, 6), (1, slice(None), slice(1, 4), 2), (1, 0)),
        ({"scheme": "sparse", "sparsity": 0.3, "std": 0.5}, (12, 6), (slice(3, 11), slice(0, 6, 2)), (1, 0)),
        ({"scheme": "eye"}, (6, 6), (slice(None, None, -1), slice(1, 5)), (0, 1)),
        ({"scheme": "dirac", "groups": 2}, (4, 2, 3), (slice(2, 4), 1), (1, 0)),
    ],
)
@pytest.mark.parametrize("with_writes", [False, True])
def test_whole_tensor_and_structured_schemes_on_a_source(init, stream, index, axes, with_writes):
    source = TensorSource("big", stream, index, axes)
    kept = driver.result_shape(stream, index)
    shape = tuple(kept[a] for a in axes)
    writes = (
        (((0,) * (len(stream) - 1)), ZEROS),
        ((slice(None, None, 2),), fastinit.get_initializer("ones")),
    )
    spec = TensorSpec("piece", shape, F32, fastinit.Initializer.from_config(init),
                      writes=writes if with_writes else (), source=source)  # fmt: skip
    expected = reference_bytes(spec, 6)
    assert chunked_bytes(spec, 6, 4) == expected
    cache = {}
    assert chunked_bytes(spec, 6, 4, cache=cache) == expected
    assert chunked_bytes(spec, 6, 4, cache=cache) == expected  # from the cache


def test_whole_tensor_source_generated_once_per_shard(monkeypatch):
    """The per-expert pieces of an orthogonal fused tensor: one QR of the fused tensor, not one
    per piece, and the same bytes as generating each piece alone."""
    init = fastinit.get_initializer("orthogonal")
    specs = [TensorSpec(f"e{e}.{p}", (4, 5), F32, init, source=TensorSource("fused", (3, 8, 5), (e, rows), (0, 1)))
             for e in range(3) for p, rows in (("gate", slice(0, 4)), ("up", slice(4, 8)))]  # fmt: skip
    expected = {s.name: reference_bytes(s, 1) for s in specs}
    calls = []
    record = fastinit.schemes.registry.RECORDS["orthogonal"]

    def counting(shape, *args, **kwargs):
        calls.append(kwargs.get("index"))
        return record.function(shape, *args, **kwargs)

    monkeypatch.setitem(
        fastinit.schemes.registry.RECORDS, "orthogonal", dataclasses.replace(record, function=counting)
    )
    cache = {}
    for spec in specs:
        assert chunked_bytes(spec, 1, 64, cache=cache) == expected[spec.name]
    assert len(calls) == 1


def test_zero_rows_of_a_sourced_tensor_are_stored_rows():
    source = TensorSource("emb_full", (8, 6), (slice(None, None, -1),), (0, 1))
    spec = TensorSpec("emb", (8, 6), F32, NORMAL, (2, 7), source=source)
    got = np.frombuffer(chunked_bytes(spec, 0, 24), np.float32).reshape(8, 6)
    assert not got[[2, 7]].any()
    assert got[0].tobytes() == NORMAL((8, 6), name="emb_full", index=7).tobytes()


# ---- random layouts ------------------------------------------------------------------------------


@st.composite
def index_for(draw, shape):
    items = []
    for n in shape:
        if draw(st.integers(0, 3)) == 0:
            items.append(draw(st.integers(-n, n - 1)))
        else:
            start = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            stop = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            step = draw(st.one_of(st.none(), st.sampled_from([1, 2, 3, -1, -2, -3])))
            items.append(slice(start, stop, step))
    cut = draw(st.integers(0, len(items)))
    return tuple(items[:cut])


OVERLAY_INITS = [
    {"scheme": "zeros"},
    {"scheme": "constant", "value": -3.5},
    {"scheme": "normal", "mean": 10.0, "std": 2.0},
    {"scheme": "uniform", "low": 20.0, "high": 21.0},
]
BASE_INITS = [
    {"scheme": "normal", "std": 0.5},
    {"scheme": "uniform"},
    {"scheme": "xavier_normal"},
    {"scheme": "kaiming_uniform", "a": 2.23606797749979},
    {"scheme": "values"},
    {"scheme": "orthogonal"},
]


@st.composite
def layouts(draw):
    stream = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    base = dict(draw(st.sampled_from(BASE_INITS)))
    if base["scheme"] == "values":
        base["data"] = encode_values(np.arange(math.prod(stream), dtype=np.float64) * 0.37 - 1.1)
    if base["scheme"] in ("orthogonal", "xavier_normal", "kaiming_uniform") and len(stream) < 2:
        base = {"scheme": "normal"}
    source = None
    shape = stream
    if draw(st.booleans()):
        index = draw(index_for(stream))
        kept = driver.result_shape(stream, index)
        axes = tuple(draw(st.permutations(range(len(kept)))))
        source = TensorSource("stream", stream, index, axes)
        shape = tuple(kept[a] for a in axes)
    writes = tuple((draw(index_for(stream)), fastinit.Initializer.from_config(draw(st.sampled_from(OVERLAY_INITS))))
                   for _ in range(draw(st.integers(0, 3))))  # fmt: skip
    zero_rows = ()
    if shape and shape[0] and draw(st.booleans()):
        zero_rows = (draw(st.integers(0, shape[0] - 1)),)
    dtype = resolve_dtype(draw(st.sampled_from(DTYPES)))
    return TensorSpec("t", shape, dtype, fastinit.Initializer.from_config(base), zero_rows, writes=writes,
                      source=source)  # fmt: skip


@pytest.mark.slow  # 150 random layouts written and read back
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=layouts(), chunk=st.integers(1, 200), seed=st.integers(0, 2**64 - 1))
def test_random_layouts_equal_the_reference(spec, chunk, seed):
    spec.check()
    expected = reference_bytes(spec, seed)
    assert chunked_bytes(spec, seed, chunk) == expected
    assert chunked_bytes(spec, seed, chunk, cache={}) == expected


@settings(max_examples=300, deadline=None)
@given(a=st.integers(-20, 20), s=st.integers(-5, 5).filter(bool), n=st.integers(0, 12),
       b=st.integers(-20, 20), t=st.integers(-5, 5).filter(bool), m=st.integers(0, 12))  # fmt: skip
def test_progression_intersection(a, s, n, b, t, m):
    from fastinit.checkpoint.manifest import _intersect

    first, step, count = _intersect(a, s, n, b, t, m)
    expected = [a + i * s for i in range(n) if a + i * s in {b + j * t for j in range(m)}]
    assert [first + i * step for i in range(count)] == expected
    if count > 1:
        assert step * s > 0


# ---- memory --------------------------------------------------------------------------------------


def test_a_block_of_a_huge_virtual_tensor_is_written_in_bounded_memory(tmp_path):
    """Experts of a 1 GiB fused tensor (never allocated): peak memory of a few chunks."""
    fused = (64, 2048, 2048)
    specs = [TensorSpec("e3.up", (1024, 2048), F32, NORMAL,
                        source=TensorSource("fused", fused, (3, slice(1024, 2048)), (0, 1))),
             TensorSpec("e5.down_t", (2048, 1024), F32, NORMAL,
                        source=TensorSource("fused", fused, (5, slice(0, 1024)), (1, 0))),
             TensorSpec("plain", (512, 1024), F32, NORMAL, writes=(((slice(3, 500, 7),), ZEROS),))]  # fmt: skip
    manifest = ck.Manifest(specs)
    chunk = 1 << 16
    ck.write_checkpoint(
        manifest, tmp_path / "warm", seed=0, chunk_bytes=chunk, max_shard_size="4MB"
    )  # (compiles)
    tracemalloc.start()
    try:
        ck.write_checkpoint(manifest, tmp_path / "out", seed=0, chunk_bytes=chunk, max_shard_size="4MB")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * chunk, peak
    stored = read_tensors(tmp_path / "out")
    up = NORMAL(fused, name="fused", index=(3, slice(1024, 2048))).raw
    assert stored["e3.up"] == up.tobytes()
    down = NORMAL(fused, name="fused", index=(5, slice(0, 1024))).raw
    assert stored["e5.down_t"] == np.ascontiguousarray(down.T).tobytes()


# ==== checkpoints: files, records, verify ==============================================================


def test_checkpoint_bytes_independent_of_chunk_and_shard_size(tmp_path):
    manifest = moe_manifest(
        "bfloat16",
        transpose_down=True,
        writes=(((slice(None), slice(3, 5)), ZEROS), ((1, 7), fastinit.get_initializer("ones"))),
    )
    manifest.tensors.append(overlay_spec("bfloat16"))
    expected = {s.name: reference_bytes(s, 11) for s in manifest.tensors}
    runs = [(1, "1GB"), (10, "1GB"), (30, "150B"), (1 << 20, "300B")]
    for chunk, shard in runs:
        out = tmp_path / f"{chunk}-{shard}"
        ck.write_checkpoint(manifest, out, seed=11, chunk_bytes=chunk, max_shard_size=shard)
        assert read_tensors(out) == expected, (chunk, shard)
        assert ck.verify_checkpoint(out, chunk_bytes=chunk).passed


def test_records_of_plain_tensors_are_unchanged():
    spec = TensorSpec("w", (4, 3), F32, NORMAL, (1,))
    assert spec.describe() == {"init": {"scheme": "normal", "std": 0.02}, "zero_rows": [1]}
    assert TensorSpec("w", (4, 3), F32, NORMAL).describe() == {"init": {"scheme": "normal", "std": 0.02}}


def test_records_of_sources_and_writes():
    spec = TensorSpec("e1.up", (4, 5), F32, NORMAL, writes=(((slice(None, None, -2), 3), ZEROS),),
                      source=TensorSource("fused", (3, 8, 5), (1, slice(4, 8)), (0, 1)))  # fmt: skip
    assert spec.describe() == {
        "init": {"scheme": "normal", "std": 0.02},
        "writes": [{"index": [{"start": 2, "stop": None, "step": -2}, 3, {"start": 0, "stop": 5, "step": 1}],
                    "init": {"scheme": "zeros"}}],
        "source": {"name": "fused", "shape": [3, 8, 5],
                   "index": [1, {"start": 4, "stop": 8, "step": 1}, {"start": 0, "stop": 5, "step": 1}],
                   "axes": [0, 1]},
    }  # fmt: skip
    json.dumps(spec.describe())


def test_json_manifest_round_trip(tmp_path):
    manifest = moe_manifest("float16", transpose_down=True, writes=(((0, slice(1, None, 3)), ZEROS),))
    manifest.tensors.append(overlay_spec("float16"))
    text = json.dumps(manifest_to_json(manifest))
    back = ck.manifest_from_json(text)
    assert back.tensors == manifest.tensors and back.config == manifest.config
    ck.write_checkpoint(manifest, tmp_path / "a", seed=2)
    ck.write_checkpoint(back, tmp_path / "b", seed=2)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


def test_json_manifest_documented_forms():
    data = encode_values(np.arange(24.0))
    m = ck.manifest_from_json({"tensors": [
        {"name": "a", "shape": [4, 2], "init": {"scheme": "values", "data": data},
         "source": {"name": "full", "shape": [2, 3, 4], "index": [1, {"start": 1}], "axes": [1, 0]},
         "writes": [{"index": [], "init": {"scheme": "ones"}}, {"index": [1, {"step": -1}, 2], "init": {"scheme": "zeros"}}]},
        {"name": "b", "shape": [3, 4], "init": {"scheme": "normal"}, "source": {"name": "full", "shape": [2, 3, 4],
                                                                                 "index": [0]}},
    ]})  # fmt: skip
    a, b = m.tensors
    assert a.source == TensorSource("full", (2, 3, 4), (1, slice(1, 3, 1), slice(0, 4, 1)), (1, 0))
    assert a.writes[0][0] == (slice(0, 2, 1), slice(0, 3, 1), slice(0, 4, 1))
    assert a.writes[1][0] == (1, slice(2, None, -1), 2)
    assert b.source.axes == (0, 1) and b.source.index == (0, slice(0, 3, 1), slice(0, 4, 1))
    got = np.frombuffer(chunked_bytes(a, 0, 8), np.float32).reshape(4, 2)
    # stored[j, i] = full[1, 1 + i, j]: ones, but full[1, :, 2] zeroed
    assert got.tolist() == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]


BAD_JSON = {
    "source not object": ({"source": 3}, "source"),
    "source without name": ({"source": {"shape": [4, 3]}}, "name"),
    "source shape": ({"source": {"name": "f", "shape": [4, -3]}}, "shape"),
    "source index type": ({"source": {"name": "f", "shape": [4, 3], "index": "0"}}, "index"),
    "source index entry": ({"source": {"name": "f", "shape": [4, 3], "index": [1.5]}}, "index"),
    "source index bool": ({"source": {"name": "f", "shape": [4, 3], "index": [True]}}, "index"),
    "source slice key": ({"source": {"name": "f", "shape": [4, 3], "index": [{"begin": 1}]}}, "index"),
    "source slice value": ({"source": {"name": "f", "shape": [4, 3], "index": [{"start": "1"}]}}, "index"),
    "source step 0": ({"source": {"name": "f", "shape": [4, 3], "index": [{"step": 0}]}}, "step"),
    "source out of bounds": ({"source": {"name": "f", "shape": [4, 3], "index": [4]}}, "bounds"),
    "source too many entries": ({"source": {"name": "f", "shape": [4, 3], "index": [0, 0, 0]}}, "index"),
    "source wrong shape": ({"source": {"name": "f", "shape": [5, 3]}}, "shape"),
    "source axes not permutation": ({"source": {"name": "f", "shape": [4, 3], "axes": [0, 0]}}, "axes"),
    "source axes wrong length": ({"source": {"name": "f", "shape": [4, 3], "axes": [0]}}, "axes"),
    "source axes type": ({"source": {"name": "f", "shape": [4, 3], "axes": "01"}}, "axes"),
    "source transposed shape": ({"source": {"name": "f", "shape": [4, 3], "axes": [1, 0]}}, "shape"),
    "source extra key": ({"source": {"name": "f", "shape": [4, 3], "offset": 1}}, "offset"),
    "source huge": ({"source": {"name": "f", "shape": [4, 3, 2**30, 2**20], "index": [{}, {}, 0, 0]}}, "plausible"),
    "writes not list": ({"writes": {}}, "writes"),
    "write not object": ({"writes": [3]}, "writes"),
    "write without init": ({"writes": [{"index": [0]}]}, "init"),
    "write bad init": ({"writes": [{"index": [0], "init": {"scheme": "nope"}}]}, "nope"),
    "write bad index": ({"writes": [{"index": [9], "init": {"scheme": "zeros"}}]}, "bounds"),
    "write init refuses": ({"writes": [{"index": [0], "init": {"scheme": "eye"}}], "shape": [2, 3, 4]}, "2 dim"),
    "write values wrong length": ({"writes": [{"index": [0], "init": {"scheme": "values", "data": "eJwDAAAAAAE="}}]},
                                  "data"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_bad_json_layouts_name_the_tensor(case):
    extra, fragment = BAD_JSON[case]
    item = {"name": "layer.w", "shape": [4, 3], "init": {"scheme": "normal"}, **extra}
    with pytest.raises(ck.CheckpointError) as info:
        ck.manifest_from_json([item])
    message = str(info.value)
    assert "'layer.w'" in message and fragment in message and "\n" not in message, message


def test_bad_python_layouts_name_the_tensor():
    with pytest.raises(ck.CheckpointError, match="'w'.*shape"):
        TensorSpec("w", (4, 4), F32, NORMAL, source=TensorSource("f", (4, 3), ()))
    with pytest.raises(ck.CheckpointError, match="source 'f'.*axes"):  # (made before the tensor)
        TensorSource("f", (4, 3), (), (1, 1))
    with pytest.raises(ck.CheckpointError, match="bounds"):
        TensorSource("f", (4, 3), (4,))
    with pytest.raises(ck.CheckpointError, match="'w'.*writes"):
        TensorSpec("w", (4, 3), F32, NORMAL, writes=[((0,), "zeros")])
    with pytest.raises(ck.CheckpointError, match="'w'.*bounds"):
        TensorSpec("w", (4, 3), F32, NORMAL, writes=[((0, 3), ZEROS)])
    spec = TensorSpec("w", (4, 3), F32, NORMAL, writes=[((0,), fastinit.get_initializer("eye"))],
                      source=TensorSource("f", (2, 4, 3), (1,)))  # fmt: skip
    with pytest.raises(ck.CheckpointError, match="'w'.*2 dimensions"):
        spec.check()
    assert isinstance(spec.writes, tuple) and hash(spec) == hash(spec)


def test_with_overrides_clears_writes_and_keeps_the_source():
    manifest = moe_manifest(writes=(((0,), ZEROS),))
    new = ck.with_overrides(manifest, {"*.up_proj.weight": {"scheme": "uniform"}})
    for old, spec in zip(manifest.tensors, new.tensors, strict=True):
        if spec.name.endswith("up_proj.weight"):
            assert spec.writes == () and spec.source == old.source and spec.init.scheme == "uniform"
        else:
            assert spec == old


# ---- verify ---------------------------------------------------------------------------------------


@pytest.fixture
def layout_checkpoint(tmp_path):
    manifest = moe_manifest(transpose_down=True, writes=(((slice(None), slice(2, 6)), ZEROS),))
    manifest.tensors.append(overlay_spec())
    ck.write_checkpoint(manifest, tmp_path, seed=5, max_shard_size="400B")
    return tmp_path, manifest


def _locate(directory, name):
    for path in sorted(Path(directory).glob("*.safetensors")):
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        if name in header:
            return path, 8 + n + header[name]["data_offsets"][0], n, header
    raise KeyError(name)


def _flip(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def test_verify_passes_and_finds_one_flipped_byte(layout_checkpoint):
    directory, _ = layout_checkpoint
    report = ck.verify_checkpoint(directory, chunk_bytes=16)
    assert report.passed and len(report.ok) == 11
    # inside the overlay [3] (constant 0.5) of "w": element (3, 1)
    path, start, _, _ = _locate(directory, "w")
    _flip(path, start + (3 * 6 + 1) * 4)
    # inside the sourced (and overlaid: columns 2..5 zeroed in the stream) expert 1 up_proj
    path2, start2, _, _ = _locate(directory, "model.layers.0.mlp.experts.1.up_proj.weight")
    _flip(path2, start2 + (1 * 5 + 3) * 4 + 2)
    report = ck.verify_checkpoint(directory, chunk_bytes=16)
    assert sorted(n for n, _ in report.different) == ["model.layers.0.mlp.experts.1.up_proj.weight", "w"]
    assert len(report.ok) == 9


def _rewrite_record(directory, name, change):
    """Replace the fastinit record of tensor ``name`` in its file by change(record), keeping the
    file a valid safetensors file."""
    path, _, n, header = _locate(directory, name)
    raw = path.read_bytes()
    records = json.loads(header["__metadata__"]["fastinit.tensors"])
    records[name] = change(records[name])
    header["__metadata__"]["fastinit.tensors"] = json.dumps(records)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def _with(key, value):
    def change(record):
        record = dict(record)
        if value is KeyError:
            record.pop(key, None)
        else:
            record[key] = value
        return record

    return change


BAD_RECORDS = {
    "source null": _with("source", None),
    "source list": _with("source", [1, 2]),
    "source name": _with("source", {"name": 3, "shape": [3, 8, 5], "index": [1], "axes": [0, 1]}),
    "source shape": _with("source", {"name": "f", "shape": "3,8,5", "index": [1], "axes": [0, 1]}),
    "source index": _with("source", {"name": "f", "shape": [3, 8, 5], "index": [[1]], "axes": [0, 1]}),
    "source slice": _with(
        "source", {"name": "f", "shape": [3, 8, 5], "index": [1, {"start": 0.5}], "axes": [0, 1]}
    ),
    "source bounds": _with("source", {"name": "f", "shape": [3, 8, 5], "index": [7], "axes": [0, 1]}),
    "source axes": _with("source", {"name": "f", "shape": [3, 8, 5], "index": [1], "axes": [0, 5]}),
    "source shape mismatch": _with("source", {"name": "f", "shape": [3, 8, 5], "index": [1], "axes": [1, 0]}),
    "source deep": _with(
        "source", {"name": "f", "shape": [3, 8, 5], "index": [1, {"start": {"a": [1]}}], "axes": [0, 1]}
    ),
    "source huge int": _with("source", {"name": "f", "shape": [3, 2**70, 5], "index": [1], "axes": [0, 1]}),
    "writes dict": _with("writes", {"index": [0]}),
    "writes entry": _with("writes", ["zeros"]),
    "writes index": _with("writes", [{"index": 0, "init": {"scheme": "zeros"}}]),
    "writes init": _with("writes", [{"index": [0], "init": "zeros"}]),
    "writes scheme": _with("writes", [{"index": [0], "init": {"scheme": "nope"}}]),
    "writes bounds": _with("writes", [{"index": [0, 99], "init": {"scheme": "zeros"}}]),
    "writes params": _with("writes", [{"index": [0], "init": {"scheme": "constant", "value": "x"}}]),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_verify_bad_layout_record_is_a_one_line_error(layout_checkpoint, case):
    directory, _ = layout_checkpoint
    name = "model.layers.0.mlp.experts.1.up_proj.weight"
    _rewrite_record(directory, name, BAD_RECORDS[case])
    with pytest.raises(ck.CheckpointError) as info:
        ck.verify_checkpoint(directory)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_verify_cli_bad_layout_record_exits_2_without_traceback(layout_checkpoint):
    directory, _ = layout_checkpoint
    _rewrite_record(
        directory, "w", _with("writes", [{"index": [{"start": []}], "init": {"scheme": "zeros"}}])
    )
    result = subprocess.run([sys.executable, "-m", "fastinit", "verify", str(directory), "--no-progress"],
                            capture_output=True, text=True, timeout=120, cwd=os.getcwd())  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "'w'" in result.stderr


def test_verify_custom_overlay_not_registered_is_unverifiable(tmp_path):
    spec = TensorSpec("w", (4, 3), F32, NORMAL)
    ck.write_checkpoint(ck.Manifest([spec]), tmp_path, seed=0)
    custom = {"scheme": "custom", "function": "nowhere.module:f", "draw": "normal", "draw_params": {}}
    _rewrite_record(tmp_path, "w", _with("writes", [{"index": [0], "init": custom}]))
    report = ck.verify_checkpoint(tmp_path)
    assert report.unverifiable == [("w", "model.safetensors")] and not report.passed


# ---- distributed writers ---------------------------------------------------------------------------


def test_parts_and_dask_write_the_same_bytes(tmp_path):
    manifest = moe_manifest(transpose_down=True, writes=(((slice(None), slice(2, 6)), ZEROS),))
    manifest.tensors.append(overlay_spec())
    ck.write_checkpoint(manifest, tmp_path / "single", seed=3, max_shard_size="300B", chunk_bytes=24)
    for k in (1, 2, 3):
        ck.write_checkpoint(manifest, tmp_path / "parts", seed=3, max_shard_size="300B", part=(k, 3))
    assert digests(tmp_path / "parts") == digests(tmp_path / "single")
    pytest.importorskip("dask")
    import fastinit.dask as fd

    fd.write_checkpoint(manifest, tmp_path / "dask", seed=3, max_shard_size="300B", chunk_bytes=8)
    assert digests(tmp_path / "dask") == digests(tmp_path / "single")
    assert ck.verify_checkpoint(tmp_path / "dask").passed


def test_verify_refuses_a_whole_tensor_scheme_on_a_huge_virtual_tensor(tmp_path):
    """A tiny file must not make verify factor a huge matrix: work stays proportional to the files."""
    spec = TensorSpec("w", (4, 3), F32, fastinit.get_initializer("orthogonal"),
                      source=TensorSource("big", (8, 3), (slice(0, 4),)))  # fmt: skip
    ck.write_checkpoint(ck.Manifest([spec]), tmp_path, seed=0)
    assert ck.verify_checkpoint(tmp_path).passed
    huge = {"name": "big", "shape": [1 << 20, 1 << 20], "index": [{"start": 0, "stop": 4}, {"start": 0, "stop": 3}],
            "axes": [0, 1]}  # fmt: skip
    _rewrite_record(tmp_path, "w", _with("source", huge))
    with pytest.raises(ck.CheckpointError, match="'w'.*not plausible"):
        ck.verify_checkpoint(tmp_path)


@pytest.mark.slow  # CLI processes
def test_cli_writes_a_json_manifest_with_layouts_and_resumes(tmp_path):
    """The command line reads the layouts of a saved manifest and writes the library's bytes;
    --part and --resume work on them as on any checkpoint."""
    manifest = moe_manifest(transpose_down=True, writes=(((slice(None), slice(2, 6)), ZEROS),))
    manifest.tensors.append(overlay_spec())
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest_to_json(manifest)))
    ck.write_checkpoint(manifest, tmp_path / "lib", seed=4, max_shard_size="300B")
    base = [sys.executable, "-m", "fastinit", "checkpoint", "--manifest", str(path), "--seed", "4",
            "--max-shard-size", "300B", "--no-progress", "--out", str(tmp_path / "cli")]  # fmt: skip
    for argv in (base + ["--part", "1/2"], base + ["--part", "2/2"], base + ["--resume"]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    assert digests(tmp_path / "cli") == digests(tmp_path / "lib")


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                      st.text(max_size=6))  # fmt: skip
json_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip
index_json = st.lists(st.one_of(st.integers(-9, 9), st.fixed_dictionaries(
    {}, optional={"start": st.one_of(st.none(), st.integers(-9, 9)), "stop": st.one_of(st.none(), st.integers(-9, 9)),
                  "step": st.one_of(st.none(), st.integers(-3, 3))}), json_value), max_size=4)  # fmt: skip
source_json = st.one_of(json_value, st.fixed_dictionaries(
    {"name": st.one_of(st.just("fused"), json_value), "shape": st.one_of(st.lists(st.integers(0, 9), max_size=4),
                                                                          json_value)},
    optional={"index": st.one_of(index_json, json_value), "axes": st.one_of(st.permutations([0, 1]), json_value)}))  # fmt: skip
writes_json = st.one_of(json_value, st.lists(st.one_of(json_value, st.fixed_dictionaries(
    {"index": st.one_of(index_json, json_value),
     "init": st.one_of(st.sampled_from([{"scheme": "zeros"}, {"scheme": "normal", "std": 2.0}, {"scheme": "eye"},
                                        {"scheme": "values", "data": encode_values(np.arange(12.0))}]), json_value)})),
    max_size=3))  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_template(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzzlayout")
    spec = TensorSpec(
        "w", (4, 3), F32, NORMAL, writes=(((1,), ZEROS),), source=TensorSource("fused", (2, 4, 3), (1,))
    )
    ck.write_checkpoint(ck.Manifest([spec]), directory, seed=0)
    return (directory / "model.safetensors").read_bytes()


@pytest.mark.slow  # 200 fuzzed records
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.one_of(st.just(KeyError), source_json), writes=st.one_of(st.just(KeyError), writes_json))
def test_fuzz_layout_records(tmp_path_factory, fuzz_template, source, writes):
    """Any source / writes record: verify gives a report or a one-line CheckpointError, nothing else."""
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "model.safetensors").write_bytes(fuzz_template)
    _rewrite_record(directory, "w", lambda r: _with("writes", writes)(_with("source", source)(r)))
    try:
        report = ck.verify_checkpoint(directory)
    except ck.CheckpointError as error:
        assert "\n" not in str(error)
    else:
        assert len(report.ok) + len(report.different) == 1
