"""verify, inspect, manifests and configs read untrusted files (issue #14, items 12-19).

Files are data only: nothing read from a checkpoint, index, manifest or config imports or runs
code; only regular files inside the checkpoint directory are opened; claimed sizes are checked
against the file before any work; every malformed input is a one-line error with exit status 2
(never 1, which means "a tensor differs"); a custom scheme that is not registered in the running
process is reported with exit status 3. The fuzzers at the end check these invariants on
generated files, bounded in time.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import signal
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastinit
import fastinit.checkpoint as ck
from fastinit import cli
from fastinit.rng.streams import STREAM_VERSION

# the custom scheme's module, which holds the functions a config may name
custom_module = sys.modules["fastinit.schemes.custom_scheme"]

PACKAGE = Path(fastinit.__file__).parent


class Hang(Exception):
    pass


def run_cli(argv, timeout: float = 60.0) -> tuple[int, str, str]:
    """``fastinit.cli.main(argv)`` in-process with stdout / stderr captured; a hang (an open of a
    FIFO never returns) is interrupted by an alarm and fails the test."""
    out, err = io.StringIO(), io.StringIO()

    def alarm(signum, frame):
        raise Hang(f"fastinit {' '.join(map(str, argv))} hangs")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([str(a) for a in argv])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, stderr, expected_code=2):
    assert code == expected_code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastinit: error: "), stderr
    assert "Traceback" not in stderr


def safetensors_bytes(header, data: bytes = b"", *, length=None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def fastinit_metadata(records: dict, seed="0") -> dict:
    return {"fastinit.seed": seed, "fastinit.stream_version": str(STREAM_VERSION),
            "fastinit.tensors": json.dumps(records)}  # fmt: skip


def one_tensor_file(path: Path, *, shape=(4, 2), init=None, offsets=None, seed="0", data=None, extra=None):
    """A one-tensor float32 file whose header says what the arguments say."""
    n = math.prod(shape) * 4 if all(isinstance(d, int) for d in shape) else 32
    data = b"\0" * max(n, 0) if data is None else data
    record = {"init": init or {"scheme": "zeros"}, **(extra or {})}
    header = {"__metadata__": fastinit_metadata({"w": record}, seed),
              "w": {"dtype": "F32", "shape": list(shape), "data_offsets": offsets or [0, len(data)]}}  # fmt: skip
    path.write_bytes(safetensors_bytes(header, data))
    return path


def small_manifest(n=6, rows=16, cols=8):
    return ck.manifest_from_json([{"name": f"layer{i}.weight", "shape": [rows, cols],
                                   "init": {"scheme": "normal", "std": 0.02}} for i in range(n)])  # fmt: skip


@pytest.fixture
def sharded(tmp_path):
    """A three-shard checkpoint (2 tensors per shard) and its index as a dict."""
    d = tmp_path / "ckpt"
    ck.write_checkpoint(small_manifest(), d, seed=1, max_shard_size=1100)
    index = json.loads((d / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 3
    return d, index


def rewrite_index(d: Path, index) -> None:
    (d / "model.safetensors.index.json").write_text(json.dumps(index))


# ==== 12: code named in a file is never imported ======================================================

PROBE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def f(w):
    return w
"""


