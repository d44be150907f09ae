"""The ``fastinit`` command line (also ``python -m fastinit``).

fastinit demo                        sample a tensor and hand it to torch without a copy
fastinit checkpoint ... --out DIR    write an initialized checkpoint (safetensors, sharded)
fastinit verify DIR                  regenerate and compare every tensor of a checkpoint
fastinit presets                     list the named model shapes for --preset
fastinit bench [--quick] ...         time the samplers against a plain fill and numpy/torch/jax
fastinit inspect PATH                statistics of a checkpoint's tensors against their recorded schemes
fastinit inspect --propagate         activation / gradient scale through depth, per scheme
fastinit --version                   the installed version; each subcommand's --help ends with examples

Exit status: 0 on success; 1 when ``verify`` finds a tensor that differs or ``inspect`` flags a
tensor (NaN/Inf, all-constant where no scheme predicts it, deviating from its scheme); 2 for a bad
command line, path or file (a malformed or inconsistent checkpoint, index, manifest or config: one
line on stderr naming the option or path, never a traceback); 3 when ``verify`` finds no
difference but some tensors use a custom scheme whose function is not registered in this
process, so they cannot be regenerated (files are data: nothing a file names is imported;
``verify --allow-import MODULE`` imports a module you trust).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import textwrap
import threading
import time

from .terminal import printable


class _UsageError(Exception):
    """A problem with the command line or its inputs: one line, exit status 2."""


def _demo(args) -> int:
    import numpy as np

    from .benchmark import physical_memory
    from .rng.streams import check_seed
    from .samplers import normal  # (imported before the clock starts: Numba's import is not the demo)

    for option, value in (("--rows", args.rows), ("--cols", args.cols)):
        if value < 1:
            raise _UsageError(f"{option} {value}: must be >= 1")
    try:
        check_seed(args.seed)
    except ValueError as error:
        raise _UsageError(f"--seed {args.seed}: {error}") from None
    need, memory = 2 * 4 * args.rows * args.cols, physical_memory()  # two float32 copies
    if memory is not None and need > memory:
        raise _UsageError(f"--rows {args.rows} --cols {args.cols}: the demo needs {need} bytes, more than this "
                          f"machine's memory ({memory})")  # fmt: skip

    def timed():
        t0 = time.perf_counter()
        try:
            drawn = normal((args.rows, args.cols), 0.0, 0.02, seed=args.seed, name="demo.weight")
        except (ValueError, MemoryError) as error:
            raise _UsageError(f"--rows {args.rows} --cols {args.cols}: {error}") from None
        return drawn, (time.perf_counter() - t0) * 1e3

    weight, first = timed()  # compiles the kernels, or loads them from Numba's cache
    again, warm = timed()
    print(f"fastinit.normal({args.rows}, {args.cols}) std=0.02 seed={args.seed}")
    print(f"  first call: {first:.1f} ms (includes compiling the kernels or loading them from Numba's cache)")
    print(f"  second call (warm): {warm:.1f} ms")
    same = again.tobytes() == weight.tobytes()
    try:
        import torch
    except ImportError:
        array = np.from_dlpack(weight)
        print(f"torch is not installed; NumPy took it through DLPack: {array.dtype}{array.shape}")
        print(f"mean {array.mean():+.5f}  std {array.std():.5f}")
        print(f"same (seed, name) again gives the same bytes: {same}")
        return 0
    tensor = torch.from_dlpack(weight)
    shared = tensor.data_ptr() == weight.raw.ctypes.data
    print(f"torch.from_dlpack -> {tensor.dtype} {tuple(tensor.shape)}, same memory: {shared}")
    print(f"mean {tensor.mean().item():+.5f}  std {tensor.std().item():.5f}")
    print(f"same (seed, name) again gives the same bytes: {same}")
    return 0


def _read_json(path: str, what: str):
    from .checkpoint import CheckpointError
    from .checkpoint.files import read_regular

    try:  # a regular file: a FIFO or a device would block
        raw = read_regular(path, 100_000_000)
    except CheckpointError as error:
        raise _UsageError(f"{what} {error}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _UsageError(f"{what} {path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:  # (its message names a position, never the content)
        raise _UsageError(f"{what} {path}: not valid JSON ({error})") from None
    except (ValueError, RecursionError):
        raise _UsageError(
            f"{what} {path}: not valid JSON (nested too deeply or a number out of range)"
        ) from None


@contextlib.contextmanager
def _naming(what: str, option: str, errors: tuple[type[Exception], ...] = ()):
    """An error (a CheckpointError, or one of ``errors``) that begins with ``what`` begins with
    ``option`` instead, so that it names the option that gave the bad value: "config: ..."
    reads "--config PATH: ...", "dtype='int8' is not supported" reads "--dtype 'int8' is not
    supported"."""
    from .checkpoint import CheckpointError

    try:
        yield
    except (CheckpointError, *errors) as error:
        text = str(error)
        if text.startswith(f"{what}: "):
            raise _UsageError(f"{option}: {text.removeprefix(what + ': ')}") from None
        if text.startswith(f"{what} "):
            raise _UsageError(f"{option} {text.removeprefix(what + ' ')}") from None
        raise


