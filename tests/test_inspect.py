"""fastinit inspect: predictions from recorded schemes, streaming statistics, flags, the CLI.

Statistical thresholds: the inspector flags at p < 1e-6 (KS, and |z| > 4.89 for mean / std).
Tensors drawn correctly at the fixed seeds below pass with p-values far above that; the
"wrong" tensors are off by margins that give p-values below 1e-12 at the sizes used (noted at
each), so every assertion is decided by a wide margin, with no retries.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import fastinit
from fastinit import inspection
from fastinit.cli import main
from fastinit.schemes.registry import SCHEMES

safetensors_numpy = pytest.importorskip("safetensors.numpy")
ck = pytest.importorskip("fastinit.checkpoint")

# One row per registry scheme (custom excepted): a config and a shape to predict and draw.
PREDICTABLE = [
    ({"scheme": "uniform", "low": -0.5, "high": 1.5}, (300, 200)),
    ({"scheme": "normal", "mean": 0.1, "std": 0.02}, (300, 200)),
    ({"scheme": "truncated_normal", "std": 0.02, "a": -0.04, "b": 0.04}, (300, 200)),
    ({"scheme": "truncated_normal", "mean": 1.0, "std": 2.0, "lower": -1.0, "upper": 3.0}, (300, 200)),
    (
        {"scheme": "variance_scaling", "scale": 2.0, "mode": "fan_avg", "distribution": "truncated_normal"},
        (3, 3, 64, 128),
    ),  # fmt: skip
    (
        {"scheme": "variance_scaling", "mode": "fan_geo_avg", "distribution": "uniform", "layout": "torch"},
        (64, 32, 3, 3),
    ),  # fmt: skip
    ({"scheme": "xavier_uniform", "gain": 2.0}, (300, 200)),
    ({"scheme": "xavier_normal"}, (64, 32, 3, 3)),
    ({"scheme": "kaiming_uniform", "a": math.sqrt(5)}, (300, 200)),
    ({"scheme": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"}, (300, 200)),
    ({"scheme": "lecun_uniform"}, (300, 200)),
    ({"scheme": "lecun_normal"}, (300, 200)),
    ({"scheme": "orthogonal", "gain": 1.5}, (300, 200)),
    ({"scheme": "orthogonal", "column_axis": 0, "batch_dims": 1}, (4, 30, 20, 3)),
    ({"scheme": "delta_orthogonal", "gain": 2.0}, (3, 3, 32, 64)),
    ({"scheme": "constant", "value": 0.25}, (30, 20)),
    ({"scheme": "zeros"}, (30, 20)),
    ({"scheme": "ones"}, (30,)),
    ({"scheme": "eye"}, (30, 20)),
    ({"scheme": "dirac", "groups": 2}, (8, 6, 3, 3)),
    ({"scheme": "sparse", "sparsity": 0.3, "std": 0.05}, (300, 200)),
    ({"scheme": "values", "data": fastinit.schemes.encode_values(np.linspace(-2, 3, 600))}, (30, 20)),
]


def test_every_registry_scheme_has_a_prediction_rule():
    """Fails when a scheme joins the registry without a row here (and a rule in predict)."""
    covered = {config["scheme"] for config, _ in PREDICTABLE}
    assert covered == set(SCHEMES) - {"custom"}
    for config, shape in PREDICTABLE:
        assert inspection.predict(config, shape).kind != "unknown", config


@pytest.mark.parametrize(
    "config,shape", PREDICTABLE, ids=lambda v: v["scheme"] if isinstance(v, dict) else None
)
def test_prediction_matches_the_drawn_tensor(config, shape):
    """The predicted mean / std / distribution are those of fastinit's own draws (float64).

    z-scores: |z| < 4 (two-sided p 6e-5) for mean and std; KS p > 1e-4 at 60,000 values."""
    from scipy import stats

    init = fastinit.Initializer.from_config(config)
    x = np.asarray(init(shape, seed=7, name="w", dtype="float64")).ravel()
    p = inspection.predict(config, shape)
    if p.kind in ("orthogonal", "delta_orthogonal"):
        assert math.sqrt(np.mean(x * x)) == pytest.approx(p.std, rel=1e-9)  # exact for orthogonal matrices
        return
    if p.kind == "exact":
        assert x.mean() == pytest.approx(p.mean, abs=1e-12) and x.std() == pytest.approx(p.std, abs=1e-12)
        return
    n = x.size
    assert abs(x.mean() - p.mean) < 4 * p.std / math.sqrt(n)
    if p.kind == "sparse":
        assert np.count_nonzero(x == 0) == round(p.zero_fraction * shape[0]) * shape[1]
        x = x[x != 0]
    else:
        assert abs(x.std() - p.std) < 4 * p.std * math.sqrt(2 / n)  # normal's SE; the others are smaller
        assert x.min() >= (p.low if p.low is not None else -np.inf)
        assert x.max() <= (p.high if p.high is not None else np.inf)
    assert stats.kstest(x, p.dist.cdf).pvalue > 1e-4


def test_predictions_use_the_documented_formulas():
    p = inspection.predict({"scheme": "kaiming_normal", "nonlinearity": "relu"}, (128, 512))
    assert p.family == "normal" and p.std == pytest.approx(math.sqrt(2 / 512))
    p = inspection.predict({"scheme": "xavier_uniform"}, (128, 512))
    assert p.family == "uniform" and p.high == pytest.approx(math.sqrt(6 / (128 + 512)))
    p = inspection.predict({"scheme": "lecun_normal"}, (128, 512))  # JAX's truncated normal, corrected to std
    assert p.family == "truncated normal" and p.std == pytest.approx(math.sqrt(1 / 512))
    p = inspection.predict({"scheme": "orthogonal", "gain": 2.0}, (64, 16))
    assert p.std == pytest.approx(2.0 / 8) and p.family == "n/a"
    p = inspection.predict({"scheme": "normal", "std": 0.02}, (10, 4), zero_rows=[0])
    assert p.std == pytest.approx(0.02 * math.sqrt(0.9))  # one of ten rows zeroed
    assert inspection.predict({"scheme": "normal", "std": 0.0}, (3,)).kind == "exact"


def test_pieces_cover_every_element_once_in_c_order():
    for shape in [(), (5,), (7, 13, 5), (3, 1, 50), (2, 0, 3), (1000,)]:
        for chunk in (1, 4, 64, 10**6):
            full = np.arange(math.prod(shape)).reshape(shape)
            seen = []
            for start, index in inspection._pieces(shape, chunk):
                part = full[index] if index else full
                assert np.array_equal(part.ravel(), np.arange(start, start + part.size))
                seen.append(part.ravel())
            got = np.concatenate(seen) if seen else np.empty(0, int)
            assert np.array_equal(got, np.arange(math.prod(shape))), (shape, chunk)


def _save(path, tensors: dict, records: dict | None = None):
    metadata = {"format": "pt"}
    if records is not None:
        metadata.update({"fastinit.tensors": json.dumps(records), "fastinit.seed": "0"})
    safetensors_numpy.save_file(tensors, str(path), metadata=metadata)
    return str(path)


def test_streaming_statistics_and_subsample(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((7, 13, 5)) * 3 + 1).astype(np.float32)
    y = rng.standard_normal(1000).astype(np.float64)
    path = _save(tmp_path / "a.safetensors", {"x": x, "y": y})
    for chunk in (4, 64, 10**6):
        report = inspection.inspect_path(path, chunk=chunk, max_samples=100)
        tx, ty = report.tensors
        for t, a in ((tx, x), (ty, y)):
            a64 = a.astype(np.float64)
            assert t.mean == pytest.approx(a64.mean(), rel=1e-12, abs=1e-14)
            assert t.std == pytest.approx(a64.std(), rel=1e-12)
            assert (t.min, t.max) == (a64.min(), a64.max())
            stride = -(-a.size // 100)
            assert np.array_equal(t.sample, a64.ravel()[::stride])  # every k-th value, deterministic
        assert tx.predicted is None and tx.flags == [] and tx.ks_pvalue is None


def test_bfloat16_values_are_read_exactly(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    manifest = ck.manifest_from_json([{"name": "w", "shape": [64, 32], "init": {"scheme": "normal", "std": 0.5}}],
                                     dtype="bfloat16")  # fmt: skip
    ck.write_checkpoint(manifest, tmp_path, seed=1)
    t = inspection.inspect_path(tmp_path).tensors[0]
    expected = fastinit.normal((64, 32), 0.0, 0.5, seed=1, name="w", dtype="bfloat16").raw
    values = expected.view(ml_dtypes.bfloat16).astype(np.float64)
    assert t.dtype == "bfloat16" and t.mean == pytest.approx(values.mean(), rel=1e-12)
    assert t.std == pytest.approx(values.std(), rel=1e-12) and (t.min, t.max) == (values.min(), values.max())


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    """Every predictable scheme, float32 and bfloat16, sharded, one embedding with a zeroed row."""
    tensors = [
        {"name": f"t{i}.{c['scheme']}", "shape": list(s), "init": c} for i, (c, s) in enumerate(PREDICTABLE)
    ]
    tensors.append({"name": "emb", "shape": [500, 64], "init": {"scheme": "normal", "std": 0.02},
                    "zero_rows": [3]})  # fmt: skip
    tensors.append({"name": "big", "shape": [400, 500], "init": {"scheme": "truncated_normal", "std": 0.02,
                    "a": -0.04, "b": 0.04}, "dtype": "bfloat16"})  # fmt: skip
    out = tmp_path_factory.mktemp("good")
    ck.write_checkpoint(ck.manifest_from_json(tensors), out, seed=11, max_shard_size="600KB")
    return out


def test_a_correct_checkpoint_has_no_flags(good_checkpoint):
    report = inspection.inspect_path(good_checkpoint, max_samples=50_000)
    assert len(report.files) > 1  # sharded
    assert [t.name for t in report.flagged] == []
    by_name = {t.name: t for t in report.tensors}
    big = by_name["big"]
    assert big.ks_samples == 50_000 and big.ks_pvalue > 1e-3  # every 4th of 200,000 values
    for t in report.tensors:
        p = t.predicted
        assert p is not None and p.kind != "unknown"
        if p.kind in ("distribution", "sparse"):
            assert t.ks_pvalue > 1e-3 and abs(t.z_mean) < 4 and abs(t.z_std) < 4, t.name
        else:
            assert t.ks_pvalue is None
        if p.std:
            assert t.std == pytest.approx(p.std, rel=0.05)
    assert any("zeroed rows [3]: zero" in c for c in by_name["emb"].checks)
    assert any("Q^T Q" in c for c in by_name["t12.orthogonal"].checks)


def test_cli_table_json_exit_0(good_checkpoint, tmp_path, capsys):
    js = tmp_path / "r.json"
    assert main(["inspect", str(good_checkpoint), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0].split()
    assert head == [
        "name",
        "shape",
        "dtype",
        "mean",
        "std",
        "min",
        "max",
        "pred",
        "std",
        "KS",
        "p",
        "scheme",
        "flags",
    ]
    assert "0 flagged" in out and "KS p < 1e-06" in out
    data = json.loads(js.read_text())
    assert data["kind"] == "checkpoint" and len(data["tensors"]) == len(PREDICTABLE) + 2
    emb = next(t for t in data["tensors"] if t["name"] == "emb")
    assert emb["predicted"]["family"] == "normal" and emb["init"] == {"scheme": "normal", "std": 0.02}


def test_select_and_histograms(good_checkpoint, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    plots = tmp_path / "plots"
    assert (
        main(["inspect", str(good_checkpoint), "--select", "t1*", "--select", "emb", "--plot", str(plots)])
        == 0
    )
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()[2:] if line and not line[0].isspace()][:-3]
    expected = sorted(["emb"] + [f"t{i}.{c['scheme']}" for i, (c, _) in enumerate(PREDICTABLE) if str(i)[0] == "1"],
                      key=inspection._natural_key)  # fmt: skip
    assert names == expected
    files = sorted(os.listdir(plots))
    assert files == sorted(inspection._file_name(n) for n in expected)
    for f in files:
        with open(plots / f, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.image.imread(plots / f).shape[2] in (3, 4)


def test_flags(tmp_path, capsys):
    rng = np.random.default_rng(5)
    normal = {"init": {"scheme": "normal", "std": 0.02}}
    x = (rng.standard_normal((300, 300)) * 0.02).astype(np.float32)
    nan = x.copy()
    nan[3, 4], nan[5, 6] = np.nan, np.inf
    q = np.linalg.qr(rng.standard_normal((40, 40)))[0].astype(np.float32)
    eye = np.eye(20, dtype=np.float32)
    eye[3, 4] = 1.0
    emb = x[:50].copy()
    emb[0, 0] = 1e-3
    tensors = {
        "ok": x,
        "nan": nan,
        "const": np.full((30, 30), 0.01, np.float32),
        "wide": x * 1.05,  # std 5 % too large: z(std) ~ 0.05 * sqrt(2 * 90,000) = 21, KS p ~ 1e-13
        "shifted": x + 0.001,  # mean off by 0.05 std: z = 0.05 * 300 = 15
        "clipped_uniform": rng.uniform(-0.1, 0.1, 1000).astype(np.float32),
        "not_orthogonal": (rng.standard_normal((40, 40)) / np.sqrt(40)).astype(np.float32),
        "orthogonal": q,
        "eye": eye,
        "zeros": np.zeros(10, np.float32),
        "emb": emb,
        "unrecorded_const": np.ones((4, 4), np.float32),
        "unrecorded": x[:10],
    }
    records = {
        "ok": normal, "nan": normal, "const": normal, "wide": normal, "shifted": normal,
        "clipped_uniform": {"init": {"scheme": "uniform", "low": -0.05, "high": 0.05}},
        "not_orthogonal": {"init": {"scheme": "orthogonal"}},
        "orthogonal": {"init": {"scheme": "orthogonal"}},
        "eye": {"init": {"scheme": "eye"}},
        "zeros": {"init": {"scheme": "zeros"}},
        "emb": {"init": {"scheme": "normal", "std": 0.02}, "zero_rows": [0]},
    }  # fmt: skip
    path = _save(tmp_path / "bad.safetensors", tensors, records)
    report = inspection.inspect_path(path)
    flags = {t.name: " | ".join(t.flags) for t in report.tensors}
    assert (
        flags["ok"] == "" and flags["orthogonal"] == "" and flags["zeros"] == "" and flags["unrecorded"] == ""
    )
    assert flags["nan"].startswith("nan/inf (1 NaN, 1 Inf)")
    assert "constant" in flags["const"] and "deviates" in flags["const"]
    assert "std z=+" in flags["wide"] and "KS p=" in flags["wide"] and "mean" not in flags["wide"]
    assert "mean z=+" in flags["shifted"]
    assert "outside [-0.05, 0.05]" in flags["clipped_uniform"]
    assert "not orthogonal" in flags["not_orthogonal"]
    assert "1 values differ from eye()" in flags["eye"]
    assert "zeroed rows not zero: [0]" in flags["emb"]
    assert flags["unrecorded_const"].startswith("constant")
    assert main(["inspect", path]) == 1
    out = capsys.readouterr().out
    assert "9 flagged" in out


def test_manifest_and_config_give_predictions_only(tmp_path, capsys):
    manifest = tmp_path / "m.json"
    tensors = [{"name": f"t{i}", "shape": list(s), "init": c} for i, (c, s) in enumerate(PREDICTABLE)]
    manifest.write_text(json.dumps({"tensors": tensors}))
    assert main(["inspect", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "pred std" in out and "KS against" in out and "predictions only" in out
    assert "truncated normal" in out
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
                                  "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}))  # fmt: skip
    report = inspection.inspect_path(config, select=["*.q_proj.weight"])
    assert report.kind == "manifest" and [t.name for t in report.tensors] == [
        "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"]  # fmt: skip
    assert report.tensors[0].predicted.std == 0.02


def test_index_file_is_a_checkpoint(good_checkpoint):
    index = os.path.join(good_checkpoint, "model.safetensors.index.json")
    assert len(inspection.inspect_path(index).tensors) == len(PREDICTABLE) + 2


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: str(d / "missing"), "no such file or directory"),
        (
            lambda d: (d / "x.safetensors").write_bytes(b"garbage!garbage!") and str(d / "x.safetensors"),
            "not a readable safetensors file",
        ),  # fmt: skip
        (
            lambda d: (d / "m.json").write_text("{not json") and str(d / "m.json"),
            "not a readable JSON manifest",
        ),
        (lambda d: (d / "m2.json").write_text('{"tensors": []}') and str(d / "m2.json"), "non-empty list"),
        (lambda d: (d / "empty").mkdir() or str(d / "empty"), "no .safetensors files"),
    ],
)
def test_bad_paths_exit_2_with_one_line(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastinit: error: ") and message in err and err.count("\n") == 1


def test_cli_argument_errors(good_checkpoint, capsys):
    assert main(["inspect"]) == 2
    assert "needs a PATH" in capsys.readouterr().err
    assert main(["inspect", str(good_checkpoint), "--select", "nothing*"]) == 2
    assert "no tensor matches --select nothing*" in capsys.readouterr().err
    assert main(["inspect", str(good_checkpoint), "--alpha", "2"]) == 2
    assert "--alpha 2.0: must be in (0, 1)" in capsys.readouterr().err


def test_python_m_fastinit_inspect(good_checkpoint):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "fastinit", "inspect", str(good_checkpoint), "--select", "emb"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "emb" in result.stdout and "0 flagged" in result.stdout


def test_unpredictable_records_are_reported_not_imported(tmp_path):
    """A custom scheme's function is not imported from a file's header; bad configs do not crash."""
    import sys

    x = np.linspace(-1, 1, 64, dtype=np.float32)
    records = {
        "custom": {
            "init": {"scheme": "custom", "function": "fastinit_test_not_a_module:f", "draw": "uniform"}
        },
        "bad_params": {"init": {"scheme": "normal", "stdev": 1.0}},
        "no_fans": {"init": {"scheme": "xavier_uniform"}},  # 1-D: no fans
        "not_a_dict": {"init": "normal"},
    }
    path = _save(tmp_path / "odd.safetensors", {k: x for k in records}, records)
    report = inspection.inspect_path(path)
    assert "fastinit_test_not_a_module" not in sys.modules
    notes = {t.name: (t.predicted.kind, t.checks[0]) for t in report.tensors}
    assert notes["custom"] == ("unknown", "custom scheme: no prediction")
    assert notes["bad_params"][0] == "unknown" and "stdev" in notes["bad_params"][1]
    assert notes["no_fans"][0] == "unknown" and "cannot predict" in notes["no_fans"][1]
    assert notes["not_a_dict"] == ("unknown", "no scheme in the recorded config")
    assert all(t.flags == [] for t in report.tensors)


def test_support_is_checked_in_the_tensor_dtype(tmp_path):
    """torch's default Linear init (kaiming_uniform, a=sqrt(5)) at fan_in 4096 has the bound 1/64,
    which float64 computes as 0.015624999999999998; bfloat16 values land on -1/64 exactly (about
    one value in 700 here: ~370 of 262,144), which is the bound rounded to bfloat16, not a
    deviation. A value one bfloat16 step beyond it is still flagged."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    record = {"init": {"scheme": "kaiming_uniform", "a": math.sqrt(5)}}
    manifest = ck.manifest_from_json([{"name": "w", **record, "shape": [64, 4096]}], dtype="bfloat16")
    ck.write_checkpoint(manifest, tmp_path / "ok", seed=0)
    t = inspection.inspect_path(tmp_path / "ok").tensors[0]
    assert t.predicted.low == -t.predicted.high and t.predicted.high < 1 / 64  # the float64 bound
    assert t.min == -1 / 64  # the case this test is about happened
    assert t.flags == [], t.flags

    values = np.asarray(fastinit.Initializer.from_config(record["init"])((64, 4096), seed=0, name="w",
                                                                          dtype="bfloat16"))  # fmt: skip
    below = np.nextafter(ml_dtypes.bfloat16(-1 / 64), ml_dtypes.bfloat16(-1))
    beyond = values.copy()
    beyond[5, 7] = below
    path = _save(tmp_path / "beyond.safetensors", {"w": beyond, "v": values}, {"w": record, "v": record})
    flags = {t.name: t.flags for t in inspection.inspect_path(path).tensors}
    assert flags["v"] == []
    assert flags["w"] == ["deviates (values outside [-0.015625, 0.015625])"]


