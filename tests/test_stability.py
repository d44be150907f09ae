"""Stream stability: the exact bytes every sampler produces, pinned in tests/data/stability.json.

A change of any pinned value is a BREAKING CHANGE: every user's initialization changes. If it
is intended (a new layout, converter, transform or key derivation), bump
``fastinit.STREAM_VERSION`` (rng/streams.py), run ``python tools/write_stability_pins.py
--write``, and say so in CHANGELOG.md. If it is not intended, the change is a bug. The data is
written by that script from its table of cases, never by hand (habit from randomgen's
``_write_hashes.py``).
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pytest

import fastinit

ROOT = pathlib.Path(__file__).resolve().parents[1]
PINS = json.loads((ROOT / "tests" / "data" / "stability.json").read_text())


def test_stream_version_matches_the_pinned_values():
    assert fastinit.STREAM_VERSION == PINS["stream_version"], (
        "STREAM_VERSION changed: run tools/write_stability_pins.py --write for the new stream"
    )


def test_pins_are_the_writers_cases(load_script):
    """The data holds exactly the cases the script lists (nobody edited one side alone)."""
    writer = load_script("tools/write_stability_pins.py")
    cases = [
        (sampler, list(params), kwargs, dtype, list(shape), seed, name, None if index is None else [list(i) for i in index])
        for sampler, params, kwargs, shape, seed, name, index, dtypes in writer.CASES
        for dtype in dtypes
    ]  # fmt: skip
    pinned = [(e["sampler"], e["params"], e["kwargs"], e["dtype"], e["shape"], e["seed"], e["name"], e["index"])
              for e in PINS["streams"]]  # fmt: skip
    assert pinned == cases
    assert [(e["seed"], e["name"], e["substream"]) for e in PINS["keys"]] == list(writer.KEYS)
    assert [(e["sampler"], e["dtype"]) for e in PINS["first_values"]] == list(writer.FIRST_VALUES)


def test_table_covers_every_sampler_dtype_and_path():
    covered = {(e["sampler"], e["dtype"]) for e in PINS["streams"]}
    for sampler in ("uniform", "normal", "truncated_normal"):
        for dtype in ("float32", "float64", "float16", "bfloat16"):
            assert (sampler, dtype) in covered
    tails = [e for e in PINS["streams"] if e["sampler"] == "truncated_normal" and len(e["params"]) == 4
             and max(abs(e["params"][2]), abs(e["params"][3])) > 11]  # fmt: skip
    assert tails  # the log-space tail path is pinned too
    assert any(e["index"] and e["index"][0][0] >= 2**32 for e in PINS["streams"])  # counters past 2**32


@pytest.mark.parametrize(
    "entry", PINS["streams"], ids=[f"{e['sampler']}-{e['dtype']}-{i}" for i, e in enumerate(PINS["streams"])]
)
def test_stream_hash(entry):
    index = None if entry["index"] is None else tuple(slice(*s) for s in entry["index"])
    x = getattr(fastinit, entry["sampler"])(
        tuple(entry["shape"]), *entry["params"], **entry["kwargs"],
        seed=entry["seed"], name=entry["name"], dtype=entry["dtype"], index=index,
    )  # fmt: skip
    assert hashlib.sha256(x.tobytes()).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("entry", PINS["keys"], ids=lambda e: f"{e['seed']}-{e['name']}-{e['substream']}")
def test_derive_key_pinned(entry):
    assert (
        list(fastinit.derive_key(entry["seed"], entry["name"], substream=entry["substream"]))
        == entry["words"]
    )


@pytest.mark.parametrize("entry", PINS["first_values"], ids=lambda e: f"{e['sampler']}-{e['dtype']}")
def test_first_values_pinned(entry):
    raw = getattr(fastinit, entry["sampler"])(8, dtype=entry["dtype"]).raw
    as_int = raw.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[raw.itemsize])
    assert [int(b) for b in as_int[:4]] == [int(b, 16) for b in entry["bits"]]


def test_first_philox_blocks_of_the_default_stream_pinned():
    # blocks 0 and 1 of the (seed 0, name None) stream: counter (b, 0, counter2, counter3)
    key = fastinit.derive_key(0, None)
    counters = np.array([[b, 0, key.counter2, key.counter3] for b in range(2)], np.uint32)
    words = fastinit.philox4x32(counters, np.array([key.key0, key.key1], np.uint32))
    assert words.tolist() == [
        [0xF61E222A, 0x87A54825, 0x5F83DCFB, 0x5D9B3FAA],
        [0x1B0476B3, 0x721485EA, 0xAEDDD142, 0xE65A5AC0],
    ]
    # elements 0 and 1 of uniform float32 are word 0 of blocks 0 and 1, top 24 bits
    first = fastinit.uniform(2, seed=0).raw
    assert first.tolist() == [(0xF61E222A >> 8) * 2.0**-24, (0x1B0476B3 >> 8) * 2.0**-24]
