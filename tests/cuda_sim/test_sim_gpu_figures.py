"""benchmarks/gpu_figures.py end to end under the simulator, on tiny sizes: every code path a
GPU session will take (timings are meaningless here; the bit-identity part is not)."""

import json

SCRIPT = "benchmarks/gpu_figures.py"


def test_gpu_figures_runs(tmp_path, capsys, load_script):
    figures = load_script(SCRIPT)
    report = tmp_path / "figures.json"
    args = ["--size-log2", "8", "--repeats", "2", "--bf16-count", "300", "--identity-count", "1500"]
    assert figures.main([*args, "--skip", "orthogonal", "--json", str(report)]) == 0
    table = capsys.readouterr().out
    for row in ("device-to-device copy", "uniform, float32", "truncated_normal, float32", "normal, bfloat16"):
        assert f"| {row}" in table
    saved = json.loads(report.read_text())
    assert saved["table"] == table.strip()
    assert set(saved["identity"]) == {
        "uniform",
        "normal",
        "truncated_normal (central)",
        "truncated_normal (tails)",
        "normal bfloat16",
    }
    assert all(differing == 0 for differing, _ in saved["identity"].values()), saved["identity"]


def test_identity_check_reports_differences(monkeypatch, load_script):
    """The comparison counts differing elements and their ulp distance (it can fail)."""
    import numpy as np

    import fastinit

    figures = load_script(SCRIPT)
    normal = fastinit.normal

    def off_by_one_ulp(*args, device="cpu", **kwargs):
        x = normal(*args, device=device, **kwargs)
        if device != "cpu" and x.dtype.name == "float32":
            host = x.copy_to_host(raw=True)
            host.reshape(-1)[5] = np.nextafter(host.reshape(-1)[5], np.float32(np.inf))
            return fastinit.FastArray(host, x.dtype)
        return x

    monkeypatch.setattr(fastinit, "normal", off_by_one_ulp)
    result = figures.measure_identity(fastinit, 600, 0)
    assert result["normal"] == (1, 1)
    assert result["uniform"] == result["normal bfloat16"] == (0, 0)


def test_kernel_variants_runs_and_compares_bytes(capsys, monkeypatch, load_script):
    """benchmarks/gpu_kernel_variants.py: every variant rebuilt, run through the public API and
    compared with the committed kernels' bytes (the column a GPU session reads first). Short
    runs are let into the dense kernels, so the column shard's tiny rows take them here too."""
    from fastinit.backends import cuda as backend

    monkeypatch.setattr(backend.launch, "DENSE_MIN_ITEMS", 1)
    variants = load_script("benchmarks/experiments/gpu_kernel_variants.py")
    assert variants.main(["--size-log2", "7", "--repeats", "1", "--calls", "1"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith(("| uniform", "| normal", "| truncated"))]
    assert len(rows) == 5 and all(line.endswith("| True |") for line in rows), table  # 3 + 2 shard rows


def test_kernel_variants_are_other_kernels(load_script):
    """The variants are rebuilt with other helpers (else the A/B would time one kernel twice)."""
    from fastinit.backends import cuda as backend

    variants = load_script("benchmarks/experiments/gpu_kernel_variants.py")
    cuda = backend.load()
    name = "fill32_dense_uniform"
    committed = variants.variant_kernels(backend, cuda, "committed", [name])[name]
    old = variants.variant_kernels(backend, cuda, "as timed on the H200", [name])[name]
    assert committed is backend.kernels()[name] and old is not committed
    dense = old.py_func.__globals__["_dense32_dev"].py_func
    assert dense.__name__ == "_dense32_one_loop"
    assert dense.__globals__["_store_dev"].py_func.__name__ == "_store_signed"
    assert dense.__globals__["_block_words_dev"].py_func.__name__ == "_block_words_u64"
    ablation = variants.variant_kernels(backend, cuda, "uint64 Philox", [name])[name]
    dense = ablation.py_func.__globals__["_dense32_dev"].py_func
    assert (
        dense is not backend.device_code._dense32 and dense.__code__ is backend.device_code._dense32.__code__
    )
    values = dense.__globals__["_tile_values32_dev"].py_func
    assert values.__globals__["_block_words_dev"].py_func.__name__ == "_block_words_u64"
    assert dense.__globals__["_store_dev"] is backend.device_code._store_dev


def test_host_profile_runs(capsys, load_script):
    profile = load_script("benchmarks/experiments/gpu_host_profile.py")
    assert profile.main(["--calls", "2", "--size", "64", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "| fastinit.uniform, out=FastArray |" in out and "bare launch" in out and "tottime" in out


class _WritesNothing:
    """Stands in for a compiled kernel: ``kernel[grid, block, stream](*args)`` does nothing."""

    def __getitem__(self, launch):
        return lambda *args: None


def _sampler_rows(table: str):
    return [line for line in table.splitlines() if line.startswith(("| uniform", "| normal", "| truncated"))]


def test_kernel_variants_bytes_check_catches_a_kernel_that_writes_nothing(monkeypatch, capsys, load_script):
    """Every variant but "committed" replaced by a kernel that writes nothing: the bytes check
    must say so (out is poisoned with NaN before each compared call). (Found in review.)"""
    variants = load_script("benchmarks/experiments/gpu_kernel_variants.py")
    committed = variants.variant_kernels

    def broken(backend, cuda, variant, names):
        if variant == variants.VARIANTS[0]:
            return committed(backend, cuda, variant, names)
        return {name: _WritesNothing() for name in names}

    monkeypatch.setattr(variants, "variant_kernels", broken)
    assert variants.main(["--size-log2", "7", "--repeats", "1", "--calls", "1"]) == 0
    rows = _sampler_rows(capsys.readouterr().out.split("column shard")[0])
    assert len(rows) == 3 and all(line.endswith("| False |") for line in rows), rows


def test_column_shard_bytes_check_catches_a_general_kernel_that_writes_nothing(
    monkeypatch, capsys, load_script
):
    from fastinit.backends import cuda as backend

    variants = load_script("benchmarks/experiments/gpu_kernel_variants.py")
    backend.load()
    monkeypatch.setattr(backend.launch, "DENSE_MIN_ITEMS", 1)
    general_only = backend.general_kernels_only

    class GeneralWritesNothing:
        def __enter__(self):
            self._context = general_only()
            self._context.__enter__()
            self._saved = dict(backend.compiler.KERNELS)
            backend.compiler.KERNELS.update(fill32=_WritesNothing(), fill64=_WritesNothing())

        def __exit__(self, *exc):
            backend.compiler.KERNELS.update(self._saved)
            return self._context.__exit__(*exc)

    monkeypatch.setattr(backend, "general_kernels_only", GeneralWritesNothing)
    assert variants.main(["--size-log2", "7", "--repeats", "1", "--calls", "1"]) == 0
    rows = _sampler_rows(capsys.readouterr().out.split("column shard")[1])
    assert len(rows) == 2 and all(line.endswith("| False |") for line in rows), rows
