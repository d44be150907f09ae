"""The checkpoint writer against hostile conditions: one directory, one owner, one checkpoint.

What is checked, and against what:

- Ownership: a second writer into a directory that a live run holds is refused with one line;
  a lock left by a dead process on this host is taken over; parts K/N of one checkpoint run at
  the same time into one directory, and the index appears only once every shard is in place.
- One checkpoint per directory: files of another checkpoint (other seed, config, dtype, shard
  size) or weight files fastinit did not write are refused unless ``overwrite``, which removes
  them first; a run killed after that never leaves a loadable mixed checkpoint.
- Integrity: every shard's XXH3-128 digest, recorded as it is written, equals xxhash's over the file;
  ``resume`` rewrites a shard whose bytes changed.
- No symlink in the directory is ever followed; Ctrl-C leaves no temporary file and exits 130.
- A kill/race harness: writers in subprocesses killed with SIGKILL/SIGINT at random points
  (fixed seed), concurrent parts and plain writers, then the invariants: every final file equals
  a clean single run's, the index names exactly the shards present, ``--resume`` ends
  byte-identical, a second concurrent writer is refused.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import xxhash

import fastinit
import fastinit.checkpoint as ck
from fastinit import cli
from fastinit.checkpoint import dirlock, writer
from fastinit.checkpoint.safetensors_format import read_header

INDEX = "model.safetensors.index.json"


def small_manifest(n=4, rows=32, cols=32, dtype="float32", config=None):
    """n normal tensors of (rows, cols): 4 KiB each in float32."""
    tensors = [
        {"name": f"layer{i}.weight", "shape": [rows, cols], "init": {"scheme": "normal", "std": 0.02}}
        for i in range(n)
    ]
    return ck.manifest_from_json({"tensors": tensors, "dtype": dtype, "config": config})


def shard_names(n):
    return [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]


def visible(directory) -> list[str]:
    return sorted(e for e in os.listdir(directory) if not e.startswith("."))


def hidden(directory) -> list[str]:
    return sorted(e for e in os.listdir(directory) if e.startswith("."))


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, f"error message is not one line: {text!r}"
    return text


def files_of(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(directory).iterdir()}


def during_shard(monkeypatch, tensor: str, action):
    """Run ``action()`` once, when the writer generates the second chunk of ``tensor``."""
    real, done = writer.generate_chunk, []

    def hooked(spec, seed, r0, r1, buf):
        if spec.name == tensor and r0 and not done:
            done.append(True)
            action()
        return real(spec, seed, r0, r1, buf)

    monkeypatch.setattr(writer, "generate_chunk", hooked)
    return done


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- item 7: one owner -------------------------------------------------------------------------


def test_second_writer_into_a_directory_being_written_is_refused(tmp_path, monkeypatch):
    m = small_manifest(n=4, config={"model_type": "x"})
    errors = []

    def second():
        with pytest.raises(ck.CheckpointError) as e:
            ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")
        errors.append(one_line(e.value))

    done = during_shard(monkeypatch, "layer2.weight", second)
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", chunk_bytes=1024)
    assert done and "another fastinit run" in errors[0] and str(os.getpid()) in errors[0]
    monkeypatch.undo()
    assert ck.verify_checkpoint(tmp_path).passed
    assert not [e for e in hidden(tmp_path) if "lock" in e or "partial" in e]


def test_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    lock = {"host": dirlock.host_name(), "pid": dead_pid(), "start": None, "token": "0" * 16,
            "fingerprint": "x", "part": [1, 1]}  # fmt: skip
    (tmp_path / ".fastinit-lock-1-of-1").write_text(json.dumps(lock))
    (tmp_path / f".model.safetensors.{'0' * 16}.fastinit-partial").write_bytes(b"junk")
    ck.write_checkpoint(small_manifest(n=1), tmp_path)
    assert visible(tmp_path) == ["model.safetensors"]
    assert hidden(tmp_path) == [".model.safetensors.fastinit-xxh3"]


@pytest.mark.parametrize("where", ["other-host", "live-pid", "unreadable"])
def test_lock_that_may_be_live_is_not_taken_over(tmp_path, where):
    lock = {"host": dirlock.host_name(), "pid": os.getpid(), "start": None, "token": "1" * 16,
            "fingerprint": "x", "part": [1, 1]}  # fmt: skip
    if where == "other-host":
        lock.update(host="some-other-machine", pid=dead_pid())
    path = tmp_path / ".fastinit-lock-1-of-1"
    path.write_text("{not json" if where == "unreadable" else json.dumps(lock))
    with pytest.raises(ck.CheckpointError, match="another fastinit run") as e:
        ck.write_checkpoint(small_manifest(n=1), tmp_path)
    assert ".fastinit-lock-1-of-1" in one_line(e.value)
    assert visible(tmp_path) == [] and path.exists()


# ---- item 8: parts at the same time ------------------------------------------------------------


def test_parts_run_at_the_same_time_into_one_directory(tmp_path, monkeypatch):
    m = small_manifest(n=6, config={"model_type": "x"})
    whole = tmp_path / "whole"
    ck.write_checkpoint(m, whole, seed=3, max_shard_size="8KiB")
    out = tmp_path / "parts"
    results = []

    def other_parts():  # while part 1 is in the middle of a shard
        for k in (2, 3):
            results.append(ck.write_checkpoint(m, out, seed=3, max_shard_size="8KiB", part=(k, 3)))
        assert INDEX not in os.listdir(out) and "config.json" not in os.listdir(out)

    done = during_shard(monkeypatch, "layer0.weight", other_parts)
    first = ck.write_checkpoint(m, out, seed=3, max_shard_size="8KiB", part=(1, 3), chunk_bytes=1024)
    assert done and [r.complete for r in results] == [False, False] and first.complete
    assert files_of(out) == files_of(whole)


def test_a_part_alone_writes_no_index(tmp_path):
    m = small_manifest(n=4, config={"model_type": "x"})
    r = ck.write_checkpoint(m, tmp_path, max_shard_size="8KiB", part=(1, 2))
    assert not r.complete and visible(tmp_path) == [shard_names(2)[0]]
    r = ck.write_checkpoint(m, tmp_path, max_shard_size="8KiB", part=(2, 2))
    assert r.complete and visible(tmp_path) == sorted(shard_names(2) + [INDEX, "config.json"])


def test_parts_of_different_checkpoints_or_splits_are_refused(tmp_path, monkeypatch):
    m = small_manifest(n=4)
    errors = []

    def others():
        for kwargs in ({"seed": 2, "part": (2, 2)}, {"seed": 1, "part": (2, 4)}, {"seed": 1}):
            with pytest.raises(ck.CheckpointError) as e:
                ck.write_checkpoint(m, tmp_path, max_shard_size="4KiB", **kwargs)
            errors.append(one_line(e.value))

    during_shard(monkeypatch, "layer0.weight", others)
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="4KiB", part=(1, 2), chunk_bytes=1024)
    assert len(errors) == 3 and all("another fastinit run" in e for e in errors)


# ---- item 9: one checkpoint per directory ------------------------------------------------------


def _other_seed(d):
    ck.write_checkpoint(small_manifest(n=4, config={"model_type": "x"}), d, seed=2, max_shard_size="8KiB")


def _other_config(d):
    ck.write_checkpoint(small_manifest(n=4, config={"model_type": "y"}), d, seed=1, max_shard_size="8KiB")


def _other_dtype(d):
    ck.write_checkpoint(small_manifest(n=4, dtype="float16", config={"model_type": "x"}), d, seed=1,
                        max_shard_size="4KiB")  # fmt: skip


def _other_shard_size(d):
    ck.write_checkpoint(small_manifest(n=4, config={"model_type": "x"}), d, seed=1, max_shard_size="4KiB")


def _save_pretrained_file(d):
    safetensors.numpy.save_file({"x": np.zeros(2, np.float32)}, str(d / "model.safetensors"))


def _pytorch_bin(d):
    (d / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")


def _foreign_index(d):
    (d / INDEX).write_text(
        json.dumps({"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors"}})
    )


OTHER_CONTENT = {
    "other-seed": _other_seed,
    "other-config": _other_config,
    "other-dtype": _other_dtype,
    "other-shard-size": _other_shard_size,
    "save_pretrained-model.safetensors": _save_pretrained_file,
    "pytorch_model.bin": _pytorch_bin,
    "foreign-index": _foreign_index,
}


@pytest.mark.parametrize("resume", [False, True], ids=["plain", "resume"])
@pytest.mark.parametrize("other", list(OTHER_CONTENT))
def test_a_directory_holding_another_checkpoint_is_refused_unless_overwrite(tmp_path, other, resume):
    OTHER_CONTENT[other](tmp_path)
    (tmp_path / "README.md").write_text("kept")
    before = files_of(tmp_path)
    m = small_manifest(n=4, config={"model_type": "x"})
    with pytest.raises(ck.CheckpointError, match="overwrite") as e:
        ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", resume=resume)
    one_line(e.value)
    assert files_of(tmp_path) == before
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", resume=resume, overwrite=True)
    clean = tmp_path.parent / "clean"
    ck.write_checkpoint(m, clean, seed=1, max_shard_size="8KiB")
    assert files_of(tmp_path) == {**files_of(clean), "README.md": b"kept"}


def test_same_checkpoint_is_rewritten_or_resumed_without_overwrite(tmp_path):
    m = small_manifest(n=4, config={"model_type": "x"})
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")
    assert ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB").written == shard_names(2)
    assert ck.write_checkpoint(
        m, tmp_path, seed=1, max_shard_size="8KiB", resume=True
    ).skipped == shard_names(2)


def test_killed_overwrite_never_leaves_a_loadable_mixed_checkpoint(tmp_path, monkeypatch):
    m = small_manifest(n=4, config={"model_type": "x"})
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")

    def interrupt():
        raise KeyboardInterrupt

    during_shard(monkeypatch, "layer2.weight", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ck.write_checkpoint(m, tmp_path, seed=2, max_shard_size="8KiB", chunk_bytes=1024, overwrite=True)
    assert visible(tmp_path) == [shard_names(2)[0]]  # the new seed's first shard, no index
    assert json.loads(read_header(tmp_path / shard_names(2)[0])[0]["fastinit.seed"]) == 2
    assert all(e.endswith(".fastinit-xxh3") for e in hidden(tmp_path))


def test_overwrite_on_the_command_line(tmp_path, capsys):
    spec = tmp_path / "m.json"
    spec.write_text(json.dumps([{"name": "w", "shape": [8, 8], "init": {"scheme": "normal"}}]))
    out = tmp_path / "out"
    args = ["checkpoint", "--manifest", str(spec), "--out", str(out), "--no-progress"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main([*args, "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and "Traceback" not in err
    assert cli.main([*args, "--seed", "5", "--overwrite"]) == 0
    assert ck.verify_checkpoint(out).passed


# ---- item 10: content hashes ---------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", [100, 1024, 64 << 20])
def test_recorded_hash_is_the_files_digest(tmp_path, chunk_bytes):
    m = small_manifest(n=5, rows=33, config={"model_type": "x"})
    r = ck.write_checkpoint(m, tmp_path, max_shard_size="9KiB", chunk_bytes=chunk_bytes)
    assert len(r.files) == 3
    for name in r.files:
        digest = xxhash.xxh3_128((tmp_path / name).read_bytes()).hexdigest()
        assert (tmp_path / f".{name}.fastinit-xxh3").read_text() == f"{digest}  {name}\n"


@pytest.mark.parametrize("where", ["first-data-byte", "middle", "last-byte"])
def test_resume_rewrites_a_shard_whose_bytes_changed(tmp_path, where):
    m = small_manifest(n=4, config={"model_type": "x"})
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")
    clean = files_of(tmp_path)
    path = tmp_path / shard_names(2)[1]
    raw = bytearray(path.read_bytes())
    _, _, data_start = read_header(path)
    i = {"first-data-byte": data_start, "middle": (data_start + len(raw)) // 2, "last-byte": len(raw) - 1}[
        where
    ]
    raw[i] ^= 0x01
    path.write_bytes(bytes(raw))
    r = ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", resume=True)
    assert r.skipped == shard_names(2)[:1] and r.written == shard_names(2)[1:]
    assert files_of(tmp_path) == clean


def test_resume_rewrites_a_shard_without_a_recorded_hash(tmp_path):
    m = small_manifest(n=4)
    ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB")
    (tmp_path / f".{shard_names(2)[0]}.fastinit-xxh3").unlink()
    r = ck.write_checkpoint(m, tmp_path, seed=1, max_shard_size="8KiB", resume=True)
    assert r.written == shard_names(2)[:1] and r.skipped == shard_names(2)[1:]


# ---- item 11: no symlink followed, Ctrl-C ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["shard", "config", "index", "hash", "lock"])
def test_a_symlink_at_a_temporary_path_is_not_followed(tmp_path, monkeypatch, kind):
    """The temporary names are predictable here (fixed token): each is a symlink to a victim."""
    monkeypatch.setattr(dirlock, "new_token", lambda: "a" * 16)
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.write_bytes(b"precious")
    target = {
        "shard": f".{shard_names(2)[0]}.{'a' * 16}.fastinit-partial",
        "config": f".config.json.{'a' * 16}.fastinit-partial",
        "index": f".{INDEX}.{'a' * 16}.fastinit-partial",
        "hash": f".{shard_names(2)[0]}.fastinit-xxh3.{'a' * 16}.fastinit-partial",
        "lock": f".fastinit-lock-1-of-1.{'a' * 16}.fastinit-partial",
    }[kind]
    os.symlink(victim, out / target)
    try:
        ck.write_checkpoint(small_manifest(n=4, config={"model_type": "x"}), out, max_shard_size="8KiB")
    except ck.CheckpointError as error:
        one_line(error)
    assert victim.read_bytes() == b"precious"
    assert not [e for e in hidden(out) if "lock" in e and not os.path.islink(out / e)]


@pytest.mark.parametrize("name", ["model-00001-of-00002.safetensors", "config.json", INDEX])
def test_a_symlink_at_a_final_name_is_not_followed(tmp_path, name):
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    m = small_manifest(n=4, config={"model_type": "x"})
    ck.write_checkpoint(m, tmp_path / "clean", max_shard_size="8KiB")
    victim.write_bytes((tmp_path / "clean" / name).read_bytes())  # even with the right content
    os.symlink(victim, out / name)
    with pytest.raises(ck.CheckpointError, match="overwrite"):
        ck.write_checkpoint(m, out, max_shard_size="8KiB", resume=True)
    ck.write_checkpoint(m, out, max_shard_size="8KiB", resume=True, overwrite=True)
    assert victim.read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert not os.path.islink(out / name) and files_of(out) == files_of(tmp_path / "clean")


# ---- item 17: arguments checked before anything is created ------------------------------------------


@pytest.mark.parametrize(
    "extra, named",
    [(["--threads", "0"], "threads"), (["--threads", "-3"], "threads"), (["--max-shard-size", "0"], "--max-shard-size"),
     (["--max-shard-size", "lots"], "--max-shard-size"), (["--part", "0/2"], "--part"),
     (["--part", "\u00b2/2"], "--part"), (["--part", "3/2"], "--part"), (["--seed", "-1"], "seed")],
)  # fmt: skip
def test_bad_checkpoint_arguments_fail_before_creating_out(tmp_path, capsys, extra, named):
    spec = tmp_path / "m.json"
    spec.write_text(
        json.dumps([{"name": f"w{i}", "shape": [8, 8], "init": {"scheme": "normal"}} for i in range(3)])
    )
    out = tmp_path / "out"
    code = cli.main(["checkpoint", "--manifest", str(spec), "--out", str(out), "--max-shard-size", "300B",
                     "--no-progress", *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and named in err and "Traceback" not in err
    assert not out.exists()


# ---- the kill/race harness -----------------------------------------------------------------------

HARNESS_TENSORS = [{"name": f"layer{i}.weight", "shape": [48 + 8 * (i % 3), 40], "dtype": "float32",
                    "init": {"scheme": "normal", "std": 0.02}} for i in range(8)]  # fmt: skip
HARNESS_SHARD = "16KB"  # 8 shards of ~8-9 KB
# The hook makes each chunk slow, so a kill lands mid-shard as often as between shards.
HARNESS_SITE = """
import os, sys, time
from fastinit.checkpoint import writer
real = writer.generate_chunk
def slow(spec, seed, r0, r1, buf):
    time.sleep(float(os.environ.get("FASTINIT_TEST_DELAY", "0")))
    return real(spec, seed, r0, r1, buf)
