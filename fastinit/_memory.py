"""Transparent huge pages for large output buffers: only when asked (``FASTINIT_HUGE_PAGES=1``).

Filling memory that was never touched costs a page fault per 4 KiB page. With 2 MiB pages
(``madvise(MADV_HUGEPAGE)``) first touch can be 2-3 times faster or 2-3 times slower,
depending on the host: on one 2-core host a fresh 256 MiB torch tensor filled at ~0.4 G
float32/s without the advice and ~1 G/s with it; on a 2-core microVM (2026-12-06) a
TinyLlama-shaped bfloat16 model (2.2 GB of fresh torch memory) filled in 3.5-4.4 s with it
(five runs) and 1.3-1.6 s without (six runs), and a probe of 16 MiB could not tell the two
apart reliably. torch allocates without the advice and NumPy gives its own for its arrays, so
fastinit gives none unless ``FASTINIT_HUGE_PAGES=1``. The advice changes no data and is a no-op
where huge pages are off or on other systems.
"""

from __future__ import annotations

import ctypes
import os
import sys

_MADV_HUGEPAGE = 14
_HUGE_PAGE = 2 << 20
THRESHOLD = 4 << 20  # as NumPy: only buffers of at least 4 MiB

_madvise = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _madvise = _libc.madvise
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - non-glibc systems
        _madvise = None


def huge_pages_wanted() -> bool:
    """Whether ``FASTINIT_HUGE_PAGES=1`` asks for huge-page advice on large buffers.

    >>> isinstance(huge_pages_wanted(), bool)
    True
    """
    return os.environ.get("FASTINIT_HUGE_PAGES") == "1"


def advise_huge_pages(address: int, nbytes: int) -> bool:
    """Advise huge pages for the 2 MiB-aligned part of [address, address + nbytes) when
    ``FASTINIT_HUGE_PAGES=1``.

    Returns whether the advice was given (False when not asked for, for small buffers, or on
    unsupported systems).
    """
    if _madvise is None or nbytes < THRESHOLD or not huge_pages_wanted():
        return False
    start = (address + _HUGE_PAGE - 1) // _HUGE_PAGE * _HUGE_PAGE
    end = (address + nbytes) // _HUGE_PAGE * _HUGE_PAGE
    return end > start and _madvise(start, end - start, _MADV_HUGEPAGE) == 0
