"""The ``fastinit`` command line as a whole: --version, help texts, --config given a directory,
--max-shard-size read as transformers reads it, and the demo's timing lines.

The checkpoint subcommands' options and errors are in test_checkpoint_cli.py, inspect's in
test_inspect.py.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

import fastinit
from fastinit import cli

ck = pytest.importorskip("fastinit.checkpoint")

LLAMA = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 64,
}


def main(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# ---- --version ----------------------------------------------------------------------------------


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"fastinit {fastinit.__version__}\n"


# ---- help texts ---------------------------------------------------------------------------------


def test_every_subcommand_has_a_description_and_examples():
    for name, sub in subcommands().items():
        text = sub.format_help()
        assert sub.description and len(sub.description) > 40, name
        assert "Examples:" in text, name
        examples = text.split("Examples:", 1)[1]
        assert re.search(rf"^\s+fastinit {name}\b", examples, re.M), name
        assert sub.formatter_class is argparse.RawDescriptionHelpFormatter, name  # examples keep their lines
        assert max(map(len, text.splitlines())) <= 100, name  # the raw formatter wraps nothing


def test_every_option_says_what_it_does():
    for name, sub in subcommands().items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


def test_option_help_states_ranges_and_syntax():
    subs = subcommands()
    for name in ("demo", "checkpoint", "inspect"):
        seed = next(a for a in subs[name]._actions if "--seed" in a.option_strings)
        assert "[0, 2**64)" in seed.help, name
    override = next(a for a in subs["checkpoint"]._actions if "--override" in a.option_strings)
    assert "PATTERN=" in override.help and re.search(r"'\*\.\w+[\w.]*=\w+'", override.help)
    for name in ("checkpoint", "verify"):
        progress = next(a for a in subs[name]._actions if "--no-progress" in a.option_strings)
        assert "progress bar" in progress.help, name
    config = next(a for a in subs["checkpoint"]._actions if "--config" in a.option_strings)
    assert "directory" in config.help and "llama, mistral, qwen2, gpt2" not in config.help
    shard = next(a for a in subs["checkpoint"]._actions if "--max-shard-size" in a.option_strings)
    assert "GiB" in shard.help and "transformers" in shard.help


def test_help_runs_for_every_subcommand(capsys):
    for name in subcommands():
        with pytest.raises(SystemExit) as e:
            cli.main([name, "--help"])
        assert e.value.code == 0
        assert "Examples:" in capsys.readouterr().out


# ---- --config given a model directory -----------------------------------------------------------


def tensors_of(directory) -> dict[str, bytes]:
    import safetensors.numpy

    out = {}
    for path in sorted(Path(directory).glob("*.safetensors")):
        out.update({k: v.tobytes() for k, v in safetensors.numpy.load_file(path).items()})
    return out


@pytest.mark.slow
def test_config_accepts_a_model_directory(tmp_path, capsys):
    model = tmp_path / "tiny-llama"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(LLAMA))
    code, _, err = main(["checkpoint", "--config", model, "--out", tmp_path / "a", "--no-progress"], capsys)
    assert code == 0, err
    code, _, err = main(
        ["checkpoint", "--config", model / "config.json", "--out", tmp_path / "b", "--no-progress"], capsys
    )
    assert code == 0, err
    a, b = tensors_of(tmp_path / "a"), tensors_of(tmp_path / "b")
    assert a and a == b


def test_config_directory_without_config_json(tmp_path, capsys):
    code, _, err = main(["checkpoint", "--config", tmp_path, "--out", tmp_path / "out"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastinit: error: --config ")
    assert str(tmp_path / "config.json") in lines[0] and "no config.json" in lines[0]
    assert not (tmp_path / "out").exists()


def test_config_missing_file_names_the_option(tmp_path, capsys):
    code, _, err = main(
        ["checkpoint", "--config", tmp_path / "nothere.json", "--out", tmp_path / "o"], capsys
    )
    assert code == 2 and err.startswith("fastinit: error: --config ") and "no such file" in err


# ---- --max-shard-size as transformers reads it ----------------------------------------------------

# every form transformers' convert_file_size_to_int accepts: units in any case; a lowercase final
# "b" after K/M/G means bits (transformers divides by 8)
TRANSFORMERS_SIZES = ["5GB", "5gB", "5Gb", "5gb", "20MB", "20mb", "100KB", "100kB", "100kb", "1GiB", "1gib",
                      "3MiB", "64KiB", "64kib", "16Kib"]  # fmt: skip


@pytest.mark.parametrize("text", TRANSFORMERS_SIZES)
def test_sizes_read_as_transformers_reads_them(text):
    hub = pytest.importorskip("transformers.utils.hub")
    assert ck.parse_size(text) == hub.convert_file_size_to_int(text)


@pytest.mark.parametrize("text, value", [("5Gb", 625_000_000), ("100kb", 12_500), ("2GB", 2 * 10**9),
                                         ("2GiB", 2 * 2**30), ("8Mb", 10**6)])  # fmt: skip
def test_sizes_without_transformers(text, value):
    assert ck.parse_size(text) == value


@pytest.mark.parametrize("text", ["5G", "5g", "20M", "64k"])
def test_a_unit_without_b_is_refused_as_transformers_refuses_it(text):
    hub = pytest.importorskip("transformers.utils.hub")
    with pytest.raises(ValueError):
        hub.convert_file_size_to_int(text)
    with pytest.raises(ck.CheckpointError, match=rf"{text.upper()}B .*or {text.upper()}iB"):
        ck.parse_size(text)


def test_bad_shard_size_names_the_option(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(LLAMA))
    code, _, err = main(
        ["checkpoint", "--config", config, "--out", tmp_path / "o", "--max-shard-size", "5G"], capsys
    )
    assert code == 2 and err.startswith("fastinit: error: --max-shard-size '5G': ")
    assert "5GB" in err and "5GiB" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--max-shard-size", "0.5B", "--max-shard-size '0.5B' is not a whole number of bytes"),
        ("--max-shard-size", "", "--max-shard-size '': use "),
        ("--dtype", "int8", "--dtype 'int8' is not supported"),
    ],
)
def test_option_errors_read_as_sentences_with_the_value_quoted(tmp_path, capsys, option, value, expected):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(LLAMA))
    code, _, err = main(["checkpoint", "--config", config, "--out", tmp_path / "o", option, value], capsys)
    assert code == 2 and err.startswith(f"fastinit: error: {expected}"), err


# ---- the demo's timing ----------------------------------------------------------------------------


def test_demo_times_the_first_and_a_warm_call(capsys, monkeypatch):
    import fastinit.samplers

    calls = []
    original = fastinit.samplers.normal

    def counted(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(fastinit.samplers, "normal", counted)
    code, out, err = main(["demo", "--rows", 64, "--cols", 48, "--seed", 3], capsys)
    assert code == 0, err
    first = re.search(r"^ +first call: (\d+\.\d) ms \(includes compiling the kernels or loading them from "
                      r"Numba's cache\)$", out, re.M)  # fmt: skip
    warm = re.search(r"^ +second call \(warm\): (\d+\.\d) ms$", out, re.M)
    assert first and warm, out
    assert out.index("first call") < out.index("second call")
    assert len(calls) == 2 and calls[0] == calls[1]
    assert "fastinit.normal(64, 48) std=0.02 seed=3" in out
    assert "same (seed, name) again gives the same bytes: True" in out


# ---- every error names the option it concerns -----------------------------------------------------

MANIFEST = [{"name": "w", "shape": [4, 4], "init": {"scheme": "normal"}}]
NAMED_ERRORS = {
    "--preset": (["--preset", "llama-8b", "--out", "{d}/o"], "unknown preset 'llama-8b'"),
    "--dtype": (["--manifest", "{d}/m.json", "--out", "{d}/o", "--dtype", "int8"], "int8"),
    "--seed": (["--manifest", "{d}/m.json", "--out", "{d}/o", "--seed", "-1"], "[0, 2**64)"),
    "--seed ": (["--manifest", "{d}/m.json", "--out", "{d}/o", "--seed", str(2**64)], "[0, 2**64)"),
    "--out": (["--manifest", "{d}/m.json", "--out", "{d}/m.json/o"], "cannot create"),
    "--threads": (["--manifest", "{d}/m.json", "--out", "{d}/o", "--threads", "0"], ">= 1"),
    "--part": (["--manifest", "{d}/m.json", "--out", "{d}/o", "--part", "9/2"], "K/N"),
    "--max-shard-size": (["--manifest", "{d}/m.json", "--out", "{d}/o", "--max-shard-size", "0"], "positive"),
    "--manifest": (["--manifest", "{d}/list.json", "--out", "{d}/o"], "tensor 0"),
    "--config": (["--config", "{d}/list.json", "--out", "{d}/o"], "JSON object"),
    "--override": (["--manifest", "{d}/m.json", "--out", "{d}/o", "--override", "w=nosuch"], "nosuch"),
}  # fmt: skip


@pytest.mark.parametrize("option", list(NAMED_ERRORS))
def test_checkpoint_errors_name_the_option(option, tmp_path, capsys):
    (tmp_path / "m.json").write_text(json.dumps(MANIFEST))
    (tmp_path / "list.json").write_text("[1]")
    args, fragment = NAMED_ERRORS[option]
    code, _, err = main(["checkpoint", *(a.replace("{d}", str(tmp_path)) for a in args)], capsys)
    assert code == 2
    assert (
        err.startswith(f"fastinit: error: {option.strip()} ") and fragment in err and err.count("\n") == 1
    ), err
    assert not list(tmp_path.rglob("*.safetensors"))