def probe_module(tmp_path, monkeypatch, name):
    """A module on sys.path whose import leaves a marker file."""
    marker = tmp_path / f"{name}.imported"
    (tmp_path / f"{name}.py").write_text(PROBE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def test_from_config_never_imports_the_module_a_config_names(tmp_path, monkeypatch):
    marker = probe_module(tmp_path, monkeypatch, "fi_probe_from_config")
    config = {"scheme": "custom", "function": "fi_probe_from_config:f", "draw": "uniform", "draw_params": {}}
    init = fastinit.Initializer.from_config(config)
    assert not marker.exists() and "fi_probe_from_config" not in sys.modules
    assert init.to_config() == config  # still recorded by name
    with pytest.raises(ValueError, match="not registered"):
        init((4,), seed=0, name="w")
    assert not marker.exists()


# configs whose construction makes transformers look a repository up on the Hub: a backbone
# named by checkpoint (upernet, dpt, detr, ...), and a sub-config naming one
HUB_CONFIGS = [
    {"model_type": "upernet", "backbone": "attacker/evil-repo", "use_timm_backbone": False},
    {"model_type": "dpt", "backbone": "attacker/evil-repo", "use_timm_backbone": False},
]


@pytest.mark.parametrize("config", HUB_CONFIGS, ids=lambda c: c["model_type"])
def test_a_config_never_reaches_the_network(tmp_path, monkeypatch, config):
    """A config file may name a Hub repository; reading it (checkpoint --config, inspect next to
    a config.json) must not contact the Hub: not even a name lookup."""
    pytest.importorskip("transformers")
    import socket

    import fastinit.transformers as ft

    looked_up = []

    def no_network(host, *args, **kwargs):
        looked_up.append(host)
        raise OSError(f"network use in a test: {host}")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    (tmp_path / "config.json").write_text(json.dumps(config))
    for read in (lambda: ft.load_config(dict(config)), lambda: ft.manifest_from_config(str(tmp_path))):
        try:
            read()
        except (ValueError, TypeError, ck.CheckpointError) as error:
            assert "\n" not in str(error)
    assert looked_up == []


def test_inspect_and_checkpoint_of_a_manifest_import_nothing(tmp_path, monkeypatch):
    marker = probe_module(tmp_path, monkeypatch, "fi_probe_manifest")
    spec = {"tensors": [{"name": "w", "shape": [4, 4], "init": {"scheme": "custom", "function": "this:s",
                                                                   "draw": "uniform"}},
                        {"name": "v", "shape": [4], "init": {"scheme": "custom", "function": "fi_probe_manifest:f",
                                                             "draw": "normal"}}]}  # fmt: skip
    path = tmp_path / "m.json"
    path.write_text(json.dumps(spec))
    code, stdout, stderr = run_cli(["inspect", path])
    assert code == 0, stderr
    assert "Beautiful is better than ugly" not in stdout + stderr
    assert not marker.exists() and "fi_probe_manifest" not in sys.modules
    assert stdout.count("custom scheme: no prediction") >= 1 or "custom" in stdout
    code, _, stderr = run_cli(["checkpoint", "--manifest", path, "--out", tmp_path / "out", "--no-progress"])
    assert_one_line_error(code, stderr)
    assert "not registered" in stderr
    assert not marker.exists() and "fi_probe_manifest" not in sys.modules


CUSTOM_MODULE = """
import fastinit

@fastinit.custom(draw="uniform", low=-1.0, high=1.0)
def halved(w):
    return w * 0.5

def doubled(w):
    return w * 2.0
"""


def test_verify_custom_registered_unregistered_and_allowed(tmp_path, monkeypatch):
    import importlib

    (tmp_path / "fi_probe_custom_ok.py").write_text(CUSTOM_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("fi_probe_custom_ok")
    manifest = ck.manifest_from_json([
        {"name": "a", "shape": [8, 4], "init": module.halved.to_config()},
        {"name": "b", "shape": [8, 4], "init": {"scheme": "normal"}},
        {"name": "c", "shape": [8, 4], "init": fastinit.custom(module.doubled, draw="normal").to_config()},
    ])  # fmt: skip
    d = tmp_path / "ckpt"
    ck.write_checkpoint(manifest, d, seed=4)
    assert run_cli(["verify", d, "--no-progress"])[0] == 0  # registered in this process

    # a fresh process: nothing registered, the module not imported
    monkeypatch.setattr(custom_module, "REGISTERED", {})
    monkeypatch.delitem(sys.modules, "fi_probe_custom_ok")
    code, stdout, stderr = run_cli(["verify", d, "--no-progress"])
    assert code == 3, stdout + stderr
    assert "custom, cannot regenerate: a" in stdout and "custom, cannot regenerate: c" in stdout
    assert "1 tensors match" in stdout
    assert "fi_probe_custom_ok" not in sys.modules

    code, stdout, stderr = run_cli(["verify", d, "--no-progress", "--allow-import", "fi_probe_custom_ok"])
    assert code == 0, stdout + stderr
    assert "3 tensors match" in stdout

    # a flipped byte still gives 1, whatever else cannot be regenerated
    monkeypatch.setattr(custom_module, "REGISTERED", {})
    raw = bytearray((d / "model.safetensors").read_bytes())
    raw[-129] ^= 0x40  # the last byte of b, a normal tensor (a, b, c: 128 bytes each)
    (d / "model.safetensors").write_bytes(bytes(raw))
    assert run_cli(["verify", d, "--no-progress"])[0] == 1


def test_allow_import_of_a_missing_module_is_a_usage_error(tmp_path):
    d = tmp_path / "ckpt"
    ck.write_checkpoint(small_manifest(n=1), d)
    code, _, stderr = run_cli(["verify", d, "--allow-import", "fi_no_such_module_anywhere"])
    assert_one_line_error(code, stderr)


def test_register_custom_makes_a_name_resolvable():
    def plain(w):
        return w + 1.0

    plain.__qualname__ = "plain_registered_fn"  # a module-level name, as if defined there
    path = fastinit.register_custom(plain)
    assert path == f"{__name__}:plain_registered_fn"
    init = fastinit.Initializer.from_config({"scheme": "custom", "function": path, "draw": "uniform"})
    assert init.params["function"] is plain
    x = np.asarray(init((5,), seed=0, name="w"))
    assert np.all((x >= 1.0) & (x <= 2.0))
    with pytest.raises(TypeError, match="function"):
        fastinit.register_custom("os:system")


def test_no_code_loading_reachable_from_file_content():
    """The only dynamic import left is the one the --allow-import flag asks for, in custom.py."""
    pattern = re.compile(r"\bimport_module\b|__import__|\beval\(|\bexec\(|\bpickle\b|\bmarshal\b")
    hits = []
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(PACKAGE)}:{number}")
    # --allow-import; bench's peers and the package's lazy public names, both from fixed tables
    allowed = {"schemes/custom.py", "benchmark.py", "__init__.py"}
    assert {h.split(":")[0] for h in hits} <= allowed, hits
    assert sum(h.startswith("schemes/custom.py") for h in hits) == 1, hits
    registry = (PACKAGE / "schemes" / "registry.py").read_text()
    assert "importlib" not in registry


# ==== 13: only regular files inside the directory are opened ==========================================

SECRET = b"SECRETS!" + b"x" * 56


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.safetensors", "sub/../../outside.safetensors",
                                    "sub/model.safetensors", "", ".", "model.safetensors.index.json"])  # fmt: skip
