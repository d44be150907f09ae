"""orthogonal and delta_orthogonal: the construction against torch's and JAX's algorithms,
orthogonality to float precision, the Haar distribution (the sign fix), index= / out= / dtypes,
batches, errors.

Statistical thresholds (fixed seeds and names; how often a correct scheme fails a check):
KS / binomial tests p > 1e-4; correlations |r| sqrt(N) <= 5 (two-sided p 5.7e-7).
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

import fastinit

torch = pytest.importorskip("torch")

KS_P = 1e-4
Z = 5.0
EPS32 = float(np.finfo(np.float32).eps)


def _bytes(x):
    return x.shape, x.dtype.name, x.tobytes()


def _flattening(shape, column_axis, batch_dims):
    """(batch, rows, cols) of the matrices, and the non-column dims (JAX's np.delete)."""
    batch, m = math.prod(shape[:batch_dims]), shape[batch_dims:]
    if column_axis is None:  # torch: dim 0 against the rest
        return batch, m[0], math.prod(m[1:]), None
    axis = column_axis % len(m)
    rest = tuple(d for i, d in enumerate(m) if i != axis)
    return batch, math.prod(rest), m[axis], rest


def _as_matrices(x, shape, column_axis=None, batch_dims=0):
    """The tensor viewed as its (batch, rows, cols) matrices, in float64."""
    x = np.asarray(x).astype(np.float64)
    batch, rows, cols, rest = _flattening(shape, column_axis, batch_dims)
    x = x.reshape((batch, *shape[batch_dims:]))
    if column_axis is not None:
        x = np.moveaxis(x, 1 + column_axis % (len(shape) - batch_dims), -1)
    return x.reshape(batch, rows, cols)


def _reference(shape, gain, column_axis, batch_dims, seed, name):
    """torch.nn.init.orthogonal_ line for line (normal fill, transpose if wide, QR, q *= sign(diag
    r), transpose back, times gain), on fastinit's own Gaussian stream: normal(prod(shape)) viewed
    as (batch, rows, cols); with column_axis, JAX's orthogonal: the matrix reshaped to
    np.delete(shape, column_axis) + (cols,) and the last axis moved to column_axis."""
    batch, rows, cols, rest = _flattening(shape, column_axis, batch_dims)
    g = np.asarray(fastinit.normal((batch * rows * cols,), seed=seed, name=name, dtype="float64"))
    out = []
    for a in g.reshape(batch, rows, cols):
        wide = rows < cols
        q, r = np.linalg.qr(a.T if wide else a)
        q = q * np.sign(np.diag(r))  # Q R with diag(R) > 0 is unique: any QR routine agrees
        out.append(q.T if wide else q)
    q = gain * np.stack(out)
    if column_axis is None:
        return q.reshape(shape)
    q = np.moveaxis(q.reshape((batch, *rest, cols)), -1, 1 + column_axis % (len(shape) - batch_dims))
    return q.reshape(shape)


# (shape, column_axis, batch_dims): tall, wide, square, torch's >2-D flattening, JAX's
# column_axis (0, positive, negative), batches of 1 and 2 dimensions
CASES = [
    ((8, 8), None, 0),
    ((20, 6), None, 0),
    ((6, 20), None, 0),
    ((5, 3, 2, 2), None, 0),  # torch: 5 x 12, wide
    ((12, 2, 3), None, 0),  # torch: 12 x 6, tall
    ((256, 64, 3, 3), None, 0),  # a conv weight: 256 x 576, wide
    ((3, 4, 5), 0, 0),  # JAX: columns on axis 0 (3 of them), 20 rows
    ((3, 4, 5), -1, 0),
    ((3, 4, 5), 1, 0),
    ((4, 3, 5), -2, 0),
    ((3, 3, 16, 32), -1, 0),  # a JAX conv kernel: 144 x 32
    ((10, 2), 0, 0),  # JAX: 2 rows, 10 columns: wide
    ((3, 6, 4), None, 1),
    ((4, 2, 3, 3), None, 1),  # a batch of torch-flattened 2 x 9
    ((2, 3, 5, 5), None, 2),
    ((2, 3, 4, 6), 0, 2),
    ((2, 3, 4, 6), -1, 2),
]
CASE_IDS = [f"{s}-ca{c}-b{b}" for s, c, b in CASES]


@pytest.mark.parametrize("gain", [1.0, 2.5, -0.5])
@pytest.mark.parametrize(("shape", "column_axis", "batch_dims"), CASES, ids=CASE_IDS)
def test_orthogonal_follows_torch_and_jax_construction(shape, column_axis, batch_dims, gain):
    kw = dict(seed=3, name="rnn.weight_hh")
    got = fastinit.orthogonal(
        shape, gain, column_axis=column_axis, batch_dims=batch_dims, dtype="float64", **kw
    )
    want = _reference(shape, gain, column_axis, batch_dims, **kw)
    assert got.shape == shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-12 * max(shape))