writer.generate_chunk = slow
writer.DEFAULT_CHUNK_BYTES = 2048
from fastinit.cli import main
sys.exit(main())
"""


def harness_env():
    return dict(os.environ, PYTHONPATH=str(Path(fastinit.__file__).parents[1]), PYTHONUNBUFFERED="1")


def start_writer(manifest, out, *extra, delay=0.02):
    args = ["checkpoint", "--manifest", str(manifest), "--out", str(out), "--seed", "11",
            "--max-shard-size", HARNESS_SHARD, "--no-progress", *extra]  # fmt: skip
    env = dict(harness_env(), FASTINIT_TEST_DELAY=str(delay), NUMBA_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", HARNESS_SITE, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_until_writing(out: Path, proc, timeout=60):
    """Until the run holds the directory (the interpreter and numba take ~1 s to start)."""
    deadline = time.monotonic() + timeout
    while True:
        locks = [p for p in out.glob(".fastinit-lock-*-of-*")] if out.exists() else []
        if any(f'"pid": {proc.pid},' in p.read_text(errors="replace") for p in locks if p.exists()):
            return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.005)


def check_invariants(out: Path, reference: dict[str, bytes], *, complete: bool | None = None, killed=False):
    """Every final file equals the reference's; the index names exactly the shards present;
    only hash records remain among the hidden files (no partial, no lock) unless a run was
    killed with SIGKILL."""
    names = visible(out)
    for name in names:
        assert name in reference and (out / name).read_bytes() == reference[name], name
    for name in hidden(out):
        if killed and (name.endswith(".fastinit-partial") or name.startswith(".fastinit-lock-")):
            continue
        assert name.endswith(".fastinit-xxh3"), f"left over: {name}"
        assert (out / name).read_bytes() == reference[name], name
    shards = sorted(n for n in reference if n.endswith(".safetensors") and not n.startswith("."))
    if INDEX in names:
        index = json.loads((out / INDEX).read_text())
        assert sorted(set(index["weight_map"].values())) == shards
        assert [n for n in names if n.endswith(".safetensors")] == shards
    if complete is not None:
        assert (INDEX in names) == complete


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    base = tmp_path_factory.mktemp("harness")
    manifest = base / "m.json"
    manifest.write_text(json.dumps({"tensors": HARNESS_TENSORS, "config": {"model_type": "x"}}))
    proc = start_writer(manifest, base / "reference", delay=0)
    code, _, err = finish(proc)
    assert code == 0, err
    reference = files_of(base / "reference")
    assert len([n for n in reference if n.endswith(".safetensors")]) >= 6
    return base, manifest, reference


@pytest.mark.slow
def test_harness_kills_at_random_points_then_resume(harness):
    """SIGKILL, SIGINT or SIGTERM at random times (fixed seed) during runs into one directory;
    after each the invariants hold; SIGINT exits 130 with one line, SIGTERM 143, and neither
    leaves a temporary file or the lock; a final --resume ends byte-identical to the reference."""
    base, manifest, reference = harness
    rng = random.Random(14)
    out = base / "killed"
    for trial in range(4):
        proc = start_writer(manifest, out, *(["--resume"] if trial % 2 else []))
        wait_until_writing(out, proc)
        time.sleep(rng.uniform(0.0, 0.8))  # a whole run writes for ~0.8 s
        sig = [signal.SIGKILL, signal.SIGINT, signal.SIGTERM, signal.SIGINT][trial]
        proc.send_signal(sig)
        code, _, err = finish(proc)
        if code == 0 or code == -sig and "writing" in err:  # finished before the signal
            check_invariants(out, reference, complete=True)
        elif sig != signal.SIGKILL:  # Ctrl-C: 130 and one line; SIGTERM: 143, silent
            assert (
                code == 128 + sig and "Traceback" not in err and err.count("\n") == (sig == signal.SIGINT)
            ), err
        else:
            assert code == -signal.SIGKILL
        check_invariants(out, reference, killed=sig == signal.SIGKILL)
    code, _, err = finish(start_writer(manifest, out, "--resume", delay=0))
    assert code == 0, err
    check_invariants(out, reference, complete=True)
    assert files_of(out) == reference


@pytest.mark.slow
def test_harness_concurrent_parts_and_a_refused_second_writer(harness):
    base, manifest, reference = harness
    out = base / "parts"
    procs = [start_writer(manifest, out, "--part", f"{k}/3", delay=0.2) for k in (1, 2, 3)]
    wait_until_writing(out, procs[0])
    code, _, err = finish(start_writer(manifest, out, delay=0))  # a plain run while the parts run
    assert any(p.poll() is None for p in procs), "inconclusive: the parts finished before the plain run began"
    assert code == 2 and "another fastinit run" in err and err.count("\n") == 1, err
    results = [finish(p) for p in procs]
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    check_invariants(out, reference, complete=True)
    assert files_of(out) == reference


@pytest.mark.slow
def test_harness_two_plain_writers_at_once(harness):
    base, manifest, reference = harness
    out = base / "plain"
    first = start_writer(manifest, out, delay=0.1)
    wait_until_writing(out, first)
    second = finish(start_writer(manifest, out, delay=0))
    assert first.poll() is None, "inconclusive: the first run finished before the second began"
    first = finish(first)
    assert first[0] == 0, first[2]
    assert second[0] == 2 and "another fastinit run" in second[2], second[2]
    check_invariants(out, reference, complete=True)
    assert files_of(out) == reference


@pytest.mark.slow
def test_harness_killed_parts_then_resumed_concurrently(harness):
    base, manifest, reference = harness
    out = base / "parts-killed"
    rng = random.Random(8)
    procs = [start_writer(manifest, out, "--part", f"{k}/2") for k in (1, 2)]
    wait_until_writing(out, procs[0])
    time.sleep(rng.uniform(0.0, 0.4))
    procs[0].send_signal(signal.SIGKILL)
    results = [finish(p) for p in procs]
    assert results[1][0] == 0, results[1][2]
    check_invariants(out, reference, complete=False, killed=True)
    procs = [start_writer(manifest, out, "--part", f"{k}/2", "--resume", delay=0) for k in (1, 2)]
    results = [finish(p) for p in procs]
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    check_invariants(out, reference, complete=True)
    assert files_of(out) == reference


def test_symlinks_placed_during_a_run_are_not_followed(tmp_path, monkeypatch):
    """While shard 1 is written, symlinks to a victim appear at every temporary name the run could
    use next (its token is visible in the directory): none is followed."""
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.write_bytes(b"precious")

    def plant():
        tokens = {dirlock.token_of_temporary(e) for e in os.listdir(out)} - {None}
        names = [shard_names(2)[1], "config.json", INDEX, f".{shard_names(2)[0]}.fastinit-xxh3"]
        for name in names:
            os.symlink(victim, out / f".{name.lstrip('.')}.fastinit-partial")  # (older fastinit's names)
            for token in tokens:
                os.symlink(victim, out / dirlock.temporary_name(name, token))

    during_shard(monkeypatch, "layer0.weight", plant)
    try:
        ck.write_checkpoint(small_manifest(n=4, config={"model_type": "x"}), out, max_shard_size="8KiB",
                            chunk_bytes=1024)  # fmt: skip
    except ck.CheckpointError as error:
        one_line(error)
    assert victim.read_bytes() == b"precious"


@pytest.mark.parametrize("name", ["model-00001-of-00002.safetensors", "config.json", ".fastinit-lock-1-of-1"])
def test_a_fifo_in_the_directory_does_not_hang_the_writer(tmp_path, name):
    import threading

    os.mkfifo(tmp_path / name)
    outcome = []

    def run():
        try:
            ck.write_checkpoint(
                small_manifest(n=4, config={"model_type": "x"}), tmp_path, max_shard_size="8KiB"
            )
            outcome.append("written")
        except ck.CheckpointError as error:
            outcome.append(one_line(error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(15)
    if thread.is_alive():
        os.close(os.open(tmp_path / name, os.O_WRONLY | os.O_NONBLOCK))  # release the blocked open
        thread.join(30)
        pytest.fail(f"the writer blocked opening the FIFO {name}")
    assert outcome and (name.startswith(".") or "overwrite" in outcome[0])


# ---- round 2 (issue #14): hostile lock pids, directories at checkpoint names, bounded reads, inputs -----


def write_cli(spec, out, *extra):
    return cli.main(["checkpoint", "--manifest", str(spec), "--out", str(out), "--no-progress", *extra])


@pytest.fixture
def five_spec(tmp_path):
    """5 float32 [32, 32] tensors: 5 shards with --max-shard-size 8KB."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(
        [{"name": f"w{i}", "shape": [32, 32], "init": {"scheme": "normal"}} for i in range(5)]
    ))  # fmt: skip
    return spec


