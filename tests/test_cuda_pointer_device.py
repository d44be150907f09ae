"""The GPU owning a CUDA out= is asked of the CUDA driver (cuda.bindings), not assumed current.

No GPU needed: the driver bindings are replaced by a stand-in that owns every pointer on GPU 3.
"""

import sys
import types

import pytest

from fastinit.backends.cuda import memory


@pytest.fixture
def driver_owning_everything_on_gpu_3(monkeypatch):
    driver = types.SimpleNamespace(
        CUpointer_attribute=types.SimpleNamespace(CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL="ordinal"),
        CUresult=types.SimpleNamespace(CUDA_SUCCESS=0),
        cuPointerGetAttribute=lambda attribute, pointer: (0, 3) if attribute == "ordinal" else (1, None),
    )
    bindings = types.ModuleType("cuda.bindings")
    bindings.driver = driver
    package = types.ModuleType("cuda")
    package.bindings = bindings
    monkeypatch.setitem(sys.modules, "cuda", package)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setattr(memory, "is_simulator", lambda: False)


def test_the_owning_gpu_comes_from_the_driver(driver_owning_everything_on_gpu_3):
    assert memory._pointer_device(0x7F0000000000) == 3
