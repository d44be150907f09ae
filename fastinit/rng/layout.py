"""Where element i of a tensor gets its random bits: a fixed function of i alone.

Philox gives four 32-bit words per counter block. Elements are grouped in tiles of
``TILE_LANES`` = 16 blocks. In a tile, word ``k`` of block ``lane`` goes to element
``k * TILE_LANES + lane``, so each word of the 16 blocks lands in 16 consecutive elements:
the compiled loop over lanes then stores whole vectors (and on a GPU, a warp's stores are
contiguous). Element i of a tensor whose values take ``words_per_value`` words:

    values_per_block = 4 // words_per_value          (4 for float32 outputs, 2 for float64)
    tile_size        = TILE_LANES * values_per_block  (64, or 32)
    tile, r          = divmod(i, tile_size)
    slot, lane       = divmod(r, TILE_LANES)          (which value of the block, which block)
    block            = tile * TILE_LANES + lane
    counter          = (block mod 2**32, block div 2**32, stream word 2, stream word 3)

and value ``slot`` of the block is made from words ``slot * words_per_value`` onwards (a normal
pair takes both values of words 0-1 or 2-3 in float32, all four words in float64). Nothing
else (thread count, chunking, device, launch geometry) enters, which is why slices, threads and
devices agree. Changing any of this changes every stream: it is versioned by STREAM_VERSION.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TILE_LANES", "WORDS_PER_BLOCK", "tile_size", "counters_for"]

TILE_LANES = 16
WORDS_PER_BLOCK = 4


def tile_size(words_per_value: int) -> int:
    return TILE_LANES * (WORDS_PER_BLOCK // words_per_value)


def counters_for(index, words_per_value: int, stream_words=(0, 0)):
    """Reference (NumPy) mapping: flat indices -> (counter uint32 (..., 4), slot).

    >>> c, slot = counters_for(np.array([0, 1, 16, 64]), 1)
    >>> c[:, 0].tolist(), slot.tolist()
    ([0, 1, 0, 16], [0, 0, 1, 0])
    """
    i = np.asarray(index, dtype=np.uint64)
    size = np.uint64(tile_size(words_per_value))
    tile, r = i // size, i % size
    slot, lane = r // np.uint64(TILE_LANES), r % np.uint64(TILE_LANES)
    block = tile * np.uint64(TILE_LANES) + lane
    counter = np.empty(i.shape + (4,), np.uint32)
    counter[..., 0] = (block & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    counter[..., 1] = (block >> np.uint64(32)).astype(np.uint32)
    counter[..., 2] = np.uint32(stream_words[0])
    counter[..., 3] = np.uint32(stream_words[1])
    return counter, slot.astype(np.int64)