@pytest.mark.parametrize("pid", [99999999999999999999, 2**40, 2**63, 2**31])
def test_a_lock_with_an_impossible_pid_is_refused_in_one_line(tmp_path, capsys, five_spec, pid):
    out = tmp_path / "d"
    out.mkdir()
    lock = out / ".fastinit-lock-1-of-1"
    lock.write_text(json.dumps({"host": dirlock.host_name(), "pid": pid}))
    code = write_cli(five_spec, out)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and "unreadable" in err
    assert str(pid) not in err and lock.exists() and visible(out) == []


@pytest.mark.parametrize("name", ["model-00001-of-00005.safetensors", "model-00003-of-00005.safetensors", INDEX,
                                  "config.json"])  # fmt: skip
@pytest.mark.parametrize("flag", [[], ["--overwrite"], ["--resume"]])
def test_a_directory_at_a_checkpoint_name_is_refused_in_one_line(tmp_path, capsys, name, flag):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"tensors": [{"name": f"w{i}", "shape": [32, 32], "init": {"scheme": "normal"}}
                                            for i in range(5)], "config": {"model_type": "x"}}))  # fmt: skip
    out = tmp_path / "d"
    (out / name / "inside").mkdir(parents=True)
    (out / name / "inside" / "keep.txt").write_text("precious")
    code = write_cli(spec, out, "--max-shard-size", "8KB", *flag)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and name in err
    if flag == ["--overwrite"]:
        assert "director" in err
    assert (out / name / "inside" / "keep.txt").read_text() == "precious"