def test_float32_support_is_the_bound_rounded_to_float32(tmp_path):
    record = {"init": {"scheme": "uniform", "low": -0.05, "high": 0.05}}
    x = np.linspace(-0.04, 0.04, 20_000).astype(np.float32)
    on_bound, beyond = x.copy(), x.copy()
    on_bound[0], on_bound[-1] = np.float32(-0.05), np.float32(0.05)  # -0.05000000074505806: rounded -0.05
    beyond[0] = np.nextafter(np.float32(-0.05), np.float32(-1))
    path = _save(
        tmp_path / "f32.safetensors", {"on": on_bound, "beyond": beyond}, {"on": record, "beyond": record}
    )
    flags = {t.name: [f for f in t.flags if "outside" in f] for t in inspection.inspect_path(path).tensors}
    assert flags == {"on": [], "beyond": ["deviates (values outside [-0.05, 0.05])"]}


def test_recorded_constants_are_ok_and_other_constants_fail(tmp_path):
    tensors = {"ones": np.ones(64, np.float32), "zeros": np.zeros((8, 8), np.float32),
               "twos_for_ones": np.full(64, 2.0, np.float32),
               "zeros_for_normal": np.zeros((8, 8), np.float32)}  # fmt: skip
    records = {"ones": {"init": {"scheme": "ones"}}, "zeros": {"init": {"scheme": "zeros"}},
               "twos_for_ones": {"init": {"scheme": "ones"}},
               "zeros_for_normal": {"init": {"scheme": "normal", "std": 0.02}}}  # fmt: skip
    report = inspection.inspect_path(_save(tmp_path / "c.safetensors", tensors, records))
    flags = {t.name: t.flags for t in report.tensors}
    assert flags["ones"] == [] and flags["zeros"] == []
    assert flags["twos_for_ones"] == ["deviates (64 values differ from ones())"]
    assert flags["zeros_for_normal"][0] == "constant (every value 0)"


