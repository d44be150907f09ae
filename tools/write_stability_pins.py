"""Write tests/data/stability.json: the exact output of every sampler on a fixed table of cases.

The pins say what "the same stream" means: tests/test_stability.py recomputes every entry and
compares. Run this only when the stream changes on purpose, and then

1. bump ``STREAM_VERSION`` in fastinit/rng/streams.py,
2. ``python tools/write_stability_pins.py``,
3. say what changed, and why, under a new version in CHANGELOG.md.

Without ``--write`` it prints the entries that differ from the file and exits 1 if any do.
(randomgen keeps its hashes the same way: a script writes them, the tests read them.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pathlib
import sys

import numpy as np

import fastinit

DATA = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "stability.json"
DTYPES = ("float32", "float64", "float16", "bfloat16")

# (sampler, positional params, keyword params, shape, seed, name, index, dtypes): every sampler,
# every dtype, default and non-default parameters, 3-d shapes, seeds above 2**63, both
# truncated-normal bound conventions, the far tails (log-space path) and offsets beyond 2**32.
CASES = [
    ("uniform", (0.0, 1.0), {}, (257, 129), 0, None, None, DTYPES),
    ("uniform", (-1.5, 2.25), {}, (257, 129), 1234, "stability.w", None, DTYPES),
    ("normal", (0.0, 1.0), {}, (257, 129), 0, None, None, DTYPES),
    ("normal", (0.5, 0.02), {}, (3, 77, 41), 2**63 + 5, "layer.0.weight", None, DTYPES),
    ("truncated_normal", (0.0, 1.0, -2.0, 2.0), {}, (257, 129), 0, None, None, DTYPES),
    ("truncated_normal", (0.0, 0.02, -0.04, 0.04), {}, (1000,), 7, "emb", None, DTYPES),
    ("truncated_normal", (0.0, 0.5), {"lower": -1.0, "upper": 3.0}, (100, 10), 8, "jax", None, DTYPES),
    ("truncated_normal", (0.0, 1.0, 12.0, 14.0), {}, (33, 31), 9, "tail.right", None, DTYPES),
    ("truncated_normal", (0.0, 1.0, -math.inf, -40.0), {}, (1023,), 10, "tail.left", None, DTYPES),
    ("uniform", (0.0, 1.0), {}, (2**40,), 11, "far", ((2**36, 2**36 + 1000, None),), ("float32", "float64")),
    ("normal", (0.0, 1.0), {}, (2**40,), 11, "far", ((2**36, 2**36 + 1000, None),), ("float32", "float64")),
]
KEYS = [(0, None, 0), (1, "layer.weight", 0), (2**64 - 1, "\u00e9", 0), (5, "w", 3)]
FIRST_VALUES = [(sampler, dtype) for sampler in ("uniform", "normal", "truncated_normal") for dtype in DTYPES]


def as_index(index):
    """The JSON form of an ``index=`` (a tuple of (start, stop, step) slices) as fastinit takes it."""
    return None if index is None else tuple(slice(*s) for s in index)


def stream_entries() -> list[dict]:
    out = []
    for sampler, params, kwargs, shape, seed, name, index, dtypes in CASES:
        for dtype in dtypes:
            x = getattr(fastinit, sampler)(
                shape, *params, **kwargs, seed=seed, name=name, dtype=dtype, index=as_index(index)
            )
            out.append({
                "sampler": sampler, "params": list(params), "kwargs": kwargs, "dtype": dtype,
                "shape": list(shape), "seed": seed, "name": name,
                "index": None if index is None else [list(s) for s in index],
                "sha256": hashlib.sha256(x.tobytes()).hexdigest(),
            })  # fmt: skip
    return out


def key_entries() -> list[dict]:
    return [
        {
            "seed": seed,
            "name": name,
            "substream": sub,
            "words": list(fastinit.derive_key(seed, name, substream=sub)),
        }
        for seed, name, sub in KEYS
    ]


def first_value_entries() -> list[dict]:
    """The first four stored values (default parameters, seed 0, no name) as bit patterns:
    readable pins that say which value moved when a hash fails."""
    out = []
    for sampler, dtype in FIRST_VALUES:
        raw = getattr(fastinit, sampler)(8, dtype=dtype).raw
        bits = raw.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[raw.itemsize])[:4]
        out.append(
            {
                "sampler": sampler,
                "dtype": dtype,
                "bits": [f"{int(b):#0{2 + 2 * raw.itemsize}x}" for b in bits],
            }
        )
    return out


def pins() -> dict:
    return {
        "written_by": "tools/write_stability_pins.py",
        "stream_version": fastinit.STREAM_VERSION,
        "streams": stream_entries(),
        "keys": key_entries(),
        "first_values": first_value_entries(),
    }


def to_json(data: dict) -> str:
    """One entry per line, so that a diff of the file names the entries that moved."""
    lines = ["{"]
    for i, (key, value) in enumerate(data.items()):
        end = "," if i < len(data) - 1 else ""
        if isinstance(value, list):
            rows = ",\n".join(f"  {json.dumps(entry)}" for entry in value)
            lines.append(f"{json.dumps(key)}: [\n{rows}\n ]{end}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}{end}")
    return "\n ".join(lines[:-1] + [lines[-1]]) + "\n}\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {DATA.relative_to(DATA.parents[2])}")
    args = parser.parse_args(argv)
    new = pins()
    text = to_json(new)
    if args.write:
        DATA.write_text(text)
        print(f"wrote {DATA} (stream version {new['stream_version']}, {len(new['streams'])} streams)")
        return 0
    old = json.loads(DATA.read_text()) if DATA.exists() else {}
    differ = [
        f"{section}[{i}]: {entry}"
        for section in ("streams", "keys", "first_values")
        for i, entry in enumerate(new[section])
        if i >= len(old.get(section, [])) or old[section][i] != entry
    ]
    if old.get("stream_version") != new["stream_version"]:
        differ.insert(0, f"stream_version: {old.get('stream_version')} -> {new['stream_version']}")
    print("\n".join(differ) if differ else f"{DATA.name} matches this build")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
