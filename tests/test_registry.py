"""The registry is the one record of a scheme: every scheme has every fact, and the modules that
use a fact (the checkpoint writer, fastinit.dask, fastinit inspect) ask the record for it."""

import dataclasses
import inspect
import math

import numpy as np
import pytest

import fastinit
from fastinit.schemes import registry
from fastinit.schemes.record import CALL_KEYWORDS, Prediction, Scheme


def double(w):
    return 2.0 * w


# One example per scheme: (params, shape). A scheme added without a row here fails the first test.
EXAMPLES = {
    "uniform": ({"low": -0.5, "high": 1.5}, (30, 20)),
    "normal": ({"mean": 0.1, "std": 0.02}, (30, 20)),
    "truncated_normal": ({"std": 0.02, "a": -0.04, "b": 0.04}, (30, 20)),
    "variance_scaling": ({"scale": 2.0, "mode": "fan_avg"}, (3, 3, 16, 32)),
    "xavier_uniform": ({"gain": 2.0}, (30, 20)),
    "xavier_normal": ({}, (16, 8, 3, 3)),
    "kaiming_uniform": ({"a": math.sqrt(5)}, (30, 20)),
    "kaiming_normal": ({"nonlinearity": "relu"}, (30, 20)),
    "lecun_uniform": ({}, (30, 20)),
    "lecun_normal": ({}, (30, 20)),
    "orthogonal": ({"gain": 1.5, "batch_dims": 1}, (3, 30, 20)),
    "delta_orthogonal": ({"gain": 2.0}, (3, 3, 8, 16)),
    "constant": ({"value": 0.25}, (30, 20)),
    "zeros": ({}, (30, 20)),
    "ones": ({}, (30,)),
    "eye": ({}, (30, 20)),
    "dirac": ({"groups": 2}, (8, 6, 3, 3)),
    "sparse": ({"sparsity": 0.3, "std": 0.05}, (30, 20)),
    "values": ({"data": fastinit.schemes.encode_values(np.linspace(-2, 3, 600))}, (30, 20)),
    "custom": ({"function": double, "draw": "normal", "draw_params": {"std": 0.5}}, (30, 20)),
}
# the schemes whose parts cost the whole tensor (a QR, a ranking of whole columns)
WHOLE_TENSOR = {"orthogonal", "delta_orthogonal", "sparse"}


def test_every_scheme_has_an_example():
    assert set(EXAMPLES) == set(registry.RECORDS) == set(registry.SCHEMES)


def test_a_record_without_its_facts_cannot_be_made():
    with pytest.raises(TypeError):
        Scheme("new", fastinit.normal)  # no whole_tensor, no predict
    with pytest.raises(TypeError):
        Scheme("new", fastinit.normal, whole_tensor=False)  # no predict


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_record_has_every_fact(name):
    record = registry.RECORDS[name]
    params, shape = EXAMPLES[name]
    assert record.name == name and registry.SCHEMES[name] is record.function
    assert isinstance(record.whole_tensor, bool) and record.whole_tensor == (name in WHOLE_TENSOR)
    parameters = inspect.signature(record.function).parameters
    assert next(iter(parameters)) == "shape"
    assert all(parameters[k].kind is inspect.Parameter.KEYWORD_ONLY for k in CALL_KEYWORDS)
    init = fastinit.get_initializer(name, **dict(params))
    assert init.record is record and registry.record_of(init) is record
    assert registry.record_of(record.function) is record and registry.record_of(name) is record
    # serialization: a config round-trips, and the initializer draws what the function draws
    config = init.to_config()
    assert fastinit.Initializer.from_config(config) == init
    x = np.asarray(init(shape, seed=1, name="w", dtype="float64"))
    assert x.shape == shape and init.resolved
    # prediction: a Prediction for every scheme, and a usable one for every scheme but custom
    p = init.predict(shape)
    assert isinstance(p, Prediction)
    assert (p.kind == "unknown") == (name == "custom"), p
    if p.mean is not None:
        assert np.isfinite(p.mean) and p.std >= 0
    if p.kind == "exact" and p.low is not None:
        assert p.low <= x.min() and x.max() <= p.high
    if p.kind in ("orthogonal", "delta_orthogonal"):
        assert p.matrices is not None and p.gain is not None
        assert math.isclose(float(np.sqrt(np.mean(x**2))), p.std, rel_tol=1e-9)
    # a constant's value is its prediction
    if record.constant_value is not None:
        assert p.kind == "exact" and p.std == 0 and p.mean == init.constant_value
    # factored axes: axes of the tensor
    if record.factored_axes is not None:
        axes = record.factored_axes(record.arguments(shape, init.params))
        assert isinstance(axes, range) and set(axes) <= set(range(len(shape)))


def test_an_unresolved_custom_function_records_but_is_not_resolved():
    init = fastinit.Initializer.from_config(
        {"scheme": "custom", "function": "no_such_module:f", "draw": "uniform"}
    )
    assert not init.resolved and init.to_config()["function"] == "no_such_module:f"
    assert init.predict((4, 3)).kind == "unknown"


def test_the_writer_asks_the_record_whether_a_tensor_is_whole():
    """A scheme marked whole_tensor is written in one piece, whatever its name."""
    from fastinit.checkpoint.manifest import TensorSpec
    from fastinit.checkpoint.writer import whole_tensor
    from fastinit.dtypes import resolve_dtype

    def spec(init):
        return TensorSpec("w", (8, 4), resolve_dtype("float32"), init)

    assert whole_tensor(spec(fastinit.get_initializer("sparse", sparsity=0.5)))
    assert not whole_tensor(spec(fastinit.get_initializer("normal")))
    record = registry.RECORDS["normal"]
    patched = {**registry.RECORDS, "normal": dataclasses.replace(record, whole_tensor=True)}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(registry, "RECORDS", patched)
        assert whole_tensor(spec(fastinit.get_initializer("normal")))