def _gram_error(q, gain):
    """max |Q^T Q - gain**2 I| over the matrices (Q Q^T for wide ones)."""
    _, rows, cols = q.shape
    if rows < cols:
        q = q.transpose(0, 2, 1)
    gram = q.transpose(0, 2, 1) @ q
    return np.abs(gram - gain**2 * np.eye(gram.shape[-1])).max()


@pytest.mark.parametrize("gain", [1.0, 3.0])
@pytest.mark.parametrize(
    ("shape", "column_axis", "batch_dims"),
    CASES + [((512, 128), None, 0), ((128, 512), None, 0), ((300, 300), None, 0)],
    ids=CASE_IDS + ["512x128", "128x512", "300x300"],
)
def test_orthogonal_float32_precision(shape, column_axis, batch_dims, gain):
    x = fastinit.orthogonal(shape, gain, column_axis=column_axis, batch_dims=batch_dims, seed=1, name="w")
    assert x.dtype.name == "float32" and x.shape == shape
    q = _as_matrices(x, shape, column_axis, batch_dims)
    n = max(q.shape[1:])
    # float32 Householder QR: |Q^T Q - I| ~ eps sqrt(n); measured 0.1-0.7 eps sqrt(n)
    assert _gram_error(q, gain) <= 8 * EPS32 * math.sqrt(n) * gain**2
    if batch_dims:  # the matrices of a batch are different
        assert len({m.tobytes() for m in q}) == q.shape[0]


def test_orthogonal_float64_precision():
    q = _as_matrices(fastinit.orthogonal((300, 200), dtype="float64", seed=2), (300, 200))
    assert _gram_error(q, 1.0) <= 1e-13


@pytest.mark.parametrize("gain", [2.0, 0.7, -1.3])
def test_orthogonal_gain_scales(gain):
    kw = dict(seed=4, name="w")
    one = np.asarray(fastinit.orthogonal((40, 30), **kw))
    scaled = fastinit.orthogonal((40, 30), gain, **kw)
    assert scaled.raw.tobytes() == (one * np.float32(gain)).tobytes()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize(("shape", "column_axis", "batch_dims"), [((64, 48), None, 0), ((3, 3, 8, 16), -1, 0),
                                                                   ((3, 10, 12), None, 1)], ids=str)  # fmt: skip
def test_orthogonal_low_precision_is_rounded_float32(shape, column_axis, batch_dims, dtype):
    kw = dict(column_axis=column_axis, batch_dims=batch_dims, seed=5, name="w")
    f32 = np.asarray(fastinit.orthogonal(shape, **kw))
    got = fastinit.orthogonal(shape, dtype=dtype, **kw)
    want = f32.astype(ml_dtypes.bfloat16).view(np.uint16) if dtype == "bfloat16" else f32.astype(np.float16)
    assert got.dtype.name == dtype and got.raw.tobytes() == want.tobytes()


# ---- Haar distribution ----------------------------------------------------------------------------
# Without the sign fix, LAPACK's Householder QR makes R[0, 0] = -sign(A[0, 0]) |A[:, 0]|, so
# Q[0, 0] = -|A[0, 0]| / |A[:, 0]| <= 0 for every matrix (the first-coordinate KS test fails with
# p ~ 0); a 3 x 3 Q is then a product of two reflections, det Q = +1 always (the determinant test
# fails); and ~80% of the diagonal of a large Q is negative (the diagonal-sign test fails).