def test_a_huge_index_or_config_is_compared_without_reading_it_whole(tmp_path, monkeypatch):
    m = small_manifest(n=4, config={"model_type": "x"})
    out = tmp_path / "d"
    out.mkdir()
    for name in (INDEX, "config.json"):
        with open(out / name, "wb") as f:
            f.truncate(20 << 30)  # sparse: 20 GB that take no disk space
    real, limits = writer._read_regular, []

    def spy(path, limit=None):
        limits.append(limit)
        return real(path, limit)

    monkeypatch.setattr(writer, "_read_regular", spy)
    assert writer.other_content(str(out), m, writer.plan_shards(m, "8KiB", 0)) == ["config.json", INDEX]
    assert limits and all(limit is not None and 0 <= limit <= 1 << 20 for limit in limits), limits


@pytest.mark.parametrize(
    "kwargs, named",
    [({"part": (1.9, 2)}, "part"), ({"part": ("1", "2")}, "part"), ({"part": (1, 2.0)}, "part"),
     ({"part": (True, 2)}, "part"), ({"part": (1, 2, 3)}, "part"), ({"max_shard_size": 1.5}, "max_shard_size"),
     ({"max_shard_size": "1.5"}, "max_shard_size"), ({"max_shard_size": 8192.0}, "max_shard_size"),
     ({"chunk_bytes": 2**70}, "chunk_bytes"), ({"chunk_bytes": 2**40 + 1}, "chunk_bytes"),
     ({"progress": 5}, "progress"), ({"progress": "x"}, "progress")],
)  # fmt: skip
def test_bad_write_checkpoint_arguments_fail_before_any_file(tmp_path, kwargs, named):
    out = tmp_path / "d"
    with pytest.raises((TypeError, ValueError)) as raised:
        ck.write_checkpoint(small_manifest(n=4), out, max_shard_size=kwargs.pop("max_shard_size", "8KiB"),
                            **kwargs)  # fmt: skip
    assert named in one_line(raised.value) and "Traceback" not in str(raised.value)
    assert not out.exists()


