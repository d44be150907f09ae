"""The ``fastinit`` command line for checkpoints: ``checkpoint``, ``verify``, ``presets``.

What is checked, and against what:

- Real runs in a subprocess (``python -m fastinit`` and the ``fastinit`` console script): the
  files equal those of ``write_checkpoint`` with the same arguments, byte for byte; ``verify``
  exits 0 on them and 1, naming each changed tensor, after a byte is flipped.
- Every user error (malformed, unsupported or inconsistent config, bad manifest, bad size, bad
  seed or thread count, unknown preset, unwritable output, foreign or broken checkpoint for
  ``verify``) exits with status 2 and exactly one stderr line starting "fastinit: error:", with
  no traceback and no shard left behind. These run as real processes, all started at once.
- Options (``--dtype``, ``--max-shard-size``, ``--threads``, ``--resume``, ``--override``,
  ``--manifest``, ``--preset``) through ``fastinit.cli.main`` in this process; presets (GBs
  each) by the manifest the command would write, with the writer replaced.
- Size strings, and the progress display (bar on a terminal, one summary line with GB/s).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastinit
import fastinit.checkpoint as ck
from fastinit import cli
from fastinit._progress import Progress

LLAMA = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 96,
    "pad_token_id": 0,
}
SUMMARY = re.compile(r"^(writing|verifying) .+: \d+\.\d\d GB in \d+\.\d s \(\d+\.\d\d GB/s\)$")


def run(*args, cwd=None, timeout=120):
    """``python -m fastinit ARGS`` in a subprocess, with this checkout's fastinit importable."""
    env = dict(os.environ, PYTHONPATH=str(Path(fastinit.__file__).parents[1]))
    return subprocess.run([sys.executable, "-m", "fastinit", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)  # fmt: skip


def tensors_of(directory) -> dict[str, bytes]:
    """name -> raw bytes over every .safetensors file of a directory (struct + json parser)."""
    import struct

    out = {}
    for path in sorted(Path(directory).glob("*.safetensors")):
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        header.pop("__metadata__", None)
        for name, e in header.items():
            b, end = e["data_offsets"]
            out[name] = raw[8 + n + b : 8 + n + end]
    return out


def header_of(path):
    import struct

    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n])


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


# ---- real processes -------------------------------------------------------------------------------