N_MATRICES = 2000


@pytest.mark.parametrize(
    ("shape", "dim"),
    [((2, 2), 2), ((8, 8), 8), ((6, 3), 6), ((3, 6), 6)],
    ids=["2x2", "8x8", "tall-6x3", "wide-3x6"],
)
def test_haar_first_coordinate(shape, dim):
    # Every column of a Haar Q (every row of a wide one) is uniform on the sphere S^(dim-1), whose
    # first coordinate x has (x + 1) / 2 ~ Beta((dim - 1) / 2, (dim - 1) / 2).
    q = np.asarray(fastinit.orthogonal((N_MATRICES, *shape), batch_dims=1, seed=6, name="haar"))
    q = q.astype(np.float64)
    beta = stats.beta((dim - 1) / 2, (dim - 1) / 2)
    for entry in ((0, 0), (shape[0] - 1, shape[1] - 1)):
        x = q[:, entry[0], entry[1]]
        p = stats.kstest((x + 1) / 2, beta.cdf).pvalue
        assert p > KS_P, f"Q{entry}: KS p = {p:.3g}"
    # the matrices of the batch are independent: neighbours uncorrelated
    r = np.corrcoef(q[:-1, 0, 0], q[1:, 0, 0])[0, 1]
    assert abs(r) * math.sqrt(N_MATRICES - 1) <= Z


def test_haar_determinant_sign_is_balanced():
    q = np.asarray(fastinit.orthogonal((N_MATRICES, 3, 3), batch_dims=1, seed=7, name="det")).astype(
        np.float64
    )
    det = np.linalg.det(q)
    np.testing.assert_allclose(np.abs(det), 1.0, atol=1e-5)
    p = stats.binomtest(int((det > 0).sum()), N_MATRICES, 0.5).pvalue
    assert p > KS_P, f"binomial p = {p:.3g} ({(det > 0).sum()} of {N_MATRICES} positive)"


def test_haar_diagonal_signs_of_a_large_matrix():
    q = np.asarray(fastinit.orthogonal((512, 512), seed=8, name="big"))
    negative = int((np.diag(q) < 0).sum())
    p = stats.binomtest(negative, 512, 0.5).pvalue
    assert p > KS_P, f"binomial p = {p:.3g} ({negative} of 512 diagonal entries negative)"


def test_orthogonal_streams_depend_on_seed_and_name():
    base = fastinit.orthogonal((16, 16), seed=1, name="a")
    assert _bytes(base) == _bytes(fastinit.orthogonal((16, 16), seed=1, name="a"))
    for kw in (dict(seed=1, name="b"), dict(seed=2, name="a")):
        assert base.tobytes() != fastinit.orthogonal((16, 16), **kw).tobytes()


# ---- index= and out= --------------------------------------------------------------------------

INDEX_CASES = [
    ((6, 10), None, 0, (slice(1, None, 2),)),
    ((6, 10), None, 0, (3,)),
    ((6, 10), None, 0, (Ellipsis, slice(2, 8, 3))),
    ((4, 3, 5), None, 0, (1, slice(None), 2)),
    ((4, 3, 5), 0, 0, (slice(None), 1)),
    ((4, 3, 5), -1, 0, (slice(None, None, -1), slice(0, 3, 2), slice(1, 4))),
    ((5, 4, 6), None, 1, (slice(1, 4),)),
    ((5, 4, 6), None, 1, (2,)),
    ((5, 4, 6), None, 1, (slice(None, None, -2), 1, slice(0, 6, 2))),
    ((5, 4, 6), 0, 1, (Ellipsis, 3)),
    ((2, 3, 4, 4), None, 2, (1, slice(0, 3, 2))),
    ((2, 3, 4, 4), None, 2, (Ellipsis, 0)),
    ((2, 3, 4, 4), -2, 2, (0, 2, 3, 1)),  # one element: a 0-d result
    ((6, 10), None, 0, (2, 3)),
    ((4, 3, 5), 0, 0, (1, -1, 3)),
    ((6, 10), None, 0, ()),
]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize(("shape", "column_axis", "batch_dims", "index"), INDEX_CASES,
                         ids=[f"{s}-ca{c}-b{b}-{i!r}" for s, c, b, i in INDEX_CASES])  # fmt: skip