def test_index_paths_outside_the_directory_are_refused(sharded, target):
    d, index = sharded
    (d.parent / "outside.safetensors").write_bytes(SECRET)
    (d / "sub").mkdir()
    name = next(iter(index["weight_map"]))
    index["weight_map"][name] = target
    rewrite_index(d, index)
    for command in ("verify", "inspect"):
        code, stdout, stderr = run_cli([command, d])
        assert_one_line_error(code, stderr)
        assert str(struct.unpack("<Q", SECRET[:8])[0]) not in stderr + stdout
        assert "SECRET" not in stderr + stdout


@pytest.mark.parametrize("content", [SECRET, safetensors_bytes({"w": {"dtype": "SECRETS!", "shape": [1],
                                                                      "data_offsets": [0, 4]}}, b"\0" * 4),
                                     safetensors_bytes({"__metadata__": fastinit_metadata({}, seed="SECRETS!"),
                                                        "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                                                       b"\0" * 4)])  # fmt: skip
def test_errors_never_echo_file_content(tmp_path, content):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "model.safetensors").write_bytes(content)
    for command in ("verify", "inspect"):
        code, stdout, stderr = run_cli([command, d])
        if command == "verify" or b"F32" not in content:  # (inspect reads a file with no records)
            assert_one_line_error(code, stderr)
        assert str(struct.unpack("<Q", content[:8])[0]) not in stderr + stdout
        assert "SECRET" not in stderr + stdout


def test_symlinks_leading_out_fifos_and_devices_are_refused(tmp_path):
    d = tmp_path / "ckpt"
    ck.write_checkpoint(small_manifest(n=1), d)
    (tmp_path / "elsewhere.safetensors").write_bytes((d / "model.safetensors").read_bytes())
    os.unlink(d / "model.safetensors")
    os.symlink(tmp_path / "elsewhere.safetensors", d / "model.safetensors")
    for command in ("verify", "inspect"):
        assert_one_line_error(*run_cli([command, d])[::2])

    os.unlink(d / "model.safetensors")
    os.mkfifo(d / "model.safetensors")
    for command in ("verify", "inspect"):
        code, _, stderr = run_cli([command, d], timeout=20)
        assert_one_line_error(code, stderr)
        assert "regular file" in stderr
    fifo = tmp_path / "lone.safetensors"
    os.mkfifo(fifo)
    json_fifo = tmp_path / "m.json"
    os.mkfifo(json_fifo)
    for argv in (["verify", fifo], ["inspect", fifo], ["inspect", json_fifo],
                 ["checkpoint", "--manifest", json_fifo, "--out", tmp_path / "o"]):  # fmt: skip
        code, _, stderr = run_cli(argv, timeout=20)
        assert_one_line_error(code, stderr)

    os.unlink(d / "model.safetensors")
    os.symlink("/dev/zero", d / "model.safetensors")
    for command in ("verify", "inspect"):
        assert_one_line_error(*run_cli([command, d], timeout=20)[::2])


def test_an_index_that_is_a_link_leading_out_is_refused(sharded):
    d, _ = sharded
    os.rename(d / "model.safetensors.index.json", d.parent / "index.json")
    os.symlink(d.parent / "index.json", d / "model.safetensors.index.json")
    for command in ("verify", "inspect"):
        code, _, stderr = run_cli([command, d])
        assert_one_line_error(code, stderr)
        assert "leading out" in stderr


def test_a_symlink_inside_the_directory_is_followed(tmp_path):
    d = tmp_path / "ckpt"
    ck.write_checkpoint(small_manifest(n=1), d)
    os.rename(d / "model.safetensors", d / "real.bin")
    os.symlink("real.bin", d / "model.safetensors")
    assert run_cli(["verify", d])[0] == 0


# ==== 14: completeness and consistency before values =================================================


def test_negative_dims_whose_product_is_positive(tmp_path):
    path = one_tensor_file(tmp_path / "neg.safetensors", shape=(-2, -4), data=b"\0" * 32, offsets=[0, 32])
    for command in ("verify", "inspect"):
        code, _, stderr = run_cli([command, path])
        assert_one_line_error(code, stderr)
        assert "shape" in stderr


def test_index_omits_a_shard(sharded):
    d, index = sharded
    shard = sorted(set(index["weight_map"].values()))[1]
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != shard}
    rewrite_index(d, index)
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    assert shard in stderr


def test_index_maps_a_tensor_to_the_wrong_shard(sharded):
    d, index = sharded
    names = sorted(index["weight_map"])
    a, b = names[0], names[-1]
    index["weight_map"][a], index["weight_map"][b] = index["weight_map"][b], index["weight_map"][a]
    rewrite_index(d, index)
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)


def test_index_names_a_tensor_no_shard_holds(sharded):
    d, index = sharded
    index["weight_map"]["ghost.weight"] = next(iter(index["weight_map"].values()))
    rewrite_index(d, index)
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    assert "ghost.weight" in stderr


@pytest.mark.parametrize("weight_map", [{}, [], "model.safetensors", None, {"a": 3}])
def test_empty_or_malformed_weight_map(sharded, weight_map):
    d, index = sharded
    index["weight_map"] = weight_map
    rewrite_index(d, index)
    for command in ("verify", "inspect"):
        assert_one_line_error(*run_cli([command, d])[::2])


def test_deleted_index_with_or_without_a_deleted_shard(sharded):
    d, index = sharded
    os.unlink(d / "model.safetensors.index.json")
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    os.unlink(d / sorted(set(index["weight_map"].values()))[1])
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)