@pytest.mark.slow
def test_checkpoint_then_verify_in_a_subprocess(tmp_path):
    """``python -m fastinit checkpoint`` writes what write_checkpoint writes; ``verify`` passes it,
    then names the tensors changed on disk with exit status 1."""
    config = write_json(tmp_path / "config.json", LLAMA)
    out = tmp_path / "out"
    r = run("checkpoint", "--config", config, "--out", out, "--seed", 3, "--max-shard-size", "20KB",
            "--threads", 1, "--dtype", "bfloat16")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert SUMMARY.match(r.stderr.strip().splitlines()[-1]), r.stderr
    m = ck.manifest_from_config(LLAMA, dtype="bfloat16")
    n_files = len(list(out.glob("*.safetensors")))
    assert n_files >= 2
    assert r.stdout.strip() == f"{len(m)} tensors, {m.numel:,} parameters in {n_files} file(s): {out}"
    ref = tmp_path / "ref"
    ck.write_checkpoint(m, ref, seed=3, max_shard_size="20KB")
    assert sorted(os.listdir(out)) == sorted(os.listdir(ref))
    for name in os.listdir(ref):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name

    r = run("verify", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{len(m)} tensors match, 0 differ"
    assert SUMMARY.match(r.stderr.strip().splitlines()[-1]), r.stderr

    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    for name in ("model.layers.1.self_attn.v_proj.weight", "lm_head.weight"):
        path = out / index[name]
        raw = bytearray(path.read_bytes())
        begin = header_of(path)[name]["data_offsets"][0]
        raw[8 + int.from_bytes(raw[:8], "little") + begin + 2] ^= 0x40
        path.write_bytes(bytes(raw))
    r = run("verify", out, "--no-progress")
    assert r.returncode == 1, r.stderr
    lines = r.stdout.strip().splitlines()
    assert sorted(lines[:-1]) == sorted(
        f"DIFFERS: {n} ({index[n]})" for n in ("model.layers.1.self_attn.v_proj.weight", "lm_head.weight"))  # fmt: skip
    assert lines[-1] == f"{len(m) - 2} tensors match, 2 differ"


def _console_script():
    found = shutil.which("fastinit")
    beside = Path(sys.executable).parent / "fastinit"
    return str(beside) if beside.exists() else found


@pytest.mark.skipif(_console_script() is None, reason="the fastinit console script is not installed")
def test_console_script_lists_presets():
    r = subprocess.run([_console_script(), "presets"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == sorted(ck.PRESETS)
    for line in lines:
        name, family, params = line.split()[:3]
        m = ck.manifest_from_config(ck.preset_config(name))
        assert family == ck.PRESETS[name]["model_type"]
        assert params == f"{m.numel / 1e9:.3f}"


def test_python_dash_m_help():
    r = run("--help")
    assert r.returncode == 0 and "checkpoint" in r.stdout and "verify" in r.stdout


# ---- errors: exit status 2, one line, no traceback ------------------------------------------------

# id -> (arguments, with {i} the shared inputs and {d} the case's own directory; a fragment the
# one-line message must contain)
ERRORS = {
    "config-not-json": (["checkpoint", "--config", "{i}/bad.json", "--out", "{d}/out"], "not valid JSON"),
    "config-missing": (["checkpoint", "--config", "{i}/nothere.json", "--out", "{d}/out"], "no such file"),
    "config-a-directory": (["checkpoint", "--config", "{i}", "--out", "{d}/out"], "config"),
    "config-a-list": (["checkpoint", "--config", "{i}/list.json", "--out", "{d}/out"], "JSON object"),
    "unknown-model_type": (["checkpoint", "--config", "{i}/unknown.json", "--out", "{d}/out"],
                           "Unrecognized model identifier: not-a-model"),
    "heads-do-not-divide-hidden": (["checkpoint", "--config", "{i}/heads5.json", "--out", "{d}/out"],
                                   "is not a multiple of the number of attention heads"),
    "float-vocab_size": (["checkpoint", "--config", "{i}/floatvocab.json", "--out", "{d}/out"],
                         "'vocab_size' expected int"),
    "unsupported-dtype": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--dtype", "int8"], "int8"),
    "bad-shard-size": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--max-shard-size", "5G"], "5G"),
    "zero-shard-size": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--max-shard-size", "0"], "positive"),
    "zero-threads": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--threads", "0"], "threads"),
    "negative-seed": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--seed", "-1"], "seed"),
    "unknown-preset": (["checkpoint", "--preset", "llama-8b", "--out", "{d}/out"], "unknown preset 'llama-8b'"),
    "override-unknown-scheme": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--override",
                                 "*.o_proj.weight=nosuch"], "unknown scheme 'nosuch'"),
    "override-without-equals": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--override",
                                 "zeros"], "PATTERN=SCHEME"),
    "override-bad-json": (["checkpoint", "--config", "{i}/llama.json", "--out", "{d}/out", "--override",
                           "lm_head.weight={scheme"], "not valid JSON"),
    "out-under-a-file": (["checkpoint", "--config", "{i}/llama.json", "--out", "{i}/llama.json/out"], "cannot create"),
    "manifest-duplicate-name": (["checkpoint", "--manifest", "{i}/dup.json", "--out", "{d}/out"], "appears twice"),
    "manifest-negative-std": (["checkpoint", "--manifest", "{i}/negstd.json", "--out", "{d}/out"], "std"),
    "verify-missing": (["verify", "{i}/nothere"], "no such file"),
    "verify-not-fastinit": (["verify", "{i}/foreign"], "not written by fastinit"),
    "verify-not-safetensors": (["verify", "{i}/llama.json"], "not a safetensors file"),
    "verify-missing-shard": (["verify", "{i}/broken"], "model-00002-of-"),
}  # fmt: skip


