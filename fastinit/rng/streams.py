"""Streams: (seed, name) -> the Philox key and the two stream words of the counter.

    message = seed (8 bytes, little-endian) || substream (4 bytes, little-endian)
              || (0x00 if name is None else 0x01 || name encoded as UTF-8)
    digest  = BLAKE2b(message, digest_size=16, person=b"fastinit/stream1")
    key0, key1, counter2, counter3 = the digest as four little-endian uint32 words

The counter of block b is then (b mod 2**32, b div 2**32, counter2, counter3) (rng/layout.py).
BLAKE2b is in every Python's hashlib and is not salted per process (unlike ``hash()``), so
the same (seed, name) gives the same stream in every process on every machine; different
names give unrelated 128-bit stream identities, so adding a parameter never changes the
others. ``substream`` separates the draws of one tensor that needs more than one stream (a
sparse init's zero pattern and its values, say).

``STREAM_VERSION`` numbers this derivation together with the element layout and the
samplers' transforms: any change to the values a (seed, name, shape, dtype) produces bumps it.
"""

from __future__ import annotations

import functools
import hashlib
import numbers
from typing import NamedTuple

import numpy as np

__all__ = ["STREAM_VERSION", "StreamKey", "derive_key"]

STREAM_VERSION = 1
_PERSON = b"fastinit/stream1"


class StreamKey(NamedTuple):
    """The Philox key words and the stream words of the counter, each a uint32 value."""

    key0: int
    key1: int
    counter2: int
    counter3: int

    def as_array(self) -> np.ndarray:
        """As the uint64 vector the kernels take: (key0, key1, counter2, counter3)."""
        return np.array(self, dtype=np.uint64)


def check_seed(seed, argname: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{argname} must be an int in [0, 2**64), got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"{argname}={seed} is out of range: it must be in [0, 2**64)")
    return seed


def check_name(name, argname: str = "name"):
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{argname} must be a str or None, got {type(name).__name__}")
    if name is not None:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as error:  # lone surrogates: the key hashes the UTF-8 bytes
            raise ValueError(
                f"{argname} has a character UTF-8 cannot encode ({name[error.start]!r} at position "
                f"{error.start}); use a str without lone surrogates"
            ) from None
    return name


@functools.lru_cache(maxsize=4096)
def _digest(seed: int, name: str | None, substream: int) -> StreamKey:
    message = seed.to_bytes(8, "little") + substream.to_bytes(4, "little")
    message += b"\x00" if name is None else b"\x01" + name.encode("utf-8")
    digest = hashlib.blake2b(message, digest_size=16, person=_PERSON).digest()
    return StreamKey(*(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)))


def derive_key(seed: int = 0, name: str | None = None, *, substream: int = 0) -> StreamKey:
    """The stream of (seed, name): Philox key and counter stream words.

    >>> derive_key(0, "w") == derive_key(0, "w")
    True
    >>> derive_key(0, "w") != derive_key(0, "b")
    True
    """
    seed = check_seed(seed)
    name = check_name(name)
    if (
        isinstance(substream, bool)
        or not isinstance(substream, numbers.Integral)
        or not 0 <= substream < 2**32
    ):
        raise ValueError(f"substream={substream!r} must be an int in [0, 2**32)")
    return _digest(seed, name, int(substream))
