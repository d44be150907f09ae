"""Stream-stability hashes: the exact bytes every sampler produces, pinned.

A change of any hash or value below is a BREAKING CHANGE: every user's initialization changes.
If it is intended (a new layout, converter, transform or key derivation), bump
``fastinit.STREAM_VERSION`` (rng/streams.py), regenerate these values, and say so in the
changelog. If it is not intended, the change is a bug. (Habit from randomgen's
tests/test_stability.py.) The values were generated with STREAM_VERSION 1.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

import fastinit

PINNED_STREAM_VERSION = 1

# (sampler, positional params, keyword params, dtype, shape, seed, name, index) -> sha256 of
# the raw storage bytes (bfloat16 as its 16-bit patterns), C order
HASHES = [
    (
        "uniform",
        (0.0, 1.0),
        {},
        "float32",
        (257, 129),
        0,
        None,
        None,
        "1b9b6cd42285f065cb6ad140f4822660e1b58f9ab1e13396983543ed04924984",
    ),
    (
        "uniform",
        (0.0, 1.0),
        {},
        "float64",
        (257, 129),
        0,
        None,
        None,
        "5b17a9b6f5c6795b459e2615b4354ace104a02e57771e741655c482aa0ffbd09",
    ),
    (
        "uniform",
        (0.0, 1.0),
        {},
        "float16",
        (257, 129),
        0,
        None,
        None,
        "379c530c012a63f8f31a4352bc21882f0b060778513a1d8d67cf7a47a4f1d2ea",
    ),
    (
        "uniform",
        (0.0, 1.0),
        {},
        "bfloat16",
        (257, 129),
        0,
        None,
        None,
        "c2322a0720083ae6e0632533f122f3f3cddc9b50b04dd8fb52ede707650eaa64",
    ),
    (
        "uniform",
        (-1.5, 2.25),
        {},
        "float32",
        (257, 129),
        1234,
        "stability.w",
        None,
        "37a1c051900bdf5541877343e1b286b9ef0e862003556d408d2334aed89e9cde",
    ),
    (
        "uniform",
        (-1.5, 2.25),
        {},
        "float64",
        (257, 129),
        1234,
        "stability.w",
        None,
        "d762c5a871f87d3e6e3566d39da13713017d70cd2ac55a9acba79f4e79b64d6c",
    ),
    (
        "uniform",
        (-1.5, 2.25),
        {},
        "float16",
        (257, 129),
        1234,
        "stability.w",
        None,
        "ec130a964097bbc03f90213701eeff41d97afc6f176a258f5e6453dd7183ad2e",
    ),
    (
        "uniform",
        (-1.5, 2.25),
        {},
        "bfloat16",
        (257, 129),
        1234,
        "stability.w",
        None,
        "44a3d522cede827999184363918bd3490b8cbd9453fc7df24a0ed20df6a7931a",
    ),
    (
        "normal",
        (0.0, 1.0),
        {},
        "float32",
        (257, 129),
        0,
        None,
        None,
        "c1d79b3d4bf7f0b7a08c2bf738a7d46fa400b623e063256d781f4e9d5b0c484d",
    ),
    (
        "normal",
        (0.0, 1.0),
        {},
        "float64",
        (257, 129),
        0,
        None,
        None,
        "9ab38d64c3de383d2b4f6bb3345813325108036f23742b7f05d92eb42b7e1956",
    ),
    (
        "normal",
        (0.0, 1.0),
        {},
        "float16",
        (257, 129),
        0,
        None,
        None,
        "9cef6b270a00a25de56f934ecdbadbceb7e165c3ce94ad9b431de2ebeca79c74",
    ),
    (
        "normal",
        (0.0, 1.0),
        {},
        "bfloat16",
        (257, 129),
        0,
        None,
        None,
        "bd806d71d0d4928b1cb02a7e66215c9469d9e9d5fb0a6cd8cdefe4c9f0cc5765",
    ),
    (
        "normal",
        (0.5, 0.02),
        {},
        "float32",
        (3, 77, 41),
        2**63 + 5,
        "layer.0.weight",
        None,
        "316497ccb1c47c9583041e4671e959c9f1ecee834ddde30c19609cc57e92d992",
    ),
    (
        "normal",
        (0.5, 0.02),
        {},
        "float64",
        (3, 77, 41),
        2**63 + 5,
        "layer.0.weight",
        None,
        "a61f9c4e7369d7a77485653b99e28a30b6e21735d881e48439e19bd493a352d5",
    ),
    (
        "normal",
        (0.5, 0.02),
        {},
        "float16",
        (3, 77, 41),
        2**63 + 5,
        "layer.0.weight",
        None,
        "be41e0cf6b0791223ca76be2e15c5ad77de8abec0305c46849d4c22d9561ddad",
    ),
    (
        "normal",
        (0.5, 0.02),
        {},
        "bfloat16",
        (3, 77, 41),
        2**63 + 5,
        "layer.0.weight",
        None,
        "6c9acc9630a189a0d3346e5374a9a0a03b1b55ff41266bb1a8169a6db915cf55",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -2.0, 2.0),
        {},
        "float32",
        (257, 129),
        0,
        None,
        None,
        "865477c6d8cdd19d69572edacd78f16a45355d546f6e9bb341e4fcf063b5c0ff",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -2.0, 2.0),
        {},
        "float64",
        (257, 129),
        0,
        None,
        None,
        "1dcf3f01bd6469233ed1009ee0a133aaef9ab34645a72cddcda4076bddeb57e2",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -2.0, 2.0),
        {},
        "float16",
        (257, 129),
        0,
        None,
        None,
        "0a1a4d576258964b113775fd552db15d0a5ee71ca1ecee66878cebbd25b3b423",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -2.0, 2.0),
        {},
        "bfloat16",
        (257, 129),
        0,
        None,
        None,
        "7afd93f69c540e50d7c845c71df0e7e1b1001389ee2ad1d675520828d3421d94",
    ),
    (
        "truncated_normal",
        (0.0, 0.02, -0.04, 0.04),
        {},
        "float32",
        (1000,),
        7,
        "emb",
        None,
        "1b2dac3cb4cce2155cee5019044050e9171542315c2a3c41ed397d95ad28cbe4",
    ),
    (
        "truncated_normal",
        (0.0, 0.02, -0.04, 0.04),
        {},
        "float64",
        (1000,),
        7,
        "emb",
        None,
        "2c8e3b11c670bbaaf0ece471d518270073c91b5a3189c38c7c2bc8cd3ce389f2",
    ),
    (
        "truncated_normal",
        (0.0, 0.02, -0.04, 0.04),
        {},
        "float16",
        (1000,),
        7,
        "emb",
        None,
        "16945e02d7735a7373ccac70e81ec0fef72f195d9923c4c66fbf9fe6aa135114",
    ),
    (
        "truncated_normal",
        (0.0, 0.02, -0.04, 0.04),
        {},
        "bfloat16",
        (1000,),
        7,
        "emb",
        None,
        "32f90c9a6a8803aeb9c4325aa23442dda14e209002278542d2a176a9a2776a21",
    ),
    (
        "truncated_normal",
        (0.0, 0.5),
        {"lower": -1.0, "upper": 3.0},
        "float32",
        (100, 10),
        8,
        "jax",
        None,
        "fd24b5af32f95a0b8fe1f1b117194d3d5d4d8a716e44d3a6d6815542788273aa",
    ),
    (
        "truncated_normal",
        (0.0, 0.5),
        {"lower": -1.0, "upper": 3.0},
        "float64",
        (100, 10),
        8,
        "jax",
        None,
        "728bbf91e36fd7fc39187109baa97ccb60fab208eabeb7debb451e3387d0847d",
    ),
    (
        "truncated_normal",
        (0.0, 0.5),
        {"lower": -1.0, "upper": 3.0},
        "float16",
        (100, 10),
        8,
        "jax",
        None,
        "c1300dc9d62514c74d48f3c6a816f3640295ae38e4081621e01fbaa74eaab7b7",
    ),
    (
        "truncated_normal",
        (0.0, 0.5),
        {"lower": -1.0, "upper": 3.0},
        "bfloat16",
        (100, 10),
        8,
        "jax",
        None,
        "606f9cc322ef95a5e95cd585fde5aafdc99716b9e918ff5cdcac62196ba264a8",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, 12.0, 14.0),
        {},
        "float32",
        (33, 31),
        9,
        "tail.right",
        None,
        "14d2e07ee2fcc504ea02ac0457f42b4d572e2f4b46c6bad4ba59e45b8230cb4e",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, 12.0, 14.0),
        {},
        "float64",
        (33, 31),
        9,
        "tail.right",
        None,
        "f55354b66bebd1d9641494e58eaf397e657feb1b315e0e1d257d2f106720ef4e",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, 12.0, 14.0),
        {},
        "float16",
        (33, 31),
        9,
        "tail.right",
        None,
        "8e0c569c383a006d9d3c61db7aacad119cf391c64009891d94192f88b1a402e5",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, 12.0, 14.0),
        {},
        "bfloat16",
        (33, 31),
        9,
        "tail.right",
        None,
        "49b80b31973ad369b737efaae69c80b0e3f517ff6a3b4eaab62d49603aa16267",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -math.inf, -40.0),
        {},
        "float32",
        (1023,),
        10,
        "tail.left",
        None,
        "76f9dc8f8b68d47e109231c7db84ed106f5db9e135f90caeb25a26bfee58d0fe",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -math.inf, -40.0),
        {},
        "float64",
        (1023,),
        10,
        "tail.left",
        None,
        "0b483a95f66d03c7ba8f57f21821ada91a92d45c4ddf1402338d8a88c6fbfeff",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -math.inf, -40.0),
        {},
        "float16",
        (1023,),
        10,
        "tail.left",
        None,
        "9c5a4ba7a15f959f6a7646ad2375629990038a1b86e3420e1b683caa2fc5b6df",
    ),
    (
        "truncated_normal",
        (0.0, 1.0, -math.inf, -40.0),
        {},
        "bfloat16",
        (1023,),
        10,
        "tail.left",
        None,
        "8dc47e76dada66aee06c6b3c5885f149817290ec9e5acd913a59b33faaa7706e",
    ),
    (
        "uniform",
        (0.0, 1.0),
        {},
        "float32",
        (2**40,),
        11,
        "far",
        (slice(2**36, 2**36 + 1000, None),),
        "95e90b63f20b2d75be5443bb3d2b4be8788fd849f2a52bb8e068b9b476e2f8b4",
    ),
    (
        "uniform",
        (0.0, 1.0),
        {},
        "float64",
        (2**40,),
        11,
        "far",
        (slice(2**36, 2**36 + 1000, None),),
        "c478342fc2fb6c406e705512b5818293bf0f763692bdd30ffbc61fd315e2e027",
    ),
    (
        "normal",
        (0.0, 1.0),
        {},
        "float32",
        (2**40,),
        11,
        "far",
        (slice(2**36, 2**36 + 1000, None),),
        "cae35a618a3f27b20c7084415608e52954b2446358da6a925bd1e845f24eac45",
    ),
    (
        "normal",
        (0.0, 1.0),
        {},
        "float64",
        (2**40,),
        11,
        "far",
        (slice(2**36, 2**36 + 1000, None),),
        "edb6a0a5fccb808a26cb451399f20ab6e4484329af91022226324fe29dd5db17",
    ),
]


def test_stream_version_matches_the_pinned_values():
    assert fastinit.STREAM_VERSION == PINNED_STREAM_VERSION, (
        "STREAM_VERSION changed: regenerate the hashes in this file for the new stream"
    )


def test_table_covers_every_sampler_dtype_and_path():
    covered = {(s, d) for s, _, _, d, *_ in HASHES}
    for sampler in ("uniform", "normal", "truncated_normal"):
        for dtype in ("float32", "float64", "float16", "bfloat16"):
            assert (sampler, dtype) in covered
    tails = [
        p for s, p, *_ in HASHES if s == "truncated_normal" and len(p) == 4 and max(abs(p[2]), abs(p[3])) > 11
    ]
    assert tails  # the log-space tail path is pinned too


@pytest.mark.parametrize(
    ("sampler", "params", "kwargs", "dtype", "shape", "seed", "name", "index", "digest"),
    HASHES,
    ids=[f"{h[0]}-{h[3]}-{i}" for i, h in enumerate(HASHES)],
)
def test_stream_hash(sampler, params, kwargs, dtype, shape, seed, name, index, digest):
    x = getattr(fastinit, sampler)(shape, *params, **kwargs, seed=seed, name=name, dtype=dtype, index=index)
    assert hashlib.sha256(x.tobytes()).hexdigest() == digest


@pytest.mark.parametrize(
    ("seed", "name", "substream", "words"),
    [
        (0, None, 0, (0xCA56F7FE, 0xC15877C0, 0x78F3CCCC, 0xE9A7A8E5)),
        (1, "layer.weight", 0, (0xD4284C74, 0x82378792, 0x56C3ABE6, 0x6FFC3752)),
        (2**64 - 1, "\u00e9", 0, (0xBD1899BA, 0x6F979795, 0x7692277C, 0x70E277D7)),
        (5, "w", 3, (3691799576, 1322043646, 1273321352, 3179542658)),
    ],
)
def test_derive_key_pinned(seed, name, substream, words):
    assert tuple(fastinit.derive_key(seed, name, substream=substream)) == words


# The first four values of each sampler (default parameters, seed 0, name None) as the bit
# patterns of the stored values: readable pins that say which value moved when a hash fails.
FIRST_WORDS = [
    ("uniform", "float32", ["0x3f761e22", "0x3dd823b0", "0x3e288c44", "0x3ec3d1c4"]),
    (
        "uniform",
        "float64",
        ["0x3feec3c4461e9520", "0x3fbb0476ae4290b8", "0x3fc511889f37fee8", "0x3fd87a38b78d6a90"],
    ),
    ("uniform", "float16", ["0x3bb1", "0x2ec1", "0x3144", "0x361f"]),
    ("uniform", "bfloat16", ["0x3f76", "0x3dd8", "0x3e29", "0x3ec4"]),
    ("normal", "float32", ["0xbe8d24db", "0xbfffc307", "0x3fe7cba5", "0x3fa69d06"]),
    (
        "normal",
        "float64",
        ["0xbfc917bea1cbe86f", "0xbfebb431e3e80840", "0x3feae0216e61461f", "0x3fef629cf1fbaf7c"],
    ),
    ("normal", "float16", ["0xb469", "0xbffe", "0x3f3e", "0x3d35"]),
    ("normal", "bfloat16", ["0xbe8d", "0xc000", "0x3fe8", "0x3fa7"]),
    ("truncated_normal", "float32", ["0x3fc77227", "0xbf9430d4", "0xbf6a78bb", "0xbe91f05b"]),
    (
        "truncated_normal",
        "float64",
        ["0x3ff8ee4457ea3eea", "0xbff2861a9c97b74d", "0xbfed4f1708207a6f", "0xbfd23e0b7fda7cc8"],
    ),
    ("truncated_normal", "float16", ["0x3e3c", "0xbca2", "0xbb54", "0xb490"]),
    ("truncated_normal", "bfloat16", ["0x3fc7", "0xbf94", "0xbf6a", "0xbe92"]),
]


@pytest.mark.parametrize(("sampler", "dtype", "bits"), FIRST_WORDS)
def test_first_values_pinned(sampler, dtype, bits):
    raw = getattr(fastinit, sampler)(8, dtype=dtype).raw
    as_int = raw.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[raw.itemsize])
    assert [int(b) for b in as_int[:4]] == [int(b, 16) for b in bits]


def test_first_philox_blocks_of_the_default_stream_pinned():
    # blocks 0 and 1 of the (seed 0, name None) stream: counter (b, 0, counter2, counter3)
    key = fastinit.derive_key(0, None)
    counters = np.array([[b, 0, key.counter2, key.counter3] for b in range(2)], np.uint32)
    words = fastinit.philox4x32(counters, np.array([key.key0, key.key1], np.uint32))
    assert words.tolist() == [
        [0xF61E222A, 0x87A54825, 0x5F83DCFB, 0x5D9B3FAA],
        [0x1B0476B3, 0x721485EA, 0xAEDDD142, 0xE65A5AC0],
    ]
    # elements 0 and 1 of uniform float32 are word 0 of blocks 0 and 1, top 24 bits
    first = fastinit.uniform(2, seed=0).raw
    assert first.tolist() == [(0xF61E222A >> 8) * 2.0**-24, (0x1B0476B3 >> 8) * 2.0**-24]
