"""Huge-page advice is given only when FASTINIT_HUGE_PAGES=1 asks for it (fastinit/_memory.py)."""

import mmap

import numpy as np
import pytest

from fastinit import _memory


@pytest.mark.skipif(_memory._madvise is None, reason="no madvise on this system")
@pytest.mark.parametrize("setting, given", [(None, False), ("0", False), ("1", True)])
def test_advice_only_when_asked(monkeypatch, setting, given):
    if setting is None:
        monkeypatch.delenv("FASTINIT_HUGE_PAGES", raising=False)
    else:
        monkeypatch.setenv("FASTINIT_HUGE_PAGES", setting)
    region = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    values = np.frombuffer(region, dtype=np.uint8)
    try:
        assert _memory.advise_huge_pages(values.ctypes.data, values.nbytes) is given
        assert not _memory.advise_huge_pages(values.ctypes.data, 1 << 20)  # small: never
    finally:
        del values
        region.close()
