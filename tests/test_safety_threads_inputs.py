"""Issue #14 items 6 and 18: concurrent callers under every Numba threading layer, and inputs
that must be refused with a one-line error naming the argument.

The thread tests run in fresh processes because the threading layer is chosen once per process
(at the first parallel launch) and the ``workqueue`` layer aborts the whole process, rather than
raising, when two threads launch parallel kernels at the same time.
"""

from __future__ import annotations

import math
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastinit
from fastinit.array import FastArray
from fastinit.dtypes import resolve_dtype

REPO = pathlib.Path(__file__).resolve().parents[1]

# Several Python threads call every kind of parallel launch at once (the fill kernels' run and
# strided forms, the low-precision conversion, a custom scheme's element-wise kernel, a Dask
# array on the threaded scheduler); every result must equal the single-threaded call's bytes.
CONCURRENT = textwrap.dedent(
    """
    import hashlib, pathlib, sys, tempfile, threading
    import dask
    import numba
    import numpy as np
    import fastinit, fastinit.dask
    import fastinit.checkpoint as ck
    from fastinit.backends import cpu

    def halve(w):
        return w * 0.5

    halved = fastinit.custom(halve, draw="normal")

    CALLS = [
        lambda: fastinit.uniform((256, 257), -1.0, 2.0, seed=1, name="u"),
        lambda: fastinit.normal((300, 301), 0.0, 0.5, seed=2, name="n", dtype="bfloat16"),
        lambda: fastinit.normal((64, 65), seed=2, name="n", index=(slice(None, None, 2), 3)),
        lambda: fastinit.truncated_normal((200, 203), 0.0, 1.0, -2.0, 2.0, seed=3, name="t", dtype="float64"),
        lambda: halved((128, 129), seed=4, name="c"),
        lambda: fastinit.orthogonal((64, 32), seed=5, name="o", dtype="float16"),
        lambda: fastinit.dask.normal((256, 256), chunks=(64, 64), seed=6, name="d").compute(scheduler="threads"),
    ]

    def raw(x):
        x = getattr(x, "raw", x)
        return np.ascontiguousarray(x).tobytes()

    expected = [raw(call()) for call in CALLS]  # single-threaded reference (and compilation)
    failures = []

    def worker(k):
        for r in range(12):
            j = (k + r) % len(CALLS)
            if raw(CALLS[j]()) != expected[j]:
                failures.append(j)

    # a checkpoint whose shards Dask's threaded scheduler writes at once, beside the workers
    manifest = ck.manifest_from_json([{"name": f"w{i}", "shape": [96, 64], "init": {"scheme": "xavier_uniform"}}
                                      for i in range(6)])
    tmp = pathlib.Path(tempfile.mkdtemp())

    def digests(directory):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("*.safetensors")}

    def checkpoint():
        fastinit.dask.write_checkpoint(manifest, tmp / "dask", seed=3, max_shard_size="30KB")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    threads.append(threading.Thread(target=checkpoint))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ck.write_checkpoint(manifest, tmp / "single", seed=3, max_shard_size="30KB")
    if len(digests(tmp / "single")) < 3 or digests(tmp / "dask") != digests(tmp / "single"):
        failures.append("checkpoint")
    print(numba.threading_layer(), "serialized", cpu.launches_serialized(), "failures", sorted(set(map(str, failures))))
    sys.exit(1 if failures else 0)
    """
)


