"""Stream derivation: (seed, name, substream) -> Philox key and counter stream words.

The key must be a stable function of its arguments (never Python's salted ``hash()``), differ
whenever an argument differs, and be the only thing besides the element index that a
sampler's values depend on.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import fastinit
from fastinit import StreamKey, derive_key

REPO = pathlib.Path(__file__).resolve().parents[1]
NAMES = [
    None,
    "",
    "w",
    "b",
    "layer.weight",
    "layer.bias",
    "layer.weight ",
    "Layer.weight",
    "é",
    "\x00",
    "a" * 1000,
]


def _documented_key(seed, name, substream=0):
    """The derivation as rng/streams.py's docstring states it, written out again."""
    message = seed.to_bytes(8, "little") + substream.to_bytes(4, "little")
    message += b"\x00" if name is None else b"\x01" + name.encode("utf-8")
    digest = hashlib.blake2b(message, digest_size=16, person=b"fastinit/stream1").digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def test_stream_version_is_int():
    assert type(fastinit.STREAM_VERSION) is int
    assert fastinit.STREAM_VERSION >= 1


@pytest.mark.parametrize("seed", [0, 1, 2**32, 2**64 - 1])
@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_returns_four_uint32_words(seed, name):
    key = derive_key(seed, name)
    assert isinstance(key, StreamKey)
    assert len(key) == 4
    assert all(type(w) is int and 0 <= w < 2**32 for w in key)
    arr = key.as_array()
    assert arr.dtype == np.uint64 and arr.tolist() == list(key)
    assert key == derive_key(seed, name)  # deterministic
    assert tuple(key) == _documented_key(seed, name)


@pytest.mark.parametrize("substream", [0, 1, 7, 2**32 - 1])
def test_matches_documented_derivation_with_substream(substream):
    assert tuple(derive_key(5, "w", substream=substream)) == _documented_key(5, "w", substream)


def test_all_different():
    keys = {}
    for seed in (0, 1, 2, 2**32, 2**63, 2**64 - 1):
        for name in NAMES:
            for substream in (0, 1, 2**31):
                keys[(seed, name, substream)] = derive_key(seed, name, substream=substream)
    assert len(set(keys.values())) == len(keys)
    # and no two share their key words or their counter words alone either
    assert len({k[:2] for k in keys.values()}) == len(keys)
    assert len({k[2:] for k in keys.values()}) == len(keys)


def test_none_differs_from_empty_name():
    assert derive_key(0, None) != derive_key(0, "")
    assert derive_key(0) == derive_key(0, None) == derive_key(seed=0, name=None, substream=0)


def test_numpy_integer_seed_is_the_int():
    assert derive_key(np.uint64(2**64 - 1), "w") == derive_key(2**64 - 1, "w")
    assert derive_key(np.int32(3), "w") == derive_key(3, "w")


_CHILD = """
import json, fastinit
cases = json.loads({cases!r})
keys = [list(fastinit.derive_key(s, n, substream=k)) for s, n, k in cases]
print(json.dumps({{"hash": hash("layer.weight"), "keys": keys}}))
"""


def test_same_in_subprocesses_with_other_hash_seeds():
    cases = [[0, None, 0], [1, "layer.weight", 0], [2**64 - 1, "\u00e9", 3], [7, "", 0]]
    results = []
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD.format(cases=json.dumps(cases))],
            env=env, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        results.append(json.loads(proc.stdout))
    # the two children really salt str hashes differently ...
    assert results[0]["hash"] != results[1]["hash"]
    # ... and still derive the same keys as each other and as this process
    expected = [list(derive_key(s, n, substream=k)) for s, n, k in cases]
    assert results[0]["keys"] == results[1]["keys"] == expected


@pytest.mark.parametrize(
    ("seed", "error"),
    [
        (-1, ValueError),
        (2**64, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ("0", TypeError),
        (None, TypeError),
        (np.float64(1.0), TypeError),
    ],
    ids=repr,
)
def test_bad_seed(seed, error):
    with pytest.raises(error, match="seed"):
        derive_key(seed, "w")


@pytest.mark.parametrize("name", [b"x", 3, 1.0, ("a",)], ids=repr)
def test_bad_name(name):
    with pytest.raises(TypeError, match="name"):
        derive_key(0, name)


@pytest.mark.parametrize("substream", [-1, 2**32, True, 1.0, "1"], ids=repr)
def test_bad_substream(substream):
    with pytest.raises((TypeError, ValueError), match="substream"):
        derive_key(0, "w", substream=substream)


# ---- samplers depend on (seed, name) only -----------------------------------------------------

SAMPLERS = {
    "uniform": lambda shape, **kw: fastinit.uniform(shape, -1.0, 2.0, **kw),
    "normal": lambda shape, **kw: fastinit.normal(shape, 0.5, 2.0, **kw),
    "truncated_normal": lambda shape, **kw: fastinit.truncated_normal(shape, 0.0, 1.0, -1.5, 2.5, **kw),
}
DTYPES = ["float32", "float64", "float16", "bfloat16"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sampler_same_args_same_bytes(sampler, dtype):
    f = SAMPLERS[sampler]
    a = f((37, 11), seed=3, name="layer.weight", dtype=dtype)
    fastinit.uniform((1000,), seed=3, name="layer.weight")  # another draw in between
    fastinit.normal((999,), seed=4, name="other")
    b = f((37, 11), seed=3, name="layer.weight", dtype=dtype)
    assert a.tobytes() == b.tobytes()
    assert a.raw is not b.raw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sampler_values_differ_with_name_and_seed(sampler, dtype):
    f = SAMPLERS[sampler]
    base = f(4096, seed=3, name="layer.weight", dtype=dtype).raw
    for kw in ({"seed": 3, "name": "layer.bias"}, {"seed": 4, "name": "layer.weight"},
               {"seed": 3, "name": None}, {"seed": 3, "name": ""}):  # fmt: skip
        other = f(4096, dtype=dtype, **kw).raw
        # independent streams: essentially no element agrees (ties happen only by rounding
        # into the same 16-bit value, a few percent at most)
        assert np.mean(base == other) < 0.05, kw


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sampler_values_depend_only_on_flat_index(sampler):
    # the shape enters only through the flat index: a prefix of a longer tensor is the same
    f = SAMPLERS[sampler]
    long = f(1000, seed=9, name="x").raw
    np.testing.assert_array_equal(f((10, 7), seed=9, name="x").raw.ravel(), long[:70])
    np.testing.assert_array_equal(f((2, 5, 3), seed=9, name="x").raw.ravel(), long[:30])
    np.testing.assert_array_equal(f(333, seed=9, name="x").raw, long[:333])


def test_sampler_seed_types_agree():
    a = fastinit.normal(100, seed=2**63, name="w").tobytes()
    assert a == fastinit.normal(100, seed=np.uint64(2**63), name="w").tobytes()
    assert a != fastinit.normal(100, seed=2**63 + 1, name="w").tobytes()
