"""benchmarks/RESULTS.md and the README's results tables are what tools/write_results.py
generates from benchmarks/results/*.json: measured numbers only ever reach them through it."""

import pytest


@pytest.fixture
def writer(load_script):
    return load_script("tools/write_results.py")


def test_results_tables_are_generated_from_the_json(writer):
    stale = writer.outdated()
    assert not stale, (
        f"out of date: {sorted(p.name for p in stale)}; run python tools/write_results.py --write"
    )


def test_every_backend_has_a_table(writer):
    parts = writer.sections()
    assert set(parts) == {"cpu", "cuda"}
    for backend, body in parts.items():
        assert body.startswith("Machine: "), backend  # the machine is named with every figure
        assert f"<!-- results:{backend} -->" in writer.README.read_text()


def test_a_hand_edit_is_caught(tmp_path, monkeypatch, writer):
    readme = tmp_path / "README.md"
    readme.write_text(writer.README.read_text().replace("| uniform float32 | ", "| uniform float32 | 9", 1))
    results = tmp_path / "RESULTS.md"
    results.write_text(writer.RESULTS_MD.read_text())
    monkeypatch.setattr(writer, "README", readme)
    monkeypatch.setattr(writer, "RESULTS_MD", results)
    assert set(writer.outdated()) == {readme}
