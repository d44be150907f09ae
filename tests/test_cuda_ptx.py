"""The CUDA kernels compiled to PTX, without a GPU: the GPU rounds exactly as the CPU does.

fastinit's float code writes every multiply-add it wants fused as an explicit ``fma``
(llvm.fma), so CPU and GPU round identically, provided the CUDA toolchain fuses nothing else.
Two compilers could:

- NVVM, which contracts ``a * b + c`` by default (``-fma=1``): every kernel signature is
  compiled with the default and with ``-fma=0``; the instructions must be the same (``-fma=0``
  only spells plain ``mul``/``add`` with an explicit ``.rn``), so NVVM fused nothing and every
  ``fma.rn`` comes from an explicit fma in the source;
- ptxas, which may fuse a ``mul`` with an ``add``/``sub`` when neither carries a rounding
  modifier: every such pair in the PTX must multiply by a power of two (an exact product, so
  fused or not the result is the same).

A control kernel written with a plain ``a * b + c`` shows both checks catch a contraction.
Skipped, with the reason, where NVVM (the nvidia-nvvm wheel) is not installed.
"""

import re
import struct
import types

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")

CC = (9, 0)  # H100; the PTX of other targets differs in instruction choice, not in rounding


@pytest.fixture(scope="module")
def compile_ptx():
    """compile_ptx(pyfunc, signature, **nvvm_options) -> PTX text, with no GPU or driver."""
    from numba import cuda
    from numba.cuda import codegen, cuda_paths
    from numba.cuda import dispatcher as cuda_dispatcher
    from numba.cuda.core import config

    from fastinit.backends import cuda as backend

    extra: dict = {}
    compile_ir = codegen.nvvm.compile_ir
    get_nvrtc_path = cuda_paths._get_nvrtc_path

    def compile_ir_with_options(ir, **options):
        return compile_ir(ir, **{**options, **extra})

    def nvrtc_path_if_any():
        try:
            return get_nvrtc_path()
        except Exception:  # not installed: PTX needs only NVVM and libdevice
            return cuda_paths._env_path_tuple("<not installed>", None)

    with pytest.MonkeyPatch.context() as mp:
        # Device functions ask the current device for its compute capability, the architecture
        # list comes from NVRTC, and numba-cuda looks NVRTC up along with libdevice: give the
        # first two without a GPU, and let the lookup go on without NVRTC (the test extra
        # installs only the NVVM wheel, which has libdevice).
        fake_device = types.SimpleNamespace(compute_capability=CC)
        mp.setattr(cuda_dispatcher, "get_current_device", lambda: fake_device)
        mp.setattr(config, "FORCE_CUDA_CC", CC)
        mp.setattr(cuda_paths, "_get_nvrtc_path", nvrtc_path_if_any)
        if hasattr(cuda_paths.get_cuda_paths, "_cached_result"):
            mp.delattr(cuda_paths.get_cuda_paths, "_cached_result")
        try:
            from numba.cuda.cudadrv.nvvm import NVVM, LibDevice

            NVVM()
            LibDevice()
        except Exception as error:  # libnvvm or libdevice missing or unusable
            pytest.skip(f"NVVM is not available, so the kernels cannot be compiled to PTX here: {error}")
        mp.setattr(codegen.nvvm, "compile_ir", compile_ir_with_options)
        code = backend.device_code
        for name, value in vars(code).items():  # the globals bind() rebinds, put back afterwards
            if name == "cuda" or name.endswith("_dev") or name == "_libdevice":
                mp.setattr(code, name, value)
        code.bind(cuda)

        def compile_ptx(pyfunc, signature, **nvvm_options):
            extra.clear()
            extra.update(nvvm_options)
            ptx, _ = cuda.compile_ptx(pyfunc, signature, cc=CC)
            return ptx

        yield compile_ptx


def kernel_signatures():
    from fastinit.backends import cuda as backend

    return [(name, i, sig) for name, sigs in backend.signatures().items() for i, sig in enumerate(sigs)]


INSTRUCTION = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.]*)(?:\s+([^;]*))?;", re.M)
PLAIN_ARITH = re.compile(r"(mul|add|sub)(?:\.rn)?\.(f32|f64)")