def test_orthogonal_index_equals_full_tensor_indexed(shape, column_axis, batch_dims, index, dtype):
    kw = dict(column_axis=column_axis, batch_dims=batch_dims, seed=9, name="w", dtype=dtype)
    full = fastinit.orthogonal(shape, **kw)
    want = np.array(full.raw[index])  # (np.ascontiguousarray would make a 0-d result 1-d)
    part = fastinit.orthogonal(shape, index=index, **kw)
    assert part.shape == want.shape and part.raw.tobytes() == want.tobytes()
    tout = torch.empty(want.shape, dtype=getattr(torch, dtype))
    fastinit.orthogonal(shape, index=index, out=tout, **{k: v for k, v in kw.items() if k != "dtype"})
    view = tout.view(torch.int16).numpy() if dtype == "bfloat16" else tout.numpy()
    assert view.tobytes() == want.tobytes()


def test_orthogonal_out_numpy():
    want = fastinit.orthogonal((7, 5), seed=1, name="w", dtype="float64")
    out = np.zeros((7, 5))
    assert fastinit.orthogonal((7, 5), seed=1, name="w", out=out) is out
    assert out.tobytes() == want.tobytes()


# ---- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (5,)], ids=str)
def test_orthogonal_below_2d_matches_torch(shape):
    with pytest.raises(ValueError) as theirs:
        torch.nn.init.orthogonal_(torch.empty(shape))
    with pytest.raises(ValueError) as ours:
        fastinit.orthogonal(shape)
    assert str(ours.value) == str(theirs.value) == "Only tensors with 2 or more dimensions are supported"


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        (dict(shape=(3, 4), batch_dims=1), ValueError, "2 or more dimensions"),
        (dict(shape=(2, 3, 4), batch_dims=2), ValueError, "2 or more dimensions"),
        (dict(shape=(3, 4), batch_dims=-1), ValueError, "batch_dims"),
        (dict(shape=(3, 4), batch_dims=True), ValueError, "batch_dims"),
        (dict(shape=(3, 4), batch_dims=1.0), ValueError, "batch_dims"),
        (dict(shape=(3, 4), batch_dims="1"), ValueError, "batch_dims"),
        (dict(shape=(3, 4), column_axis=2), ValueError, "column_axis"),
        (dict(shape=(3, 4), column_axis=-3), ValueError, "column_axis"),
        (dict(shape=(2, 3, 4), column_axis=2, batch_dims=1), ValueError, "column_axis"),
        (dict(shape=(3, 4), column_axis=1.0), TypeError, "column_axis"),
        (dict(shape=(3, 4), column_axis=True), TypeError, "column_axis"),
        (dict(shape=(3, 4), column_axis="0"), TypeError, "column_axis"),
        (dict(shape=(3, 4), gain="1"), TypeError, "gain"),
        (dict(shape=(3, 4), gain=math.nan), ValueError, "gain"),
        (dict(shape=(3.0, 4)), TypeError, "shape"),
        (dict(shape=(3, -4)), ValueError, "shape"),
        (dict(shape=(3, 4), dtype="int32"), (TypeError, ValueError), "dtype"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_orthogonal_errors(kwargs, error, word):
    kwargs = dict(kwargs)
    shape = kwargs.pop("shape")
    with pytest.raises(error, match=word):
        fastinit.orthogonal(shape, **kwargs)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (3, 0, 2)], ids=str)
def test_orthogonal_zero_size(shape):
    got = fastinit.orthogonal(shape)
    assert got.shape == shape and got.raw.size == 0


# ==== delta_orthogonal =============================================================================