def test_a_shard_the_index_does_not_list(sharded):
    d, index = sharded
    shutil.copy(d / "model-00001-of-00003.safetensors", d / "model.safetensors")
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    assert "model.safetensors" in stderr


def test_shards_written_with_different_seeds(tmp_path, sharded):
    d, _ = sharded
    other = tmp_path / "other"
    ck.write_checkpoint(small_manifest(), other, seed=2, max_shard_size=1100)
    shutil.copy(other / "model-00002-of-00003.safetensors", d / "model-00002-of-00003.safetensors")
    assert ck.verify_checkpoint(other).passed  # each shard alone is consistent
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    assert "seed" in stderr


def test_shards_of_another_config_with_the_same_seed(tmp_path, sharded):
    """Same seed, same names and shapes, another initializer (another config's
    initializer_range): each shard verifies alone, the mix is refused."""
    d, _ = sharded
    other = tmp_path / "other"
    spec = [
        {"name": f"layer{i}.weight", "shape": [16, 8], "init": {"scheme": "normal", "std": 0.05}}
        for i in range(6)
    ]
    ck.write_checkpoint(ck.manifest_from_json(spec), other, seed=1, max_shard_size=1100)
    shutil.copy(other / "model-00002-of-00003.safetensors", d / "model-00002-of-00003.safetensors")
    assert ck.verify_checkpoint(other).passed
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    assert "different checkpoints" in stderr


def edit_header(path: Path, edit) -> None:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    path.write_bytes(safetensors_bytes(header, raw[8 + n :]))


def test_a_shard_with_another_stream_version(sharded):
    d, _ = sharded
    edit_header(d / "model-00002-of-00003.safetensors",
                lambda h: h["__metadata__"].update({"fastinit.stream_version": "999"}))  # fmt: skip
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    assert "stream version" in stderr and "999" not in stderr


def test_a_tensor_in_two_shards(tmp_path):
    d = tmp_path / "ckpt"
    ck.write_checkpoint(small_manifest(n=2), d, seed=1, max_shard_size=600)
    index = json.loads((d / "model.safetensors.index.json").read_text())

    def rename(h):
        h["layer0.weight"] = h.pop("layer1.weight")
        records = json.loads(h["__metadata__"]["fastinit.tensors"])
        records["layer0.weight"] = records.pop("layer1.weight")
        h["__metadata__"]["fastinit.tensors"] = json.dumps(records)

    edit_header(d / index["weight_map"]["layer1.weight"], rename)
    code, _, stderr = run_cli(["verify", d])
    assert_one_line_error(code, stderr)
    assert "layer0.weight" in stderr


def test_a_good_sharded_checkpoint_still_verifies(sharded):
    d, _ = sharded
    code, stdout, _ = run_cli(["verify", d])
    assert code == 0 and "6 tensors match, 0 differ" in stdout


# ==== 15: claimed sizes against the file, before any work ==============================================


def test_a_small_file_claiming_a_huge_orthogonal_tensor_is_refused_at_once(tmp_path):
    path = one_tensor_file(tmp_path / "big.safetensors", shape=(20000, 20000), init={"scheme": "orthogonal"},
                           data=b"\0" * 4000, offsets=[0, 20000 * 20000 * 4])  # fmt: skip
    t0 = time.perf_counter()
    for command in ("verify", "inspect"):
        code, _, stderr = run_cli([command, path], timeout=30)
        assert_one_line_error(code, stderr)
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize(
    ("shape", "offsets", "data_len"),
    [
        ((4, 2), [0, 64], 32),  # past the end of the file
        ((4, 2), [0, 16], 32),  # fewer bytes than dtype x shape
        ((4, 2), [-32, 0], 32),  # negative
        ((4, 2), [8, 40], 40),  # a gap before the tensor
        ((4, 2), [0, 32], 48),  # trailing bytes
        ((4, 2), [32, 0], 32),  # reversed
        ((4, 2), [0.0, 32.0], 32),  # floats
        ((4, 2), [0, 32, 64], 32),  # three numbers
        ((4, 2), [0, 2**70], 32),
    ],
)
def test_offsets_inconsistent_with_the_file(tmp_path, shape, offsets, data_len):
    path = one_tensor_file(tmp_path / "x.safetensors", shape=shape, offsets=offsets, data=b"\0" * data_len)
    for command in ("verify", "inspect"):
        assert_one_line_error(*run_cli([command, path])[::2])