def _run_concurrent(layer):
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    return subprocess.run([sys.executable, "-c", CONCURRENT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.parametrize("layer", ["workqueue", None], ids=["workqueue", "default"])
def test_concurrent_threads_are_safe_and_exact(layer):
    done = _run_concurrent(layer)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "failures []" in done.stdout
    if layer is not None:
        assert done.stdout.startswith(layer)
    # concurrency is kept where the layer is thread-safe (omp, tbb)
    serialized = done.stdout.startswith("workqueue")
    assert f"serialized {serialized}" in done.stdout


# ==== item 18: inputs that must be refused ==========================================================


@pytest.mark.parametrize("shape", [(2.7,), 2.7, (3, 2.0), (True,), ("3",), (np.float64(2.0),), None])
def test_fastarray_empty_refuses_non_integer_shapes(shape):
    with pytest.raises(TypeError, match=r"^shape"):
        FastArray.empty(shape, "float32")


@pytest.mark.parametrize(
    "shape, expected", [((2, 3), (2, 3)), (4, (4,)), ((np.int64(5), np.int32(2)), (5, 2)), ((), ())]
)
def test_fastarray_empty_accepts_integer_shapes(shape, expected):
    assert FastArray.empty(shape, "float32").shape == expected


@pytest.mark.parametrize("shape", [{3: 4}, {3}, "33", b"3", np.array([[2, 3]]), np.array([2.0])])
def test_fastarray_empty_refuses_unordered_or_text_shapes(shape):
    # tuple() of a dict, set or string would make a shape out of its keys, members or characters
    with pytest.raises(TypeError, match=r"^shape"):
        FastArray.empty(shape, "float32")


@pytest.mark.parametrize("shape", [[2, 3], range(2, 4), np.array([2, 3]), np.array([2, 3], np.uint8)])
def test_fastarray_empty_accepts_sequences_and_integer_vectors(shape):
    assert FastArray.empty(shape, "float32").shape == (2, 3)


def test_fastarray_empty_negative_dimension_names_shape():
    with pytest.raises(ValueError, match=r"^shape"):
        FastArray.empty((2, -1), "float32")


def test_resolve_dtype_refuses_none():
    with pytest.raises(TypeError, match=r"^dtype=None"):
        resolve_dtype(None)
    with pytest.raises(TypeError, match=r"^tensor\.dtype=None"):
        resolve_dtype(None, argname="tensor.dtype")
    with pytest.raises(TypeError, match=r"^dtype=None"):
        FastArray.empty((2,), None)


def test_dtype_none_default_still_means_float32_or_outs_dtype():
    # the samplers' and schemes' dtype=None default is resolved before resolve_dtype is reached
    assert fastinit.normal((3,), seed=0).dtype.name == "float32"
    assert fastinit.normal((3,), seed=0, dtype=None).dtype.name == "float32"
    out = np.zeros(3, np.float64)
    fastinit.uniform((3,), seed=0, dtype=None, out=out)
    assert np.all(out != 0)
    assert fastinit.zeros((2,), dtype=None).dtype.name == "float32"
    out16 = np.ones((2, 2), np.float16)
    fastinit.eye((2, 2), dtype=None, out=out16)
    assert out16.tolist() == [[1, 0], [0, 1]]


DETERMINISTIC = {
    "constant": lambda **kw: fastinit.constant((2, 3), 0.5, **kw),
    "zeros": lambda **kw: fastinit.zeros((2, 3), **kw),
    "ones": lambda **kw: fastinit.ones((2, 3), **kw),
    "eye": lambda **kw: fastinit.eye((2, 3), **kw),
    "dirac": lambda **kw: fastinit.dirac((2, 2, 3), **kw),
}
BAD_SEEDS = [(-1, ValueError), (2**64, ValueError), (1.5, TypeError), ("0", TypeError), (True, TypeError),
             (None, TypeError)]  # fmt: skip


@pytest.mark.parametrize("scheme", DETERMINISTIC)
@pytest.mark.parametrize("seed, error", BAD_SEEDS)
def test_deterministic_schemes_validate_seed_as_the_samplers_do(scheme, seed, error):
    with pytest.raises(error, match=r"^seed") as refused:
        DETERMINISTIC[scheme](seed=seed)
    with pytest.raises(error) as sampler:
        fastinit.normal((2, 3), seed=seed)
    assert str(refused.value) == str(sampler.value)


@pytest.mark.parametrize("scheme", DETERMINISTIC)
def test_deterministic_schemes_validate_name_and_accept_valid_seeds(scheme):
    with pytest.raises(TypeError, match=r"^name"):
        DETERMINISTIC[scheme](name=3)
    reference = np.asarray(DETERMINISTIC[scheme]())
    for seed in (0, 2**64 - 1, np.uint64(7)):
        assert np.array_equal(np.asarray(DETERMINISTIC[scheme](seed=seed, name="w")), reference)


def int_division(w):
    # w * 0.0 truncates to 0 for every draw: integer division by zero
    return float(7 // int(w * 0.0))


def float_division(w):
    return 1.0 / (w - w)


def raises_value_error(w):
    if w > 0.5:
        raise ValueError("w too large")
    return w


@pytest.mark.parametrize("fn, error, text", [
    (int_division, ZeroDivisionError, "division by zero"),
    (float_division, ZeroDivisionError, "division by zero"),
    (raises_value_error, ValueError, "w too large"),
])  # fmt: skip
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_custom_function_errors_are_raised_naming_the_function(fn, error, text, dtype):
    init = fastinit.custom(fn, draw="uniform")
    out = np.full(1000, 3.0, dtype)
    with pytest.raises(error, match=rf"^custom function '{fn.__name__}'.*{text}") as raised:
        init((1000,), seed=0, name="w", out=out)
    assert "\n" not in str(raised.value)
    assert np.all(out == 3.0)  # nothing delivered


def test_custom_function_without_errors_is_unchanged():
    def halve_or_keep(w):
        return w * 0.5 if w > 0.0 else 7 // 2 + w

    got = np.asarray(fastinit.custom(halve_or_keep, draw="normal")((999,), seed=2, name="h"))
    draws = np.asarray(fastinit.normal((999,), seed=2, name="h"))
    assert np.array_equal(got, np.where(draws > 0, draws * np.float32(0.5), draws + np.float32(3.0)))


# an exception inside a parallel loop is lost under workqueue (the values stay half-written)
CUSTOM_ERROR = textwrap.dedent(
    """
    import numpy as np
    import fastinit

    def int_division(w):
        return float(7 // int(w * 0.0))

    try:
        fastinit.custom(int_division, draw="uniform")((10_000,), seed=0)
    except ZeroDivisionError as error:
        print("raised", error)
    """
)


@pytest.mark.parametrize("layer", ["workqueue", None], ids=["workqueue", "default"])
def test_custom_function_error_surfaces_under_every_layer(layer):
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    done = subprocess.run([sys.executable, "-c", CUSTOM_ERROR], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("raised custom function 'int_division'")


def test_fastarray_empty_refuses_unaddressable_shapes():
    # int64 arithmetic would wrap 2**80 bytes to 0 and fail later with an unrelated message
    # refused as the samplers refuse it (array.check_shape)
    with pytest.raises(ValueError, match=r"^shape=\(1099511627776, 1099511627776\) has \d+ elements"):
        FastArray.empty((2**40, 2**40), "float32")
    with pytest.raises(ValueError, match=r"^shape=\(4611686018427387904,\) needs"):
        FastArray.empty((2**62,), "float32")


# A process forked while another thread is inside a (serialized) launch: the child must not
# inherit the held launch lock (workqueue is fork-safe, so this worked before launches were
# serialized). Linux only: it needs os.fork.
FORK_DURING_LAUNCH = textwrap.dedent(
    """
    import os, threading, time
    import numpy as np
    import fastinit
    from fastinit.backends import cpu

    fastinit.normal((1000,), seed=0)  # the layer is known from here on
    assert cpu.launches_serialized()
    big = threading.Thread(target=lambda: fastinit.normal((60_000_000,), seed=0))
    big.start()
    time.sleep(0.2)  # the thread is inside its launch (it takes ~1 s)
    pid = os.fork()
    if pid == 0:
        x = np.asarray(fastinit.normal((100_000,), seed=1, name="c"))
        os._exit(0 if np.array_equal(x, np.asarray(fastinit.normal((100_000,), seed=1, name="c"))) else 3)
    deadline = time.time() + 30
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exit", os.waitstatus_to_exitcode(status))
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        print("child hung")
    big.join()
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_during_a_serialized_launch_does_not_hang_the_child():
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    done = subprocess.run([sys.executable, "-c", FORK_DURING_LAUNCH], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "child exit 0"


# ==== fuzzers (bounded: a few seconds each) ===========================================================

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
small_dim = st.integers(-3, 6)
anything = st.one_of(st.none(), st.booleans(), small_dim, st.floats(allow_nan=True), st.text(max_size=3),
                     st.binary(max_size=3), st.just(np.int64(2)), st.just(np.float32(2.0)))  # fmt: skip
shapes = st.one_of(anything, st.lists(anything, max_size=3), st.lists(anything, max_size=3).map(tuple),
                   st.sets(small_dim, max_size=3), st.dictionaries(small_dim, small_dim, max_size=2),
                   st.lists(small_dim, max_size=3).map(np.array))  # fmt: skip


def _valid_dims(shape):
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        return (int(shape),) if shape >= 0 else None
    if isinstance(shape, np.ndarray):
        ok = shape.ndim == 1 and shape.dtype.kind in "iu" and (shape >= 0).all()
        return tuple(shape.tolist()) if ok else None
    if isinstance(shape, (list, tuple)) and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                                                and d >= 0 for d in shape):  # fmt: skip
        return tuple(int(d) for d in shape)
    return None


@FUZZ
@given(shape=shapes)
def test_fuzz_fastarray_empty_shapes(shape):
    expected = _valid_dims(shape)
    if expected is None:
        with pytest.raises((TypeError, ValueError), match=r"^shape") as refused:
            FastArray.empty(shape, "float32")
        assert "\n" not in str(refused.value)
    else:
        assert FastArray.empty(shape, "float32").shape == expected


seeds = st.one_of(st.integers(-(2**65), 2**65), st.just(2**64), st.just(2**64 - 1), anything,
                  st.just(np.uint64(2**64 - 1)), st.just(np.int8(-1)))  # fmt: skip


@FUZZ
@given(scheme=st.sampled_from(sorted(DETERMINISTIC)), seed=seeds)
def test_fuzz_deterministic_schemes_seed(scheme, seed):
    valid = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and 0 <= int(seed) < 2**64
    if valid:
        assert np.array_equal(
            np.asarray(DETERMINISTIC[scheme](seed=seed)), np.asarray(DETERMINISTIC[scheme]())
        )
    else:
        with pytest.raises((TypeError, ValueError), match=r"^seed") as refused:
            DETERMINISTIC[scheme](seed=seed)
        assert "\n" not in str(refused.value)


def returns_huge(w):
    return 1e300 if w > 0.5 else w


def returns_nan(w):
    return w if w < 0.9 else math.nan


def returns_beyond_bfloat16(w):
    return 3.4e38 if w > 0.5 else w  # a float32 value that rounds to inf in bfloat16


@pytest.mark.parametrize(("fn", "dtype"), [(returns_huge, "float32"), (returns_nan, "float64"),
                                           (returns_beyond_bfloat16, "bfloat16")])  # fmt: skip
def test_custom_function_values_the_dtype_cannot_hold_are_refused(fn, dtype):
    """The function's result is rounded to the output dtype: values it cannot hold (or NaN)
    are refused with one line naming the function, never delivered as inf or NaN."""
    init = fastinit.custom(fn, draw="uniform")
    with pytest.raises(ValueError, match=rf"^custom function '{fn.__name__}' returned") as raised:
        init((1000,), seed=0, name="w", dtype=dtype)
    assert "\n" not in str(raised.value)
    fine = np.asarray(
        fastinit.custom(fn, draw="uniform", low=-1.0, high=0.5)((1000,), seed=0, name="w", dtype=dtype)
    )
    assert np.all(np.isfinite(fine.astype(np.float64)))