def instructions(ptx):
    """(opcode, operands) of every instruction, with the .rn of plain mul/add/sub dropped
    (and the kernel's mangled name, which numbers each compilation, replaced)."""
    out = []
    for m in INSTRUCTION.finditer(re.sub(r"_ZN\w+", "KERNEL", ptx)):
        op, operands = m.group(1), m.group(2) or ""
        plain = PLAIN_ARITH.fullmatch(op)
        if plain:
            op = f"{plain.group(1)}.{plain.group(2)}"
        out.append((op, tuple(a.strip() for a in operands.split(",")) if operands else ()))
    return out


def fusable_pairs(ptx):
    """(mul, add/sub) instruction pairs ptxas may fuse: an unrounded mul.f32/f64 whose result
    reaches an unrounded add/sub.f32/f64, directly or through mov/neg."""
    uses: dict[str, list] = {}
    muls = []
    for op, args in instructions_raw(ptx):
        for a in args[1:]:
            for reg in re.findall(r"%\w+", a):
                uses.setdefault(reg, []).append((op, args))
        if re.fullmatch(r"mul\.f(32|64)", op):
            muls.append((op, args))
    pairs = []
    for mul in muls:
        frontier, seen = [mul[1][0]], set()
        while frontier:
            reg = frontier.pop()
            if reg in seen:
                continue
            seen.add(reg)
            for op, args in uses.get(reg, []):
                if re.fullmatch(r"(mov|neg)\.f(32|64)", op):
                    frontier.append(args[0])
                elif re.fullmatch(r"(add|sub)\.f(32|64)", op):
                    pairs.append((mul, (op, args)))
    return pairs


def instructions_raw(ptx):
    return [
        (m.group(1), tuple(a.strip() for a in (m.group(2) or "").split(",")) if m.group(2) else ())
        for m in INSTRUCTION.finditer(ptx)
    ]


def power_of_two_immediate(operand: str) -> bool:
    """A PTX float immediate (0fXXXXXXXX / 0dXXXXXXXXXXXXXXXX) that is +-2**k, normal."""
    if operand.startswith("0f") and len(operand) == 10:
        bits = int(operand[2:], 16)
        return bits & 0x7FFFFF == 0 and 0 < (bits >> 23) & 0xFF < 0xFF
    if operand.startswith("0d") and len(operand) == 18:
        bits = int(operand[2:], 16)
        return bits & ((1 << 52) - 1) == 0 and 0 < (bits >> 52) & 0x7FF < 0x7FF
    return False


def test_power_of_two_immediates():
    as_f32 = lambda x: f"0f{struct.unpack('<I', struct.pack('<f', x))[0]:08X}"  # noqa: E731
    as_f64 = lambda x: f"0d{struct.unpack('<Q', struct.pack('<d', x))[0]:016X}"  # noqa: E731
    assert all(power_of_two_immediate(f(x)) for f in (as_f32, as_f64) for x in (-2.0, 0.5, 2.0**-20))
    assert not any(
        power_of_two_immediate(f(x)) for f in (as_f32, as_f64) for x in (3.0, 0.1, 0.0, float("inf"))
    )
    assert not power_of_two_immediate("%fd3")


@pytest.mark.parametrize(
    "name, i, signature", kernel_signatures(), ids=[f"{n}-{i}" for n, i, _ in kernel_signatures()]
)
def test_kernel_ptx_has_no_contraction(compile_ptx, name, i, signature):
    from fastinit.backends import cuda as backend

    default = compile_ptx(backend.PY_KERNELS[name], signature)
    no_contraction = compile_ptx(backend.PY_KERNELS[name], signature, fma=False)
    assert ".entry" in default and "call" not in default  # one kernel, everything inlined
    assert instructions(default) == instructions(no_contraction), "NVVM contracted a multiply-add"
    opcodes = [op for op, _ in instructions(default)]
    assert not [op for op in opcodes if re.search(r"\.(ftz|approx|full)\b", op)], (
        "non-IEEE float instructions"
    )
    assert all(op in ("div.rn.f32", "div.rn.f64") for op in opcodes if re.fullmatch(r"div\.\S*f(32|64)", op))
    assert all(op.startswith("sqrt.rn.") for op in opcodes if op.startswith("sqrt."))
    if name != "scatter":  # the explicit fmas (uniform kernels: one per value, low + u * scale)
        assert opcodes.count("fma.rn.f32") + opcodes.count("fma.rn.f64") > (0 if "uniform" in name else 10)
    for mul, add in fusable_pairs(default):
        assert any(power_of_two_immediate(a) for a in mul[1][1:]), (
            f"ptxas may fuse {mul} into {add}, and the product is not exact"
        )