DELTA_CASES = [
    ((3, 4, 4), -1),
    ((4, 8, 8), -1),  # even kernel: centre (k - 1) // 2 = 1 (torch's dirac_ would use k // 2 = 2)
    ((1, 2, 5), -1),
    ((3, 3, 16, 32), -1),
    ((2, 2, 4, 4), -1),
    ((5, 4, 2, 7), -1),
    ((2, 5, 3, 3, 6), -1),
    ((1, 1, 1, 4, 4), -1),
    ((3, 3, 8, 12), -2),  # columns on the input axis: an 12 x 8 tall matrix
    ((3, 3, 8, 12), 0),  # column_axis of the (in, out) matrix: same as -2
]


def _jax_delta(shape, gain, column_axis):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    init = jax.nn.initializers.delta_orthogonal(scale=gain, column_axis=column_axis)
    return np.asarray(init(jax.random.key(0), shape, jnp.float32))


@pytest.mark.parametrize("gain", [1.0, 2.0])
@pytest.mark.parametrize(("shape", "column_axis"), DELTA_CASES, ids=[f"{s}-ca{c}" for s, c in DELTA_CASES])
def test_delta_orthogonal_matches_jax(shape, column_axis, gain):
    kw = dict(seed=10, name="conv.kernel")
    got = fastinit.delta_orthogonal(shape, gain, column_axis=column_axis, **kw)
    assert got.shape == shape and got.dtype.name == "float32"
    x = np.asarray(got)
    # the same non-zero pattern as JAX's (its values come from its own generator)
    np.testing.assert_array_equal(x != 0, _jax_delta(shape, gain, column_axis) != 0)
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    matrix = fastinit.orthogonal(shape[-2:], gain, column_axis=column_axis, **kw)
    assert x[centre].tobytes() == matrix.raw.tobytes()
    rest = x.copy()
    rest[centre] = 0
    assert not rest.any()
    q = _as_matrices(x[centre], shape[-2:], column_axis)
    assert _gram_error(q, gain) <= 8 * EPS32 * math.sqrt(max(shape[-2:])) * gain**2


@pytest.mark.parametrize("shape", [(4, 4), (3,), (1, 1, 1, 1, 4, 4), (3, 5, 4), (3, 3, 9, 8)], ids=str)
def test_delta_orthogonal_errors_where_jax_errs(shape):
    with pytest.raises(ValueError) as theirs:
        _jax_delta(shape, 1.0, -1)
    with pytest.raises(ValueError) as ours:
        fastinit.delta_orthogonal(shape)
    if "fan_in" in str(theirs.value):
        assert str(ours.value) == str(theirs.value)
    else:
        assert "3D, 4D or 5D" in str(ours.value)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize(
    "index", [(1,), (Ellipsis, slice(1, 9, 3)), (slice(None), 1, slice(0, 4, 2)), ()], ids=repr
)
def test_delta_orthogonal_index_out_dtype(index, dtype):
    kw = dict(seed=11, name="k", dtype=dtype)
    full = fastinit.delta_orthogonal((3, 3, 4, 8), **kw)
    want = np.array(full.raw[index])  # (np.ascontiguousarray would make a 0-d result 1-d)
    part = fastinit.delta_orthogonal((3, 3, 4, 8), index=index, **kw)
    assert part.raw.tobytes() == want.tobytes()
    tout = torch.empty(want.shape, dtype=getattr(torch, dtype))
    fastinit.delta_orthogonal((3, 3, 4, 8), seed=11, name="k", index=index, out=tout)
    view = tout.view(torch.int16).numpy() if dtype == "bfloat16" else tout.numpy()
    assert view.tobytes() == want.tobytes()
    if dtype != "float32":  # computed in float32 (float64 for float64) and rounded once
        f = np.asarray(fastinit.delta_orthogonal((3, 3, 4, 8), seed=11, name="k",
                                                 dtype="float64" if dtype == "float64" else "float32"))  # fmt: skip
        rounded = f.astype(ml_dtypes.bfloat16).view(np.uint16) if dtype == "bfloat16" else f
        assert full.raw.tobytes() == rounded.tobytes()