def _prepare(d: Path):
    write_json(d / "bad.json", '{"model_type": "llama",')
    write_json(d / "list.json", [LLAMA])
    write_json(d / "unknown.json", {**LLAMA, "model_type": "not-a-model"})
    write_json(d / "heads5.json", {**LLAMA, "num_attention_heads": 5})
    write_json(d / "floatvocab.json", {**LLAMA, "vocab_size": 96.0})
    write_json(d / "llama.json", LLAMA)
    t = {"name": "w", "shape": [4, 4], "init": {"scheme": "normal"}}
    write_json(d / "dup.json", [t, t])
    write_json(d / "negstd.json", [{**t, "init": {"scheme": "normal", "std": -1.0}}])
    import numpy as np
    import safetensors.numpy

    (d / "foreign").mkdir()
    safetensors.numpy.save_file({"w": np.zeros((2, 2), np.float32)}, d / "foreign" / "model.safetensors")
    ck.write_checkpoint(ck.manifest_from_config(LLAMA), d / "broken", max_shard_size="20KB")
    sorted((d / "broken").glob("model-00002-of-*.safetensors"))[0].unlink()


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory):
    """Every ERRORS case as a real process, all started at once: case -> (CompletedProcess-like
    (returncode, stdout, stderr), the case's directory)."""
    env = dict(os.environ, PYTHONPATH=str(Path(fastinit.__file__).parents[1]))
    inputs = tmp_path_factory.mktemp("inputs")
    _prepare(inputs)
    procs = {}
    try:
        for case, (args, _) in ERRORS.items():
            d = tmp_path_factory.mktemp(case)
            argv = [
                sys.executable,
                "-m",
                "fastinit",
                *(a.replace("{d}", str(d)).replace("{i}", str(inputs)) for a in args),
            ]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            procs[case] = (proc, d)
        results = {}
        for case, (proc, d) in procs.items():
            out, err = proc.communicate(timeout=300)
            results[case] = (proc.returncode, out, err, d)
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ERRORS))
def test_cli_error_is_one_line_with_status_2(error_runs, case):
    returncode, stdout, stderr, d = error_runs[case]
    assert "Traceback" not in stderr, stderr
    assert returncode == 2, stderr
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastinit: error: "), stderr
    assert ERRORS[case][1] in lines[0]
    assert list(d.rglob("*.safetensors*")) == []


def test_argparse_usage_errors_exit_2(capsys):
    for argv in (["checkpoint", "--out", "x"], ["checkpoint", "--preset", "gpt2", "--config", "c", "--out", "x"],
                 ["checkpoint", "--preset", "gpt2"], ["checkpoint", "--preset", "gpt2", "--out", "x", "--seed", "a"],
                 ["nosuchcommand"]):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        assert "usage: fastinit" in capsys.readouterr().err


# ---- options, in this process ----------------------------------------------------------------------


