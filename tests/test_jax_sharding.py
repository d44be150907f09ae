"""Sharded jax.Arrays on 8 host devices equal the unsharded arrays (1-D and 2-D meshes), for
fastinit.jax.sharded and for the initializers' ``out_sharding=`` (a Sharding, or a PartitionSpec
under ``jax.set_mesh``; real and complex dtypes; constant, zeros and ones too).

XLA's device count is fixed when JAX starts, so the checks run in a fresh process.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")

SCRIPT = r"""
import json, os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
import jax, numpy as np, fastinit, fastinit.jax as fj
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
devices = np.array(jax.devices())
meshes = {"1d": Mesh(devices, ("x",)), "2d": Mesh(devices.reshape(2, 4), ("a", "b"))}
specs = {"1d": [P("x"), P(None, "x"), P()], "2d": [P("a", "b"), P("b", "a"), P(("a", "b")), P("a"), P(None, ("b", "a"))]}
results = {"devices": len(devices), "cases": []}
shape = (64, 48)
for dtype in ("float32", "bfloat16"):
    full = fastinit.truncated_normal(shape, 0.0, 0.02, -0.04, 0.04, seed=3, name="w", dtype=dtype).tobytes()
    for mesh_name, mesh in meshes.items():
        for spec in specs[mesh_name]:
            a = fj.sharded(fastinit.truncated_normal, shape, 0.0, 0.02, -0.04, 0.04,
                           sharding=NamedSharding(mesh, spec), seed=3, name="w", dtype=dtype)
            blocks = len({tuple((s.start, s.stop) for s in sh.index) for sh in a.addressable_shards})
            results["cases"].append([dtype, mesh_name, str(spec), np.asarray(a).tobytes() == full, blocks])
key = jax.random.key(11)
for factory in (fj.glorot_uniform(), fj.he_normal(), fj.orthogonal(), fj.normal(0.02)):
    init = factory
    sharding = NamedSharding(meshes["2d"], P("a", "b"))
    same = np.asarray(init(key, (32, 16), out_sharding=sharding)).tobytes() == np.asarray(init(key, (32, 16))).tobytes()
    results["cases"].append(["initializer", "2d", "P(a, b)", same, 8])
# a PartitionSpec under jax.set_mesh, complex dtypes and the constant initializers
inits = {"he_normal": fj.he_normal(), "glorot_uniform": fj.glorot_uniform(), "normal": fj.normal(0.1),
         "orthogonal": fj.orthogonal(), "constant": fj.constant(-7.0), "zeros": fj.zeros, "ones": fj.ones}
for name, init in inits.items():
    for dtype in ("float32", "complex64"):
        for spec in (P("a", "b"), P(("b", "a")), P(None, "a")):
            with jax.set_mesh(meshes["2d"]):
                a = init(key, (16, 12), dtype, out_sharding=spec)
            padded = P(*spec, *([None] * (2 - len(spec))))
            same = np.asarray(a).tobytes() == np.asarray(init(key, (16, 12), dtype)).tobytes()
            right = a.sharding == NamedSharding(meshes["2d"], padded) and a.dtype == dtype
            blocks = len({tuple((s.start, s.stop) for s in sh.index) for sh in a.addressable_shards})
            results["cases"].append([name + "/" + dtype, "set_mesh", str(spec), same and right, blocks])
print(json.dumps(results))
"""


@pytest.mark.slow
def test_sharded_arrays_equal_unsharded_on_8_devices():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, env=env)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert results["devices"] == 8
    failures = [case for case in results["cases"] if not case[3]]
    assert not failures, failures
    assert any(case[4] == 8 for case in results["cases"])  # really split over 8 blocks somewhere