def _config_file(path: str) -> str:
    """--config's file: the path itself, or config.json inside a model directory (as
    ``from_pretrained`` takes a directory)."""
    if not os.path.isdir(path):
        return path
    inside = os.path.join(path, "config.json")
    if not os.path.exists(inside):
        raise _UsageError(f"--config {path}: a directory with no config.json ({inside} does not exist)")
    return inside


def _parse_override(text: str) -> tuple[str, object]:
    pattern, sep, rule = text.partition("=")
    if not sep or not pattern:
        raise _UsageError(f"--override {text!r}: use PATTERN=SCHEME or PATTERN='{{\"scheme\": ..., ...}}'")
    rule = rule.strip()
    if rule.startswith("{"):
        try:
            return pattern, json.loads(rule)
        except json.JSONDecodeError as error:
            raise _UsageError(f"--override {text!r}: not valid JSON ({error})") from None
    return pattern, rule


def _parse_part(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text, re.ASCII)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise _UsageError(f"--part {text!r}: use K/N with 1 <= K <= N, e.g. --part 3/8")
    return int(match.group(1)), int(match.group(2))


def _terminated(signum, frame):
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: temporary files and the lock are removed


def _checkpoint(args) -> int:
    from . import checkpoint as ck
    from ._progress import Progress
    from .dtypes import resolve_dtype

    part = _parse_part(args.part) if args.part else None
    if args.threads is not None and args.threads < 1:
        raise _UsageError(f"--threads {args.threads}: must be >= 1")
    if not 0 <= args.seed < 2**64:
        raise _UsageError(f"--seed {args.seed}: must be in [0, 2**64)")
    if args.dtype is not None:
        with _naming(f"dtype={args.dtype!r}", f"--dtype {args.dtype!r}", (TypeError,)):
            resolve_dtype(args.dtype, argname="dtype")
    size = args.max_shard_size
    with _naming(f"max_shard_size={size!r}", f"--max-shard-size {size!r}"):  # checked here: named
        ck.parse_size(size)
    if args.config:
        path = _config_file(args.config)
        with _naming("config", f"--config {path}"):
            manifest = ck.manifest_from_config(_read_json(path, "--config"), dtype=args.dtype, seed=args.seed)
    elif args.manifest:
        with _naming("manifest", f"--manifest {args.manifest}"):
            manifest = ck.manifest_from_json(_read_json(args.manifest, "--manifest"), dtype=args.dtype)
    else:
        try:
            config = ck.preset_config(args.preset)
        except ck.CheckpointError as error:
            raise _UsageError(f"--preset {args.preset}: {error}") from None
        manifest = ck.manifest_from_config(config, dtype=args.dtype, seed=args.seed)
    if args.override:
        with _naming("override", "--override"):
            manifest = ck.with_overrides(manifest, dict(_parse_override(o) for o in args.override))
    plan = ck.plan_shards(manifest, args.max_shard_size, args.seed)
    total = sum(p.size - len(p.header) for p in ck.writer.part_of(plan, part))
    progress = Progress(total, f"writing {args.out}", enabled=None if args.progress else False)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        result = ck.write_checkpoint(manifest, args.out, seed=args.seed, max_shard_size=args.max_shard_size,
                                     threads=args.threads, resume=args.resume, overwrite=args.overwrite,
                                     fsync=args.fsync, stream=args.stream, progress=progress, part=part)  # fmt: skip
    except ck.CheckpointError as error:  # the output directory's own errors name --out
        if str(error).startswith((f"cannot create {args.out}:", f"cannot write to {args.out}:")):
            raise _UsageError(f"--out {args.out}: {error}") from None
        raise
    progress.close()
    kept = f", {len(result.skipped)} already complete" if result.skipped else ""
    count = f"{manifest.numel / 1e9:.2f} B" if manifest.numel >= 10**9 else f"{manifest.numel:,}"
    print(f"{len(manifest)} tensors, {count} parameters in {len(result.files)} file(s){kept}: {args.out}")
    if not result.complete:
        print("not every shard is in place yet: the part that completes the set writes the index and config.json "
              "(or run again without --part, with --resume)")  # fmt: skip
    return 0