def main(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dtype_seed_threads_and_resume(tmp_path, capsys):
    config = write_json(tmp_path / "config.json", LLAMA)
    out = tmp_path / "out"
    args = [
        "checkpoint",
        "--config",
        config,
        "--out",
        out,
        "--seed",
        7,
        "--max-shard-size",
        "20KB",
        "--dtype",
        "bfloat16",
    ]
    code, stdout, stderr = main(args + ["--threads", 1], capsys)
    assert code == 0, stderr
    assert SUMMARY.match(stderr.strip()), stderr
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    files = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(files) >= 2 and files[0].startswith("model-00001-of-")
    for f in files:
        h = header_of(out / f)
        assert h["__metadata__"]["fastinit.seed"] == "7"
        assert {e["dtype"] for k, e in h.items() if k != "__metadata__"} == {"BF16"}
    ref = tmp_path / "ref"
    ck.write_checkpoint(ck.manifest_from_config(LLAMA, dtype="bfloat16"), ref, seed=7)
    assert tensors_of(out) == tensors_of(ref)

    (out / files[1]).unlink()
    code, stdout, _ = main(args + ["--resume"], capsys)
    assert code == 0 and f"{len(files) - 1} already complete" in stdout
    assert tensors_of(out) == tensors_of(ref)
    code, _, stderr = main(args + ["--seed", 8], capsys)  # last --seed wins: another checkpoint
    assert code == 2 and "--overwrite" in stderr
    code, stdout, _ = main(args + ["--seed", 8, "--overwrite"], capsys)
    assert code == 0 and "already complete" not in stdout
    assert tensors_of(out) != tensors_of(ref)


@pytest.mark.parametrize(
    "size, limit",
    [("100KB", 100_000), ("0.2MB", 200_000), ("64KiB", 65536), ("150000", 150_000), ("20MB", 20_000_000),
     ("5GB", 5 * 10**9)],
    ids=["100KB", "0.2MB", "64KiB", "bytes", "20MB", "5GB"],
)  # fmt: skip
def test_max_shard_size_strings(tmp_path, capsys, size, limit):
    config = {**LLAMA, "hidden_size": 64, "intermediate_size": 160, "vocab_size": 256}  # ~470 KB in float32
    m = ck.manifest_from_config(config)
    expected, current = [], 0  # greedy in manifest order, never split
    for t in m.tensors:
        if expected and current + t.nbytes > limit:
            expected.append([])
            current = 0
        if not expected:
            expected.append([])
        expected[-1].append(t.name)
        current += t.nbytes
    code, _, stderr = main(["checkpoint", "--config", write_json(tmp_path / "c.json", config), "--out",
                            tmp_path / "out", "--max-shard-size", size, "--no-progress"], capsys)  # fmt: skip
    assert code == 0, stderr
    shards = sorted((tmp_path / "out").glob("*.safetensors"))
    assert len(shards) == len(expected)
    for shard, names in zip(shards, expected, strict=True):
        h = header_of(shard)
        h.pop("__metadata__")
        assert sorted(h, key=lambda k: h[k]["data_offsets"][0]) == names
        data = max(e["data_offsets"][1] for e in h.values())
        assert data <= limit or len(names) == 1


@pytest.mark.parametrize(
    "text, value",
    [("100KB", 100_000), ("20MB", 20_000_000), ("5GB", 5_000_000_000), ("2TB", 2 * 10**12), ("1GiB", 2**30),
     ("4 MiB", 4 * 2**20), ("1kib", 1024), ("1.5GB", 1_500_000_000), ("12345", 12345), ("7B", 7), (4096, 4096)],
    ids=lambda v: str(v).replace(" ", "_"),
)  # fmt: skip
def test_parse_size(text, value):
    assert ck.parse_size(text) == value


@pytest.mark.parametrize("text", ["5G", "abc", "", "-1GB", "0", "0KB", "1e3", "GB", "5 XB", "1.2.3MB", None, True, -5],
                         ids=lambda v: repr(v))  # fmt: skip
def test_parse_size_rejects(text):
    with pytest.raises(ck.CheckpointError, match="max_shard_size") as e:
        ck.parse_size(text)
    assert "\n" not in str(e.value)


def test_manifest_and_overrides(tmp_path, capsys):
    spec = {"tensors": [{"name": "enc.o_proj.weight", "shape": [8, 8], "init": {"scheme": "normal"}},
                        {"name": "enc.ln.weight", "shape": [8], "init": {"scheme": "ones"}},
                        {"name": "head.weight", "shape": [5, 8], "init": {"scheme": "xavier_uniform"}}],
            "dtype": "float16", "config": {"model_type": "custom", "width": 8}}  # fmt: skip
    path = write_json(tmp_path / "spec.json", spec)
    code, stdout, stderr = main(["checkpoint", "--manifest", path, "--out", tmp_path / "out", "--seed", 5,
                                 "--override", "*.o_proj.weight=zeros",
                                 "--override", 'head.*={"scheme": "normal", "std": 0.5}'], capsys)  # fmt: skip
    assert code == 0, stderr
    assert stdout.strip().startswith("3 tensors, ")
    h = header_of(tmp_path / "out" / "model.safetensors")
    records = json.loads(h["__metadata__"]["fastinit.tensors"])
    assert records["enc.o_proj.weight"]["init"] == {"scheme": "zeros"}
    assert records["head.weight"]["init"] == {"scheme": "normal", "std": 0.5}
    assert records["enc.ln.weight"]["init"] == {"scheme": "ones"}
    assert {h[k]["dtype"] for k in records} == {"F16"}
    assert json.loads((tmp_path / "out" / "config.json").read_text()) == spec["config"]
    expected = ck.with_overrides(ck.manifest_from_json(spec), {"*.o_proj.weight": "zeros",
                                                                "head.*": {"scheme": "normal", "std": 0.5}})  # fmt: skip
    ck.write_checkpoint(expected, tmp_path / "ref", seed=5)
    assert tensors_of(tmp_path / "out") == tensors_of(tmp_path / "ref")
    assert ck.verify_checkpoint(tmp_path / "out").passed


@pytest.mark.parametrize("name", sorted(ck.PRESETS))
def test_preset_builds_the_preset_manifest(monkeypatch, capsys, tmp_path, name):
    """--preset NAME hands write_checkpoint the manifest of preset_config(NAME) (presets are GBs:
    the writer is replaced by a recorder), with --dtype, --override and the options passed on."""
    seen = {}

    def record(manifest, directory, **kwargs):
        seen.update(manifest=manifest, directory=directory, **kwargs)
        return ck.WriteResult(str(directory), ["model.safetensors"])

    monkeypatch.setattr(ck, "write_checkpoint", record)
    out = tmp_path / "out"
    code, _, stderr = main(["checkpoint", "--preset", name, "--out", out, "--seed", 9, "--max-shard-size", "2GB",
                            "--threads", 1, "--resume", "--fsync", "--dtype", "float16",
                            "--override", "lm_head.weight=zeros"], capsys)  # fmt: skip
    assert code == 0, stderr
    expected = ck.with_overrides(ck.manifest_from_config(ck.preset_config(name), dtype="float16"),
                                 {"lm_head.weight": "zeros"})  # fmt: skip
    got = seen["manifest"]
    assert [(t.name, t.shape, t.dtype.name, t.init, t.zero_rows) for t in got.tensors] == [
        (t.name, t.shape, t.dtype.name, t.init, t.zero_rows) for t in expected.tensors]  # fmt: skip
    assert got.config == expected.config and got.config["dtype"] == "float16"
    assert Path(seen["directory"]) == out
    assert (seen["seed"], seen["max_shard_size"], seen["threads"], seen["resume"], seen["fsync"]) == (
        9, "2GB", 1, True, True)  # fmt: skip
    assert not out.exists()


def test_one_real_tiny_write_per_family(tmp_path, capsys):
    """A real --config write for each family's tiny config, verified."""
    configs = {
        "llama": LLAMA,
        "mistral": {**LLAMA, "model_type": "mistral", "head_dim": 16},
        "qwen2": {**LLAMA, "model_type": "qwen2", "tie_word_embeddings": True},
        "gpt2": {
            "model_type": "gpt2",
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 16,
            "vocab_size": 96,
        },
    }
    for family, config in configs.items():
        out = tmp_path / family
        code, _, stderr = main(["checkpoint", "--config", write_json(tmp_path / f"{family}.json", config),
                                "--out", out, "--no-progress"], capsys)  # fmt: skip
        assert code == 0, stderr
        assert sorted(os.listdir(out)) == [
            ".model.safetensors.fastinit-xxh3",
            "config.json",
            "model.safetensors",
        ]
        assert ck.verify_checkpoint(out).passed
        code, stdout, _ = main(["verify", out, "--no-progress"], capsys)
        assert code == 0 and stdout.strip().endswith("0 differ")


def test_rewrite_with_another_shard_size_then_verify(tmp_path, capsys):
    """Sharded, then rewritten into one file in the same directory: another checkpoint, refused
    without --overwrite; with it only the new files remain (no stale index pointing at removed
    shards) and verify passes."""
    config = write_json(tmp_path / "c.json", LLAMA)
    out = tmp_path / "out"
    args = ["checkpoint", "--config", config, "--out", out]
    code, _, stderr = main([*args, "--max-shard-size", "20KB"], capsys)
    assert code == 0, stderr
    code, _, stderr = main([*args, "--max-shard-size", "5GB"], capsys)
    assert code == 2 and "--overwrite" in stderr
    code, _, stderr = main([*args, "--max-shard-size", "5GB", "--overwrite"], capsys)
    assert code == 0, stderr
    assert sorted(os.listdir(out)) == [".model.safetensors.fastinit-xxh3", "config.json", "model.safetensors"]
    code, stdout, stderr = main(["verify", out], capsys)
    assert code == 0 and stdout.strip().endswith(" 0 differ"), stderr


@pytest.mark.slow  # a manifest for every preset
def test_presets_command_lists_every_preset(capsys):
    code, stdout, _ = main(["presets"], capsys)
    assert code == 0
    rows = {line.split()[0]: line.split() for line in stdout.strip().splitlines()}
    assert set(rows) == set(ck.PRESETS)
    for name, row in rows.items():
        m = ck.manifest_from_config(ck.preset_config(name))
        assert row[1] == ck.PRESETS[name]["model_type"]
        assert float(row[2]) == pytest.approx(m.numel / 1e9, abs=6e-4)
        assert float(row[5]) == pytest.approx(m.nbytes / 1e9, abs=6e-3)


# ---- progress --------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal():
    stream = _Terminal()
    p = Progress(4_000_000_000, "writing x", stream=stream)
    assert p.enabled
    p(1_000_000_000)
    p(3_000_000_000)  # the last update always draws
    drawn = stream.getvalue()
    assert (
        drawn.startswith("\rwriting x [")
        and "100.0%" in drawn
        and "4.00/4.00 GB" in drawn
        and "GB/s" in drawn
    )
    summary = p.close()
    assert SUMMARY.match(summary) and summary.startswith("writing x: 4.00 GB in ")
    assert stream.getvalue().endswith(summary + "\n")


def test_progress_off_a_terminal_prints_only_the_summary():
    stream = io.StringIO()
    p = Progress(10, "verifying y", stream=stream)
    assert not p.enabled
    for _ in range(10):
        p(1)
    assert stream.getvalue() == ""
    summary = p.close()
    assert stream.getvalue() == summary + "\n" and SUMMARY.match(summary)


def test_no_progress_flag_draws_no_bar(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    config = write_json(tmp_path / "c.json", LLAMA)
    code, _, stderr = main(
        ["checkpoint", "--config", config, "--out", tmp_path / "a", "--no-progress"], capsys
    )
    assert code == 0 and "\r" not in stderr and SUMMARY.match(stderr.strip())
    code, _, stderr = main(["checkpoint", "--config", config, "--out", tmp_path / "b"], capsys)
    assert code == 0 and "\r" in stderr and SUMMARY.match(stderr.strip().split("\r")[-1])


def test_parts_on_the_command_line(tmp_path, capsys):
    config = write_json(tmp_path / "c.json", LLAMA)
    common = ["checkpoint", "--config", config, "--max-shard-size", "20KB", "--no-progress"]
    code, _, _ = main([*common, "--out", tmp_path / "whole"], capsys)
    assert code == 0
    for k in (1, 2, 3):
        code, out, _ = main([*common, "--out", tmp_path / "parts", "--part", f"{k}/3"], capsys)
        assert code == 0, out
    whole = {p.name: p.read_bytes() for p in (tmp_path / "whole").iterdir()}
    parts = {p.name: p.read_bytes() for p in (tmp_path / "parts").iterdir()}
    assert len(whole) > 4 and parts == whole
    code, _, err = main([*common, "--out", tmp_path / "x", "--part", "4/3"], capsys)
    assert code == 2 and "--part '4/3'" in err and "Traceback" not in err