def test_overlapping_tensors(tmp_path):
    header = {"__metadata__": fastinit_metadata({"a": {"init": {"scheme": "zeros"}},
                                                 "b": {"init": {"scheme": "zeros"}}}),
              "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}  # fmt: skip
    path = tmp_path / "o.safetensors"
    path.write_bytes(safetensors_bytes(header, b"\0" * 24))
    for command in ("verify", "inspect"):
        assert_one_line_error(*run_cli([command, path])[::2])


@pytest.mark.parametrize("length", [0, 7, 2**63, 10**6])
def test_header_length_not_sane(tmp_path, length):
    path = tmp_path / "h.safetensors"
    path.write_bytes(safetensors_bytes(b'{"__metadata__": {}}    ', length=length))
    for command in ("verify", "inspect"):
        assert_one_line_error(*run_cli([command, path])[::2])


# ==== 16: malformed content: one line, exit 2 ==========================================================

DEEP = "[" * 100_000 + "]" * 100_000


def _malformed_files(tmp_path: Path) -> dict[str, Path]:
    files = {}

    def add(key, **kw):
        files[key] = one_tensor_file(tmp_path / f"{key}.safetensors", **kw)

    add("string_shape", shape=("4", 2))
    add("float_shape", shape=(4.0, 2))
    add("seed_negative", seed="-1")
    add("seed_huge", seed=str(2**64))
    add("seed_float", seed="1e30")
    add("bad_std", init={"scheme": "normal", "std": -1.0})
    add("unknown_param", init={"scheme": "normal", "stdev": 1.0})
    add("unknown_scheme", init={"scheme": "no_such_scheme"})
    add("dirac_groups_0", shape=(4, 2, 3), init={"scheme": "dirac", "groups": 0})
    add("sparse_inf", init={"scheme": "sparse", "sparsity": math.inf})
    add("sparse_nan", init={"scheme": "sparse", "sparsity": "NaN"})
    add("zero_rows_str", extra={"zero_rows": "x"})
    add("zero_rows_out", extra={"zero_rows": [100]})
    add("zero_rows_bool", extra={"zero_rows": [True]})
    add("init_list", init=["normal"])
    # whole headers
    for key, header in {
        "header_list": [1, 2],
        "entry_list": {"w": [1, 2]},
        "metadata_list": {"__metadata__": [1], "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
        "records_list": {"__metadata__": {"fastinit.seed": "0", "fastinit.tensors": "[]"},
                         "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
        "records_deep": {"__metadata__": {"fastinit.seed": "0", "fastinit.tensors": DEEP},
                         "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
        "dtype_int": {"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}},
        "shape_dict": {"w": {"dtype": "F32", "shape": {"a": 1}, "data_offsets": [0, 4]}},
    }.items():  # fmt: skip
        path = tmp_path / f"{key}.safetensors"
        path.write_bytes(safetensors_bytes(header, b"\0" * 4))
        files[key] = path
    files["header_deep"] = tmp_path / "header_deep.safetensors"
    files["header_deep"].write_bytes(safetensors_bytes(DEEP.encode(), b""))
    files["not_utf8"] = tmp_path / "not_utf8.safetensors"
    files["not_utf8"].write_bytes(safetensors_bytes(b"\xff\xfe" * 8, b""))
    return files


MALFORMED = ["string_shape", "float_shape", "seed_negative", "seed_huge", "seed_float", "bad_std", "unknown_param",
             "unknown_scheme", "dirac_groups_0", "sparse_inf", "sparse_nan", "zero_rows_str", "zero_rows_out",
             "zero_rows_bool", "init_list", "header_list", "entry_list", "metadata_list", "records_list",
             "records_deep", "dtype_int", "shape_dict", "header_deep", "not_utf8"]  # fmt: skip
# content inspect reports per tensor instead (it reads values without regenerating them)
INSPECT_READS = {"seed_negative", "seed_huge", "seed_float", "bad_std", "unknown_param", "unknown_scheme",
                 "dirac_groups_0", "sparse_inf", "sparse_nan", "zero_rows_str", "zero_rows_out", "zero_rows_bool",
                 "init_list", "records_list", "records_deep"}  # fmt: skip


@pytest.fixture(scope="module")
def malformed(tmp_path_factory):
    return _malformed_files(tmp_path_factory.mktemp("malformed"))


@pytest.mark.parametrize("key", MALFORMED)
def test_malformed_file_is_a_one_line_error(malformed, key):
    code, _, stderr = run_cli(["verify", malformed[key]])
    assert_one_line_error(code, stderr)
    code, _, stderr = run_cli(["inspect", malformed[key]])
    if key in INSPECT_READS:
        assert code in (0, 1) and "Traceback" not in stderr, stderr
    else:
        assert_one_line_error(code, stderr)


@pytest.mark.parametrize(
    "index",
    [DEEP, "[]", '{"weight_map": []}', '{"weight_map": {"w": ["a"]}}', "\xff", '{"weight_map": {"w": null}}'],
    ids=lambda v: v[:30],
)
def test_malformed_index(sharded, index):
    d, _ = sharded
    (d / "model.safetensors.index.json").write_text(index, errors="surrogateescape")
    for command in ("verify", "inspect"):
        assert_one_line_error(*run_cli([command, d])[::2])


@pytest.mark.parametrize(
    "manifest",
    [
        DEEP,
        '{"tensors": ' + DEEP + "}",
        [{"name": "w", "shape": [4, 4], "init": {"scheme": "dirac", "groups": 0}}],
        [{"name": "w", "shape": [4, 4], "init": {"scheme": "sparse", "sparsity": 1e400}}],
        [{"name": "w", "shape": [4, 4], "init": {"scheme": "normal"}, "zero_rows": [True]}],
        [{"name": "w", "shape": [4, 4], "init": {"scheme": "normal"}, "zero_rows": {"a": 1}}],
        [{"name": "w", "shape": "4", "init": {"scheme": "normal"}}],
        [{"name": "w", "shape": [4, 4], "init": {"scheme": "normal", "std": "x"}}],
        {"tensors": {"w": 1}},
        [{"name": "w", "shape": [4, 4], "dtype": None, "init": {"scheme": "normal"}}],
        {"dtype": None, "tensors": [{"name": "w", "shape": [4, 4], "init": {"scheme": "normal"}}]},
        [{"name": "w", "shape": [2**40, 2**40], "init": {"scheme": "normal"}}],
        {"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 10**7,
         "num_attention_heads": 2, "vocab_size": 10},
        {"model_type": "gpt2", "n_embd": 2**31, "n_layer": 2, "n_positions": 8, "vocab_size": 2**31},
    ],
    ids=lambda v: (v if isinstance(v, str) else json.dumps(v))[:40],
)  # fmt: skip
def test_malformed_manifest_or_config(tmp_path, manifest):
    path = tmp_path / "m.json"
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    option = "--config" if isinstance(manifest, dict) and "model_type" in manifest else "--manifest"
    t0 = time.perf_counter()
    code, _, stderr = run_cli(["checkpoint", option, path, "--out", tmp_path / "out", "--no-progress"])
    assert_one_line_error(code, stderr)
    assert not (tmp_path / "out" / "model.safetensors").exists()
    code, _, stderr = run_cli(["inspect", path])
    assert_one_line_error(code, stderr)
    assert time.perf_counter() - t0 < 20


# ==== 17 / 18: sizes up front, dtype null ================================================================


def test_config_with_ten_million_layers_is_refused_up_front():
    config = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 10**7,
              "num_attention_heads": 2, "vocab_size": 10}  # fmt: skip
    t0 = time.perf_counter()
    with pytest.raises(ck.CheckpointError, match="num_hidden_layers"):
        ck.manifest_from_config(config)
    assert time.perf_counter() - t0 < 1.0


def test_manifest_with_too_many_tensors_is_refused_up_front():
    item = {"name": "w", "shape": [1], "init": {"scheme": "zeros"}}
    t0 = time.perf_counter()
    with pytest.raises(ck.CheckpointError, match="tensors"):
        ck.manifest_from_json([item] * (ck.manifest.MAX_TENSORS + 1))
    assert time.perf_counter() - t0 < 1.0


def test_manifest_dtype_null_is_refused():
    for spec in ([{"name": "w", "shape": [2], "dtype": None, "init": {"scheme": "zeros"}}],
                 {"dtype": None, "tensors": [{"name": "w", "shape": [2], "init": {"scheme": "zeros"}}]}):  # fmt: skip
        with pytest.raises(ck.CheckpointError, match="dtype"):
            ck.manifest_from_json(spec)


def test_config_dtype_null_takes_torch_dtype():
    config = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
              "num_attention_heads": 2, "vocab_size": 10, "dtype": None, "torch_dtype": "bfloat16"}  # fmt: skip
    assert ck.manifest_from_config(config).tensors[0].dtype.name == "bfloat16"
    config["dtype"] = "float16"
    assert ck.manifest_from_config(config).tensors[0].dtype.name == "float16"


# ==== 19: fuzzers ========================================================================================

CANARY = "CANARY-7f3a"
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# (the canary goes only where nothing is meant to be shown: data, notes, the seed)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                      st.text(max_size=8))  # fmt: skip


def json_containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)


json_value = st.recursive(json_leaf, json_containers, max_leaves=12)
small_int = st.one_of(st.integers(-3, 40), st.sampled_from([2**31, 2**63, 2**64, -(2**63)]))
entry = st.fixed_dictionaries({
    "dtype": st.one_of(st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3"]), json_value),
    "shape": st.one_of(st.lists(small_int, max_size=3), json_value),
    "data_offsets": st.one_of(st.lists(small_int, min_size=2, max_size=2), json_value),
})  # fmt: skip
init_config = st.one_of(
    st.fixed_dictionaries({"scheme": st.sampled_from(sorted(fastinit.list_initializers()))},
                          optional={"std": json_leaf, "gain": json_leaf, "groups": json_leaf,
                                    "sparsity": json_leaf, "function": st.sampled_from(["os:system", "this:s"]),
                                    "draw": st.sampled_from(["uniform", "normal"])}),
    json_value,
)  # fmt: skip


def _check_run(code, stdout, stderr):
    assert code in (0, 1, 2, 3), (code, stderr)
    assert "Traceback" not in stderr
    if code == 2:
        assert_one_line_error(code, stderr)
    assert CANARY not in stdout + stderr


@contextlib.contextmanager
def opens_recorded():
    """Every path the Python code opens (os.open and io.open), to check none lies outside."""
    opened, real_os_open, real_open = [], os.open, io.open

    def os_open(path, *args, **kwargs):
        opened.append(os.fspath(path) if not isinstance(path, int) else path)
        return real_os_open(path, *args, **kwargs)

    def open_(path, *args, **kwargs):
        opened.append(os.fspath(path) if not isinstance(path, int) else path)
        return real_open(path, *args, **kwargs)

    import builtins

    saved = builtins.open
    os.open, builtins.open = os_open, open_
    try:
        yield opened
    finally:
        os.open, builtins.open = real_os_open, saved


@FUZZ
@given(
    entries=st.dictionaries(st.sampled_from(["w", "b", "c"]), entry, max_size=3),
    records=st.one_of(st.dictionaries(st.sampled_from(["w", "b"]), st.fixed_dictionaries(
        {"init": init_config}, optional={"zero_rows": json_value})), json_value),
    seed=st.one_of(st.sampled_from(["0", "-1", str(2**64), "1e3", "", CANARY]), json_value),
    data_len=st.integers(0, 96),
    length_delta=st.sampled_from([0, 0, 0, 1, -1, 1 << 40]),
)  # fmt: skip
def test_fuzz_safetensors_headers(tmp_path_factory, entries, records, seed, data_len, length_delta):
    d = tmp_path_factory.mktemp("fuzzhdr")
    header = {"__metadata__": {"fastinit.seed": seed, "fastinit.stream_version": str(STREAM_VERSION),
                               "fastinit.tensors": json.dumps(records), "note": CANARY}, **entries}  # fmt: skip
    text = json.dumps(header).encode()
    data = (CANARY.encode() * 16)[:data_len]
    (d / "model.safetensors").write_bytes(
        safetensors_bytes(text, data, length=max(0, len(text) + length_delta))
    )
    for argv in (["verify", d, "--no-progress"], ["inspect", d / "model.safetensors"]):
        code, stdout, stderr = run_cli(argv, timeout=60)
        _check_run(code, stdout, stderr)


@FUZZ
@given(
    weight_map=st.one_of(
        st.dictionaries(st.sampled_from([f"layer{i}.weight" for i in range(6)] + ["ghost"]),
                        st.sampled_from(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                         "model-00003-of-00003.safetensors", "../outside.safetensors",
                                         "/etc/passwd", "link.safetensors", "fifo.safetensors", "sub",
                                         "model.safetensors", "missing.safetensors", ""]), max_size=8),
        json_value),
    drop=st.sets(st.sampled_from(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"]),
                 max_size=2),
)  # fmt: skip
def test_fuzz_index_files(tmp_path_factory, weight_map, drop):
    root = tmp_path_factory.mktemp("fuzzidx")
    d = root / "ckpt"
    shutil.copytree(_fuzz_base(), d)
    (root / "outside.safetensors").write_bytes(safetensors_bytes({"__metadata__": {"x": CANARY}}))
    os.symlink(root / "outside.safetensors", d / "link.safetensors")
    os.mkfifo(d / "fifo.safetensors")
    (d / "sub").mkdir()
    for name in drop:
        os.unlink(d / name)
    rewrite_index(d, {"metadata": {"note": CANARY}, "weight_map": weight_map})
    for command in ("verify", "inspect"):
        with opens_recorded() as opened:
            code, stdout, stderr = run_cli([command, d], timeout=60)
        _check_run(code, stdout, stderr)
        assert code != 0 or (weight_map == json.loads((_fuzz_base() / "model.safetensors.index.json").read_text())
                             ["weight_map"] and not drop), (weight_map, drop)  # fmt: skip
        assert all(isinstance(p, int) or "outside" not in str(p) and "passwd" not in str(p) for p in opened)


_BASE: list[Path] = []


def _fuzz_base() -> Path:
    if not _BASE:
        import tempfile

        base = Path(tempfile.mkdtemp(prefix="fastinit-fuzz-base-"))
        ck.write_checkpoint(small_manifest(), base, seed=1, max_shard_size=1100)
        _BASE.append(base)
    return _BASE[0]


@FUZZ
@given(
    tensors=st.one_of(
        st.lists(st.fixed_dictionaries({"name": st.one_of(st.sampled_from(["a", "b", "c"]), json_leaf),
                                        "shape": st.one_of(st.lists(st.integers(-2, 6), max_size=3), json_value),
                                        "init": init_config},
                                       optional={"dtype": st.one_of(st.sampled_from(["float32", "bfloat16"]),
                                                                    json_leaf),
                                                 "zero_rows": json_value}), max_size=3),
        json_value),
)  # fmt: skip
def test_fuzz_manifests(tmp_path_factory, tensors):
    d = tmp_path_factory.mktemp("fuzzman")
    (d / "m.json").write_text(json.dumps({"tensors": tensors, "note": CANARY}))
    code, stdout, stderr = run_cli(
        ["checkpoint", "--manifest", d / "m.json", "--out", d / "out", "--no-progress"]
    )
    _check_run(code, stdout, stderr)
    assert code in (0, 2)
    code, stdout, stderr = run_cli(["inspect", d / "m.json"])
    _check_run(code, stdout, stderr)
    assert code in (0, 2)


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=4),
       truncate=st.one_of(st.none(), st.integers(0, 600)))  # fmt: skip
def test_fuzz_mutated_valid_file(tmp_path_factory, cuts, truncate):
    """A real fastinit file with bytes of its header overwritten, or cut short."""
    d = tmp_path_factory.mktemp("fuzzmut")
    raw = bytearray((_fuzz_base() / "model-00001-of-00003.safetensors").read_bytes())
    for at, value in cuts:
        raw[at % len(raw)] = value
    (d / "x.safetensors").write_bytes(bytes(raw if truncate is None else raw[:truncate]))
    for command in ("verify", "inspect"):
        _check_run(*run_cli([command, d / "x.safetensors"], timeout=60))


# ==== round 2, 6-8: what the CLI prints is one line, escaped and bounded; no traceback ================

SPOOF = "x\n\x1b[2K\rverifying OK: 5 tensors match, 0 differ"


def assert_printable_lines(text, max_len=400):
    """No control character a terminal acts on, no line longer than ``max_len``."""
    assert "\x1b" not in text and "\r" not in text, ascii(text)
    assert all(line.isprintable() and len(line) <= max_len for line in text.splitlines()), ascii(text)[:2000]


@pytest.mark.parametrize("init", [{"scheme": "variance_scaling", "mode": SPOOF},
                                  {"scheme": "variance_scaling", "distribution": SPOOF},
                                  {"scheme": "kaiming_normal", "nonlinearity": SPOOF},
                                  {"scheme": "kaiming_uniform", "mode": SPOOF},
                                  {"scheme": "x" * 3000},
                                  {"scheme": "normal", "p" * 3000: 1.0}])  # fmt: skip
def test_verify_errors_with_file_strings_are_one_escaped_bounded_line(tmp_path, init):
    path = one_tensor_file(tmp_path / "f.safetensors", init=init)
    code, stdout, stderr = run_cli(["verify", path, "--no-progress"])
    assert_one_line_error(code, stderr)
    assert_printable_lines(stdout + stderr)
    assert "verifying OK" not in stderr.splitlines()[0][:40]


def test_a_long_zero_rows_entry_is_printed_bounded(tmp_path):
    path = one_tensor_file(tmp_path / "f.safetensors", extra={"zero_rows": ["r" * 3000]})
    code, stdout, stderr = run_cli(["verify", path, "--no-progress"])
    assert_one_line_error(code, stderr)
    assert_printable_lines(stdout + stderr)


def test_printable_escapes_and_bounds():
    from fastinit.terminal import printable

    assert printable("plain name") == "plain name"
    assert printable("a\nb\x1b[2K\r\ud800") == "a\\nb\\x1b[2K\\r\\ud800"
    long = printable("h" * 1000 + "TAIL", limit=100)
    assert len(long) == 100 and long.startswith("hhh") and long.endswith("TAIL") and "..." in long
    assert printable("é" * 50) == "é" * 50  # (printable non-ASCII text stays as it is)


def names_file(path: Path, names) -> Path:
    header = {
        n: {"dtype": "F32", "shape": [2], "data_offsets": [8 * i, 8 * i + 8]} for i, n in enumerate(names)
    }
    path.write_bytes(safetensors_bytes(header, b"\0" * 8 * len(names)))
    return path


def test_inspect_table_escapes_and_shortens_tensor_names(tmp_path):
    names = ["\x1b[31mRED\x1b[0m\nFAKE LINE\r", "n" * 200_000]
    path = names_file(tmp_path / "f.safetensors", names)
    out = tmp_path / "out.json"
    code, stdout, stderr = run_cli(["inspect", path, "--json", out])
    assert code in (0, 1), stderr
    assert_printable_lines(stdout + stderr, max_len=2000)
    assert not any(line.startswith("FAKE LINE") for line in stdout.splitlines())
    assert sorted(t["name"] for t in json.loads(out.read_text())["tensors"]) == sorted(names)  # (JSON: whole)


def test_inspect_table_escapes_a_custom_function_string(tmp_path):
    init = {"scheme": "custom", "function": "m:" + "\x1b[2K\rFAKE" + "f" * 5000}
    path = one_tensor_file(tmp_path / "f.safetensors", init=init)
    code, stdout, stderr = run_cli(["inspect", path])
    assert code in (0, 1, 2), stderr
    assert "Traceback" not in stderr
    assert_printable_lines(stdout + stderr, max_len=2000)


def test_verify_differs_lines_are_escaped_and_bounded(tmp_path):
    name = "\x1b[2K" + "n" * 5000
    header = {"__metadata__": fastinit_metadata({name: {"init": {"scheme": "zeros"}}}),
              name: {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}  # fmt: skip
    path = tmp_path / "f.safetensors"
    path.write_bytes(safetensors_bytes(header, b"\1" * 8))
    code, stdout, stderr = run_cli(["verify", path, "--no-progress"])
    assert code == 1, stderr
    assert "DIFFERS" in stdout
    assert_printable_lines(stdout + stderr)


@pytest.mark.parametrize("extra", [["--seed", "-1"], ["--width", "99999999999"], ["--depth", "99999999999"],
                                   ["--batch", "99999999999"]])  # fmt: skip
def test_propagate_bad_numbers_are_one_line_errors(extra):
    code, _, stderr = run_cli(
        ["inspect", "--propagate", "--schemes", "zeros", "--nonlinearity", "relu", *extra]
    )
    assert_one_line_error(code, stderr)
    assert extra[0] in stderr


def test_inspect_json_into_a_directory_is_a_usage_error(tmp_path):
    d = tmp_path / "c1"
    ck.write_checkpoint(small_manifest(n=1), d)
    code, _, stderr = run_cli(["inspect", d, "--json", d])
    assert_one_line_error(code, stderr)
    assert "--json" in stderr


def test_inspect_plot_into_a_missing_parent_is_refused(tmp_path):
    d = tmp_path / "c1"
    ck.write_checkpoint(small_manifest(n=1), d)
    target = tmp_path / "nonexistent" / "d" / "x.png"
    code, _, stderr = run_cli(["inspect", d, "--plot", target])
    assert_one_line_error(code, stderr)
    assert not (tmp_path / "nonexistent").exists()


def test_allow_import_of_a_module_that_raises_is_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "fi_badmod_raises.py").write_text("raise RuntimeError('broken\\nmodule')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    d = tmp_path / "ckpt"
    ck.write_checkpoint(small_manifest(n=1), d)
    code, _, stderr = run_cli(["verify", d, "--allow-import", "fi_badmod_raises"])
    assert_one_line_error(code, stderr)
    assert "fi_badmod_raises" in stderr
    sys.modules.pop("fi_badmod_raises", None)