def test_a_non_callable_progress_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="progress"):
        ck.write_checkpoint(small_manifest(n=2), tmp_path / "d", progress=5)


@pytest.mark.parametrize("size", ["1.5KB", "0.5KiB", "1.1KB"])
def test_fractional_sizes_with_a_unit_are_whole_bytes(size):
    assert writer.parse_size(size) == {"1.5KB": 1500, "0.5KiB": 512, "1.1KB": 1100}[size]


def test_the_cli_summary_counts_parameters_readably(tmp_path, capsys, five_spec):
    assert write_cli(five_spec, tmp_path / "d") == 0
    out = capsys.readouterr().out
    assert "5,120 parameters" in out and "0.000 B" not in out


def test_a_directory_at_the_lock_name_is_refused_without_leaking_a_descriptor(tmp_path):
    (tmp_path / ".fastinit-lock-1-of-1").mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(ck.CheckpointError) as raised:
            ck.write_checkpoint(small_manifest(n=2), tmp_path)
        assert "unreadable" in one_line(raised.value)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_lock_being_created_by_another_part_is_not_cleaned_up(tmp_path):
    """A part writes its lock under a temporary name and hard-links it into place; between the
    two, the temporary's token is in no lock yet. Another part starting then must not remove it
    as a dead run's (the harness saw part 1 die on the link: 'No such file or directory').
    A lock temporary left by a kill in that instant is removed once it is old."""
    m = small_manifest(n=4, config={"model_type": "x"})
    plans = ck.plan_shards(m, "8KiB", 0)
    pending = tmp_path / dirlock.temporary_name(".fastinit-lock-2-of-2", "b" * 16)
    pending.write_text("{}")
    orphan = tmp_path / dirlock.temporary_name(".fastinit-lock-1-of-3", "c" * 16)
    orphan.write_text("{}")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    lock = writer.claim_directory(str(tmp_path), m, plans, part=(1, 2))
    lock.release()
    assert pending.exists()
    assert not orphan.exists()