def _verify(args) -> int:
    from . import checkpoint as ck
    from ._progress import Progress
    from .schemes.custom import allow_import

    for module in args.allow_import or ():
        try:
            allow_import(module)
        except ValueError as error:
            raise _UsageError(str(error)) from None
        except Exception as error:  # (the module's own code failed: whatever it raised, one line)
            raise _UsageError(
                f"--allow-import {module}: importing it failed: {type(error).__name__}: {error}"
            ) from None
    files = ck.checkpoint_files(args.path)
    total = sum(os.path.getsize(f) for f in files if os.path.isfile(f))  # (verify names the missing)
    progress = Progress(total, f"verifying {args.path}", enabled=None if args.progress else False)
    report = ck.verify_checkpoint(args.path, progress=progress)
    progress.close()
    for name, file in report.different:
        print(f"DIFFERS: {printable(name)} ({printable(file)})")
    for name, file in report.unverifiable:
        print(f"custom, cannot regenerate: {printable(name)} ({printable(file)})")
    unverifiable = f", {len(report.unverifiable)} custom not regenerated" if report.unverifiable else ""
    print(f"{len(report.ok)} tensors match, {len(report.different)} differ{unverifiable}")
    if report.unverifiable and not report.different:
        print("register the custom functions (import the module that defines them: --allow-import MODULE) "
              "to verify them")  # fmt: skip
    return 1 if report.different else 3 if report.unverifiable else 0


def _presets(args) -> int:
    from . import checkpoint as ck

    for name in sorted(ck.PRESETS):
        m = ck.manifest_from_config(ck.preset_config(name))
        print(f"{name:16s} {ck.PRESETS[name]['model_type']:8s} {m.numel / 1e9:8.3f} B params "
              f"{m.nbytes / 1e9:8.2f} GB ({m.tensors[0].dtype.name})")  # fmt: skip
    return 0


