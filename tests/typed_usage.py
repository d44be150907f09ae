"""A user's typed code, checked by mypy in tests/test_typing.py (its functions never run).

Each line either type-checks or carries ``# type: ignore[code]`` for the error mypy must report:
the test runs mypy with --warn-unused-ignores, so an ignore mypy no longer needs fails too.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

import fastinit
import fastinit.checkpoint
from fastinit.typing import DTypeLike, ShapeLike


def samplers() -> None:
    # without out= a sampler returns a FastArray; with out=x it returns x's type
    a: fastinit.FastArray = fastinit.uniform((2, 3), -1.0, 1.0, seed=0, name="w")
    b: fastinit.FastArray = fastinit.normal(10, 0.0, 0.02, seed=np.uint64(1), dtype="bfloat16")
    c: fastinit.FastArray = fastinit.truncated_normal([4, 4], 0.0, 0.02, lower=-2.0, upper=2.0)
    buffer: NDArray[np.float32] = np.empty((2, 3), np.float32)
    filled: NDArray[np.float32] = fastinit.normal((2, 3), out=buffer, index=(slice(None), ...))
    same: NDArray[np.float32] = fastinit.uniform((4, 3), out=buffer, index=slice(0, 2))
    raw: NDArray[np.generic] = a.raw
    print(b.shape, c.dtype.name, filled, same, raw)
    fastinit.normal((2, 3), mean="0")  # type: ignore[arg-type]
    fastinit.uniform((2, 3), 0.0, 1.0, 7)  # type: ignore[call-arg]
    fastinit.normal(2.5)  # type: ignore[arg-type]


def schemes() -> None:
    w: fastinit.FastArray = fastinit.kaiming_uniform((256, 128), a=math.sqrt(5), seed=0, name="fc.weight")
    fastinit.kaiming_normal((64, 32), mode="fan_out", nonlinearity="relu")
    fastinit.xavier_uniform((64, 32, 3, 3), gain=fastinit.calculate_gain("tanh"))
    fastinit.variance_scaling((3, 3, 16, 32), 2.0, "fan_avg", "uniform", layout="jax", batch_axis=(0,))
    fastinit.orthogonal((64, 32), qr="scipy", column_axis=-1)
    fastinit.sparse((10, 4), 0.25, std=0.01)
    fastinit.constant((2, 3), [1.0, 2.0, 3.0])
    fastinit.values((3,), fastinit.schemes.encode_values([1, 2, 3]))
    fan_in, fan_out = fastinit.compute_fans((64, 32, 3, 3), layout="torch")
    print(w.size, fan_in + fan_out)
    fastinit.kaiming_uniform((2, 2), mode="fan_avg")  # type: ignore[arg-type]
    fastinit.calculate_gain("gelu")  # type: ignore[arg-type]
    fastinit.variance_scaling((2, 2), layout="flax")  # type: ignore[arg-type]


def initializers() -> None:
    init: fastinit.Initializer = fastinit.get_initializer("he_normal", nonlinearity="relu")
    w: fastinit.FastArray = init((64, 32), seed=0, name="w")
    config: dict[str, object] = init.to_config()
    again = fastinit.Initializer.from_config(config)
    print(w, again == init)

    @fastinit.custom(draw="uniform", low=-10.0, high=10.0)
    def gapped(x: float) -> float:
        return x if abs(x) >= 5.0 else 0.0

    decorated: fastinit.Initializer = gapped
    called: fastinit.Initializer = fastinit.custom(abs, draw="normal", std=0.02)
    path: str = fastinit.register_custom(abs)
    print(decorated, called, path)
    fastinit.custom(draw="laplace")  # type: ignore[call-overload]


def my_layer(shape: ShapeLike, dtype: DTypeLike = "float32") -> fastinit.FastArray:
    return fastinit.lecun_normal(shape, dtype=dtype, device="cpu")


def checkpoints(directory: str) -> bool:
    manifest = fastinit.checkpoint.manifest_from_json(
        [{"name": "w", "shape": [64, 32], "init": {"scheme": "normal"}}], dtype="bfloat16"
    )
    fastinit.checkpoint.write_checkpoint(manifest, directory, max_shard_size="5GB", part=(1, 2))
    return fastinit.checkpoint.verify_checkpoint(directory, progress=print).passed
