"""The ``fastinit`` command line (also ``python -m fastinit``).

fastinit demo                        sample a tensor and hand it to torch without a copy
fastinit checkpoint ... --out DIR    write an initialized checkpoint (safetensors, sharded)
fastinit verify DIR                  regenerate and compare every tensor of a checkpoint
fastinit presets                     list the named model shapes for --preset
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


class _UsageError(Exception):
    """A problem with the command line or its inputs: one line, exit status 2."""


def _demo(args) -> int:
    import numpy as np

    import fastinit

    t0 = time.perf_counter()
    weight = fastinit.normal((args.rows, args.cols), 0.0, 0.02, seed=args.seed, name="demo.weight")
    elapsed = time.perf_counter() - t0
    print(f"fastinit.normal({args.rows}, {args.cols}) std=0.02 seed={args.seed}: {elapsed * 1e3:.1f} ms")
    try:
        import torch
    except ImportError:
        array = np.from_dlpack(weight)
        print(f"torch is not installed; NumPy took it through DLPack: {array.dtype}{array.shape}")
        print(f"mean {array.mean():+.5f}  std {array.std():.5f}")
        return 0
    tensor = torch.from_dlpack(weight)
    shared = tensor.data_ptr() == weight.raw.ctypes.data
    print(f"torch.from_dlpack -> {tensor.dtype} {tuple(tensor.shape)}, same memory: {shared}")
    print(f"mean {tensor.mean().item():+.5f}  std {tensor.std().item():.5f}")
    again = fastinit.normal((args.rows, args.cols), 0.0, 0.02, seed=args.seed, name="demo.weight")
    print(f"same (seed, name) again gives the same bytes: {again.tobytes() == weight.tobytes()}")
    return 0


def _read_json(path: str, what: str):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise _UsageError(f"{what} {path}: no such file") from None
    except json.JSONDecodeError as error:
        raise _UsageError(f"{what} {path}: not valid JSON ({error})") from None
    except OSError as error:
        raise _UsageError(f"{what} {path}: {error.strerror}") from None


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
    k, sep, n = text.partition("/")
    if not (sep and k.strip().isdigit() and n.strip().isdigit()) or not 1 <= int(k) <= int(n):
        raise _UsageError(f"--part {text!r}: use K/N with 1 <= K <= N, e.g. --part 3/8")
    return int(k), int(n)


def _checkpoint(args) -> int:
    from . import checkpoint as ck
    from ._progress import Progress

    if args.config:
        manifest = ck.manifest_from_config(_read_json(args.config, "config"), dtype=args.dtype)
    elif args.manifest:
        manifest = ck.manifest_from_json(_read_json(args.manifest, "manifest"), dtype=args.dtype)
    else:
        manifest = ck.manifest_from_config(ck.preset_config(args.preset), dtype=args.dtype)
    if args.override:
        manifest = ck.with_overrides(manifest, dict(_parse_override(o) for o in args.override))
    part = _parse_part(args.part) if args.part else None
    total = sum(p.size - len(p.header) for p in ck.writer.part_of(ck.plan_shards(manifest, args.max_shard_size,
                                                                                  args.seed), part))  # fmt: skip
    progress = Progress(total, f"writing {args.out}", enabled=None if args.progress else False)
    result = ck.write_checkpoint(
        manifest,
        args.out,
        seed=args.seed,
        max_shard_size=args.max_shard_size,
        threads=args.threads,
        resume=args.resume,
        fsync=args.fsync,
        stream=args.stream,
        progress=progress,
        part=part,
    )
    progress.close()
    kept = f", {len(result.skipped)} already complete" if result.skipped else ""
    print(f"{len(manifest)} tensors, {manifest.numel / 1e9:.3f} B parameters in {len(result.files)} file(s)"
          f"{kept}: {args.out}")  # fmt: skip
    return 0


def _verify(args) -> int:
    from . import checkpoint as ck
    from ._progress import Progress

    files = ck.checkpoint_files(args.path)
    total = sum(os.path.getsize(f) for f in files if os.path.isfile(f))  # (verify names the missing)
    progress = Progress(total, f"verifying {args.path}", enabled=None if args.progress else False)
    report = ck.verify_checkpoint(args.path, progress=progress)
    progress.close()
    for name, file in report.different:
        print(f"DIFFERS: {name} ({file})")
    print(f"{len(report.ok)} tensors match, {len(report.different)} differ")
    return 0 if report.passed else 1


def _presets(args) -> int:
    from . import checkpoint as ck

    for name in sorted(ck.PRESETS):
        m = ck.manifest_from_config(ck.preset_config(name))
        print(f"{name:16s} {ck.PRESETS[name]['model_type']:8s} {m.numel / 1e9:8.3f} B params "
              f"{m.nbytes / 1e9:8.2f} GB ({m.tensors[0].dtype.name})")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastinit", description="Fast, reproducible weight initialization.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="sample a tensor and hand it to torch")
    demo.add_argument("--rows", type=int, default=4096)
    demo.add_argument("--cols", type=int, default=4096)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    ckpt = sub.add_parser("checkpoint", help="write an initialized checkpoint (safetensors)")
    source = ckpt.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="a Hugging Face config.json (llama, mistral, qwen2, gpt2)")
    source.add_argument("--manifest", help="a JSON manifest: tensors with name, shape, dtype, init")
    source.add_argument("--preset", help="a named model shape (see `fastinit presets`)")
    ckpt.add_argument("--out", required=True, help="output directory")
    ckpt.add_argument("--seed", type=int, default=0)
    ckpt.add_argument("--dtype", help="float32, bfloat16, float16, float64 (default: the config's)")
    ckpt.add_argument("--max-shard-size", default="5GB", help="e.g. 100KB, 20MB, 5GB (default 5GB)")
    ckpt.add_argument("--threads", type=int, help="sampling threads (default: all cores)")
    ckpt.add_argument("--resume", action="store_true", help="keep shards an earlier run completed")
    ckpt.add_argument("--fsync", action="store_true", help="flush each shard to disk before renaming it")
    ckpt.add_argument("--stream", action="store_true",
                      help="write chunks to disk at once, bypassing the page cache (huge checkpoints)")  # fmt: skip
    ckpt.add_argument("--override", action="append", metavar="PATTERN=RULE",
                      help="initializer for tensors matching PATTERN: a scheme name or a JSON config")  # fmt: skip
    ckpt.add_argument("--part", metavar="K/N",
                      help="write only shard files K, K+N, K+2N, ... (run parts 1/N .. N/N on N machines)")  # fmt: skip
    ckpt.add_argument("--no-progress", dest="progress", action="store_false")
    ckpt.set_defaults(run=_checkpoint)

    verify = sub.add_parser("verify", help="regenerate and compare a checkpoint's tensors")
    verify.add_argument("path", help="checkpoint directory or .safetensors file")
    verify.add_argument("--no-progress", dest="progress", action="store_false")
    verify.set_defaults(run=_verify)

    presets = sub.add_parser("presets", help="list the named model shapes")
    presets.set_defaults(run=_presets)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError

    try:
        return args.run(args)
    except (CheckpointError, _UsageError) as error:
        print(f"fastinit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastinit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
