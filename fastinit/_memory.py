"""Ask the kernel for transparent huge pages on large output buffers before writing them.

Filling memory that was never touched costs a page fault per 4 KiB page; with 2 MiB pages the
same fill runs 2-3 times faster (measured here: a fresh 256 MiB torch tensor fills at ~0.4 G
float32/s, ~1 G/s after this advice; NumPy gives the same advice itself for arrays >= 4 MiB,
which is why fresh NumPy buffers fill fast). ``madvise(MADV_HUGEPAGE)`` is only advice: it
changes no data, and is a no-op where huge pages are off or on other systems.
"""

from __future__ import annotations

import ctypes
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


def advise_huge_pages(address: int, nbytes: int) -> bool:
    """Advise huge pages for the 2 MiB-aligned part of [address, address + nbytes).

    Returns whether the advice was given (False for small buffers or unsupported systems).
    """
    if _madvise is None or nbytes < THRESHOLD:
        return False
    start = (address + _HUGE_PAGE - 1) // _HUGE_PAGE * _HUGE_PAGE
    end = (address + nbytes) // _HUGE_PAGE * _HUGE_PAGE
    return end > start and _madvise(start, end - start, _MADV_HUGEPAGE) == 0