def _split(text: str | None, option: str) -> list[str] | None:
    """A comma list option's items; None when the option is not given."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise _UsageError(f"{option} {text!r}: name at least one item")
    return items


def _check_output(path: str, option: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise _UsageError(f"{option} {path}: the directory {parent} does not exist")


def _need_matplotlib(option: str) -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise _UsageError(f"{option} needs matplotlib: pip install 'fastinit[plot]'")


def _bench(args) -> int:
    from . import benchmark as bm

    settings = bm.QUICK if args.quick else bm.FULL
    try:
        size = settings["size"] if args.size is None else bm.parse_count(args.size)
    except ValueError as error:
        raise _UsageError(f"--size: {error}") from None
    dtypes = _split(args.dtypes, "--dtypes") or list(settings["dtypes"])
    samplers = _split(args.samplers, "--samplers") or list(bm.SAMPLERS)
    try:
        cases = bm.cases(samplers, dtypes)
    except ValueError as error:
        raise _UsageError(f"--samplers/--dtypes: {error}") from None
    rounds = settings["rounds"] if args.rounds is None else args.rounds
    if not 1 <= rounds <= bm.MAX_ROUNDS:
        raise _UsageError(f"--rounds {rounds}: must be in [1, {bm.MAX_ROUNDS}]")
    peers = _split(args.peers, "--peers")
    if peers == ["none"]:
        peers = []
    for option, path in (("--plot", args.plot), ("--json", args.json)):
        if path and os.path.isdir(path):
            raise _UsageError(f"{option} {path}: is a directory")
        if path:
            _check_output(path, option)
    if args.plot:
        _need_matplotlib("--plot")
    try:
        bm.backend(args.device)
    except ValueError as error:
        raise _UsageError(f"--device {args.device}: {error}") from None
    if peers is not None:
        for p in peers:
            if p not in bm.PEERS:
                raise _UsageError(f"--peers: unknown peer {p!r} (peers: {', '.join(bm.PEERS)}, or none)")
    report = (lambda line: print(line, file=sys.stderr, flush=True)) if sys.stderr.isatty() else None
    try:
        result = bm.run(cases, size=size, rounds=rounds, device=args.device, peers=peers, progress=report)
    except ImportError as error:
        raise _UsageError(f"--peers: {error}") from None
    except MemoryError:
        raise _UsageError(f"--size {size}: not enough memory for the buffers; use a smaller --size") from None
    print(result.table())
    if args.json:
        bm.write_json(result, args.json)
        print(f"raw numbers: {args.json}")
    if args.plot:
        bm.plot(result, args.plot)
        print(f"bar chart: {args.plot}")
    return 0


def _inspect(args) -> int:
    if args.propagate:
        return _propagate(args)
    if args.path is None:
        raise _UsageError("inspect needs a PATH (a .safetensors file, a checkpoint directory or a JSON manifest), "
                          "or --propagate")  # fmt: skip
    from . import inspection
    from ._progress import Progress

    if not 0 < args.alpha < 1:
        raise _UsageError(f"--alpha {args.alpha}: must be in (0, 1)")
    if args.max_samples < 1:
        raise _UsageError(f"--max-samples {args.max_samples}: must be >= 1")
    if args.plot:
        _need_matplotlib("--plot")
        if os.path.exists(args.plot) and not os.path.isdir(args.plot):
            raise _UsageError(f"--plot {args.plot}: exists and is not a directory")
        _check_output(args.plot, "--plot")  # (the directory itself is made, not its parents)
    if args.json:
        if os.path.isdir(args.json):
            raise _UsageError(f"--json {args.json}: is a directory")
        _check_output(args.json, "--json")
    progress = None
    if args.progress and os.path.isdir(args.path) and sys.stderr.isatty():
        from .checkpoint import checkpoint_files

        try:
            total = sum(os.path.getsize(f) for f in checkpoint_files(args.path))
        except OSError:
            total = 0
        progress = Progress(total, f"reading {args.path}")
    report = inspection.inspect_path(args.path, select=args.select, alpha=args.alpha, max_samples=args.max_samples,
                                     progress=progress)  # fmt: skip
    if progress is not None:
        progress.close()
    if not report.tensors:
        raise _UsageError(f"{args.path}: no tensor matches --select {' '.join(args.select or [])}")
    print(report.table())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.to_json(), f, indent=1)
        print(f"raw numbers: {args.json}")
    if args.plot:
        written = inspection.plot_histograms(report, args.plot)
        print(f"{len(written)} histogram(s) in {args.plot}")
    return 1 if report.flagged else 0


def _propagate(args) -> int:
    from . import diagnostics

    if args.path is not None:
        raise _UsageError("--propagate takes no PATH")
    nonlinearities = _split(args.nonlinearity, "--nonlinearity") or ["relu", "tanh"]
    schemes = _split(args.schemes, "--schemes") or list(diagnostics.DEFAULT_SCHEMES)
    for nl in nonlinearities:
        if nl not in diagnostics.NONLINEARITIES:
            raise _UsageError(f"--nonlinearity {nl!r}: use one of {', '.join(diagnostics.NONLINEARITIES)}")
    for s in schemes:
        if s not in diagnostics.PROPAGATION_PRESETS:
            raise _UsageError(f"--schemes {s!r}: use one of {', '.join(diagnostics.PROPAGATION_PRESETS)}")
    for option, value in (("--depth", args.depth), ("--width", args.width), ("--batch", args.batch)):
        if value < 1:
            raise _UsageError(f"{option} {value}: must be >= 1")
    try:
        diagnostics.check_size(args.depth, args.width, args.batch)
    except ValueError as error:
        raise _UsageError(f"--depth/--width/--batch: {error}") from None
    if not 0 <= args.seed < 2**64:
        raise _UsageError(f"--seed {args.seed}: must be in [0, 2**64)")
    for option, path in (("--plot", args.plot), ("--json", args.json)):
        if path and os.path.isdir(path):
            raise _UsageError(f"{option} {path}: is a directory")
    if args.plot:
        _need_matplotlib("--plot")
        _check_output(args.plot, "--plot")
    if args.json:
        _check_output(args.json, "--json")
    try:
        results = diagnostics.propagate_all(schemes, nonlinearities, depth=args.depth, width=args.width,
                                            batch=args.batch, seed=args.seed)  # fmt: skip
    except MemoryError:
        raise _UsageError(
            "--depth/--width/--batch: not enough memory for the weights; use smaller ones"
        ) from None
    print(diagnostics.propagation_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.to_json() for r in results], f, indent=1)
        print(f"raw numbers: {args.json}")
    if args.plot:
        diagnostics.plot_propagation(results, args.plot)
        print(f"figure: {args.plot}")
    return 0


SEED_HELP = "an int in [0, 2**64); the same seed gives the same bytes (default 0)"
NO_PROGRESS_HELP = ("draw no progress bar on stderr (one is drawn only when stderr is a terminal); the "
                    "summary line is still printed")  # fmt: skip


def _subcommand(sub, name: str, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand whose --help shows its description and examples with their line breaks (the
    raw formatter wraps nothing: the description is wrapped here)."""
    return sub.add_parser(name, help=help, description=textwrap.fill(description, 88),
                          epilog="Examples:\n" + examples,
                          formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="fastinit", description="Fast, reproducible weight initialization.")
    parser.add_argument("--version", action="version", version=f"fastinit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = _subcommand(sub, "demo", "sample a tensor and hand it to torch",
                       "Sample a (rows, cols) float32 tensor from N(0, 0.02^2) and hand it to torch (or NumPy) "
                       "through DLPack without a copy. Times the first call, which includes compiling the "
                       "kernels or loading them from Numba's cache, and a second, warm call.",
                       "  fastinit demo\n  fastinit demo --rows 8192 --cols 8192 --seed 7\n")  # fmt: skip
    demo.add_argument("--rows", type=int, default=4096, help="rows of the tensor (default 4096)")
    demo.add_argument("--cols", type=int, default=4096, help="columns of the tensor (default 4096)")
    demo.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    demo.set_defaults(run=_demo)

    ckpt = _subcommand(sub, "checkpoint", "write an initialized checkpoint (safetensors)",
                       "Write a complete Hugging Face model directory (sharded safetensors, index, config.json) "
                       "from a config, a preset or a JSON manifest, without building the model in memory: "
                       "every tensor is generated chunk by chunk into its place in its file. The result loads "
                       "with from_pretrained; `fastinit verify` regenerates and compares it.",
                       "  fastinit checkpoint --config path/to/Qwen3-8B --out qwen3 --seed 0\n"
                       "  fastinit checkpoint --config llama/config.json --out ckpt --dtype bfloat16 "
                       "--max-shard-size 2GB\n"
                       "  fastinit checkpoint --preset llama3-405b --out ckpt --part 3/8\n"
                       "  fastinit checkpoint --manifest spec.json --out ckpt "
                       "--override '*.o_proj.weight=zeros' \\\n"
                       "      --override 'lm_head.weight={\"scheme\": \"normal\", \"std\": 0.02}'\n")  # fmt: skip
    source = ckpt.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="PATH",
                        help="a Hugging Face config.json, or a model directory holding one, of any architecture "
                        "transformers builds (needs torch and transformers)")  # fmt: skip
    source.add_argument("--manifest", metavar="PATH",
                        help="a JSON manifest: tensors with name, shape, dtype, init")  # fmt: skip
    source.add_argument("--preset", help="a named model shape (see `fastinit presets`)")
    ckpt.add_argument("--out", required=True, help="output directory")
    ckpt.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    ckpt.add_argument("--dtype", help="float32, bfloat16, float16, float64 (default: the config's)")
    ckpt.add_argument("--max-shard-size", default="5GB",
                      help="largest shard file, as transformers reads it: 5GB = 5*10**9 bytes, 5GiB = 5*2**30, "
                      "a lowercase b is bits (5Gb = 625,000,000 bytes), or a number of bytes "
                      "(default 5GB)")  # fmt: skip
    ckpt.add_argument("--threads", type=int, help="sampling threads, >= 1 (default: all cores)")
    ckpt.add_argument("--resume", action="store_true",
                      help="keep the shards of this same checkpoint that are complete and intact (content digest)")  # fmt: skip
    ckpt.add_argument("--overwrite", action="store_true",
                      help="replace another checkpoint or weight files already in --out (removed first)")  # fmt: skip
    ckpt.add_argument("--fsync", action="store_true", help="flush each shard to disk before renaming it")
    ckpt.add_argument("--stream", action="store_true",
                      help="write chunks to disk at once, bypassing the page cache (huge checkpoints)")  # fmt: skip
    ckpt.add_argument("--override", action="append", metavar="PATTERN=RULE",
                      help="PATTERN=SCHEME or PATTERN=JSON: the initializer of the tensors whose name matches the "
                      "fnmatch PATTERN, a scheme name or a JSON config, e.g. '*.o_proj.weight=zeros' or "
                      "'lm_head.weight={\"scheme\": \"normal\", \"std\": 0.02}' (repeatable; quote it for the "
                      "shell)")  # fmt: skip
    ckpt.add_argument("--part", metavar="K/N",
                      help="write only shard files K, K+N, K+2N, ... (parts 1/N .. N/N may run at once, on N "
                      "machines, into one shared directory)")  # fmt: skip
    ckpt.add_argument("--no-progress", dest="progress", action="store_false", help=NO_PROGRESS_HELP)
    ckpt.set_defaults(run=_checkpoint)

    verify = _subcommand(sub, "verify", "regenerate and compare a checkpoint's tensors",
                         "Check a checkpoint's structure (every shard listed and present, every tensor once, one "
                         "seed, headers consistent with the files), then regenerate every tensor and compare. "
                         "Exit status 0: all match; 1: a tensor differs; 2: a malformed or inconsistent "
                         "checkpoint; 3: no difference, but custom-scheme tensors whose function is not "
                         "registered were not regenerated (see --allow-import).",
                         "  fastinit verify ckpt\n  fastinit verify ckpt/model-00001-of-00004.safetensors\n"
                         "  fastinit verify ckpt --allow-import my_schemes\n")  # fmt: skip
    verify.add_argument("path", help="checkpoint directory or .safetensors file")
    verify.add_argument("--no-progress", dest="progress", action="store_false", help=NO_PROGRESS_HELP)
    verify.add_argument("--allow-import", action="append", metavar="MODULE",
                        help="import MODULE so the custom scheme functions it defines can be regenerated "
                        "(runs its code: only for modules you trust; a file never makes fastinit import one)")  # fmt: skip
    verify.set_defaults(run=_verify)

    presets = _subcommand(sub, "presets", "list the named model shapes",
                          "List the named model shapes `fastinit checkpoint --preset` takes: the model family, "
                          "parameters and bytes of each.",
                          "  fastinit presets\n  fastinit checkpoint --preset gpt2 --out gpt2\n")  # fmt: skip
    presets.set_defaults(run=_presets)

    bench = _subcommand(sub, "bench", "time the samplers against a plain fill and the installed peers",
                        "Time fastinit's samplers into a buffer, interleaved with a plain fill of the same buffer "
                        "(the ceiling) and numpy / torch / jax (cupy on a GPU) at the same distribution and "
                        "dtype; print one table of medians.",
                        "  fastinit bench --quick\n  fastinit bench --device cuda --size 2**28 --plot bench.png\n"
                        "  fastinit bench --samplers normal --dtypes bfloat16 --peers torch "
                        "--json bench.json\n")  # fmt: skip
    bench.add_argument(
        "--quick", action="store_true", help="2**22 values, float32 and bfloat16, 5 rounds (< 1 min)"
    )
    bench.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    bench.add_argument(
        "--size", help="values per call: e.g. 67108864, 2**26, 64M (default 2**26; --quick 2**22)"
    )
    bench.add_argument("--rounds", type=int, help="interleaved rounds (default 7; --quick 5)")
    bench.add_argument("--dtypes", help="comma list of float32, bfloat16, float16, float64")
    bench.add_argument("--samplers", help="comma list of uniform, normal, truncated_normal")
    bench.add_argument(
        "--peers", help="comma list of numpy, torch, jax, cupy, or none (default: the installed)"
    )
    bench.add_argument("--plot", metavar="FILE.png", help="write a bar chart (needs matplotlib)")
    bench.add_argument("--json", metavar="FILE", help="write the raw timings as JSON")
    bench.set_defaults(run=_bench)

    insp = _subcommand(sub, "inspect", "statistics of a checkpoint's tensors against their recorded schemes",
                       "Per tensor: mean, std, min, max, the std its recorded scheme predicts and a KS p-value "
                       "against the scheme's distribution; flags NaN/Inf, all-constant tensors that no scheme "
                       "predicts and deviations from the scheme. Exit status 1 when a tensor is flagged, 2 for "
                       "a bad path. With --propagate: activation and gradient std through a deep stack, per "
                       "scheme.",
                       "  fastinit inspect ckpt\n  fastinit inspect ckpt --select '*.mlp.*' --plot hist/\n"
                       "  fastinit inspect config.json\n"
                       "  fastinit inspect --propagate --plot propagate.png\n")  # fmt: skip
    insp.add_argument("path", nargs="?", help="a .safetensors file, a checkpoint directory (or its index), or a "
                      "JSON manifest / config.json (predictions only)")  # fmt: skip
    insp.add_argument("--select", action="append", metavar="PATTERN",
                      help="only tensors whose name matches this fnmatch pattern (repeatable)")  # fmt: skip
    insp.add_argument("--plot", metavar="DIR|FILE.png",
                      help="a histogram per tensor into DIR (with the scheme's density); with --propagate one figure")  # fmt: skip
    insp.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    insp.add_argument("--no-progress", dest="progress", action="store_false", help=NO_PROGRESS_HELP)
    insp.add_argument(
        "--alpha", type=float, default=1e-6, help="p-value below which a test flags (default 1e-6)"
    )
    insp.add_argument("--max-samples", type=int, default=100_000,
                      help="values per tensor for the KS test and histograms (default 100000)")  # fmt: skip
    insp.add_argument("--propagate", action="store_true",
                      help="push random input through a deep stack per scheme instead of reading a PATH")  # fmt: skip
    insp.add_argument("--nonlinearity", help="with --propagate: comma list (default relu,tanh)")
    insp.add_argument("--schemes", help="with --propagate: comma list (default zeros, constant, too_small, too_large, "
                      "xavier_normal, kaiming_normal, lecun_normal, orthogonal)")  # fmt: skip
    insp.add_argument("--depth", type=int, default=50, help="with --propagate: layers (default 50)")
    insp.add_argument(
        "--width", type=int, default=256, help="with --propagate: units per layer (default 256)"
    )
    insp.add_argument("--batch", type=int, default=128, help="with --propagate: input rows (default 128)")
    insp.add_argument(
        "--seed", type=int, default=0, help="with --propagate: seed of weights and inputs, " + SEED_HELP
    )
    insp.set_defaults(run=_inspect)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:  # (Ctrl-C may land while the imports below still run: the same one line)
        from .checkpoint import CheckpointError

        try:
            return args.run(args)
        except (CheckpointError, _UsageError) as error:
            print(f"fastinit: error: {printable(error)}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("fastinit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