@pytest.fixture(scope="module")
def transformers_checkpoint(tmp_path_factory):
    """A tiny llama saved by transformers itself: no fastinit records, config.json beside it."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=64)  # fmt: skip
    out = tmp_path_factory.mktemp("hf")
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


@pytest.mark.slow
def test_norm_weights_of_a_transformers_checkpoint_are_ok(transformers_checkpoint, capsys):
    """Norm weights are all ones, as the model's own init (traced from config.json) predicts."""
    report = inspection.inspect_path(transformers_checkpoint)
    norms = [t for t in report.tensors if t.name.endswith("norm.weight")]
    assert len(norms) == 5 and all(t.min == t.max == 1.0 for t in norms)
    assert [(t.name, t.flags) for t in report.flagged] == []
    assert all(any("config.json" in c for c in t.checks) for t in norms)
    assert all(t.predicted.scheme.startswith("ones()") for t in norms)
    assert main(["inspect", str(transformers_checkpoint)]) == 0
    assert "0 flagged" in capsys.readouterr().out


@pytest.mark.slow
def test_constants_config_json_does_not_predict_are_flagged(transformers_checkpoint, tmp_path):
    import shutil

    tensors = safetensors_numpy.load_file(str(transformers_checkpoint / "model.safetensors"))
    tensors["model.norm.weight"] = np.full_like(tensors["model.norm.weight"], 2.0)  # ones predicted
    tensors["model.layers.0.self_attn.q_proj.weight"][...] = 0  # normal(std=0.02) predicted
    safetensors_numpy.save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(transformers_checkpoint / "config.json", tmp_path / "config.json")
    report = inspection.inspect_path(tmp_path)
    flagged = {t.name: t.flags for t in report.flagged}
    assert flagged == {"model.norm.weight": ["constant (every value 2)"],
                       "model.layers.0.self_attn.q_proj.weight": ["constant (every value 0)"]}  # fmt: skip
    (tmp_path / "config.json").unlink()  # without config.json nothing predicts the norms' ones
    flagged = {t.name for t in inspection.inspect_path(tmp_path).flagged}
    assert "model.layers.1.input_layernorm.weight" in flagged