def _plain_multiply_add(out, a, b, c):
    out[0] = a[0] * b[0] + c[0]


def test_the_checks_catch_a_contraction(compile_ptx):
    from numba import types as nt

    signature = (nt.float32[::1],) * 4
    default = compile_ptx(_plain_multiply_add, signature)
    no_contraction = compile_ptx(_plain_multiply_add, signature, fma=False)
    assert instructions(default) != instructions(no_contraction)
    assert "fma.rn.f32" in default and "fma.rn.f32" not in no_contraction
    # with -fma=0 NVVM leaves the pair unfused but marks both .rn; unmarked, ptxas could fuse it
    unmarked = no_contraction.replace("mul.rn.f32", "mul.f32").replace("add.rn.f32", "add.f32")
    assert fusable_pairs(unmarked) and not fusable_pairs(no_contraction)


def registers_per_thread(ptx: str) -> int | None:
    """ptxas's register count for the one kernel of ``ptx`` (sm_90), through nvJitLink; None
    where nvJitLink is not installed."""
    try:
        from cuda.bindings import nvjitlink

        handle = nvjitlink.create(2, [f"-arch=sm_{CC[0]}{CC[1]}", "-verbose"])
    except Exception:  # no cuda-bindings, or no libnvJitLink
        return None
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    counts = re.findall(r"[Uu]sed (\d+) registers", log.decode(errors="replace"))
    return int(counts[0]) if counts else None


@pytest.mark.parametrize(
    "name", ["fill32", "fill64", "fill32_dense_truncnorm", "fill64_dense_tail", "scatter"]
)
def test_default_block_size_fits_the_register_file(compile_ptx, name):
    """A block of BLOCK_SIZE threads must fit the 64K registers a block may use, or every launch
    fails with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES (which the simulator cannot show). At
    1024 threads per block the kernels do not fit (fill32 uses about 124 registers)."""
    from fastinit.backends import cuda as backend

    registers = registers_per_thread(compile_ptx(backend.PY_KERNELS[name], backend.signatures()[name][0]))
    if registers is None:
        pytest.skip("nvJitLink (cuda-bindings' nvjitlink) is not installed: no register count")
    allocated = -(-registers // 8) * 8  # registers are allocated per thread in units of 8
    assert allocated * backend.BLOCK_SIZE <= 65536, f"{name}: {registers} registers per thread"


@pytest.mark.parametrize("name", ["fill32_dense_uniform", "fill32_dense_normal_bf16", "fill64_dense_normal"])
def test_dense_kernels_philox_and_stores_compile_lean(compile_ptx, name):
    """The dense kernels' Philox is the uint32 form (rng/philox.py ``philox4x32_rounds_u32``):
    one ``mul.hi.u32`` and one 32-bit ``mul.lo`` per product (ptxas fuses each pair into one
    IMAD.WIDE.U32), 2 products per round, and no 64-bit multiply by a Philox constant (the CPU's
    uint64 form, which costs 6 SASS per round instead of 4). Their stores index with unsigned
    integers: Numba's wrap-around of negative indices (``i < 0: i + len``) shows in the PTX as
    a ``selp`` or compare against zero per store, and cost each store its own address."""
    from fastinit.backends import cuda as backend
    from fastinit.rng.philox import PHILOX_M0, PHILOX_M1, ROUNDS

    ptx = compile_ptx(backend.PY_KERNELS[name], backend.signatures()[name][0])
    opcodes = [op for op, _ in instructions(ptx)]
    # two loops (whole tiles, partial tiles), one Philox block each
    assert opcodes.count("mul.hi.u32") == 2 * 2 * ROUNDS, "one Philox block per loop iteration, uint32 form"
    assert opcodes.count("mul.lo.s32") + opcodes.count("mul.lo.u32") >= 2 * 2 * ROUNDS
    constants = (str(PHILOX_M0), str(PHILOX_M1), str(PHILOX_M0 - 2**32), str(PHILOX_M1 - 2**32))
    wide = [args for op, args in instructions(ptx) if op.startswith("mul.") and op.endswith("64")]
    assert not [a for a in wide if set(a) & set(constants)], "a 64-bit multiply by a Philox constant"
    stores = [args for op, args in instructions(ptx) if op.startswith("st.global")]
    assert stores and len({re.match(r"\[(%\w+)", a[0]).group(1) for a in stores}) < len(stores), (
        "every store computes its own address: are the indices signed again?"
    )
