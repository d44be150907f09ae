"""LLVM operations Numba does not expose, written as intrinsics.

- ``fma(a, b, c)``: ``llvm.fma``, one rounding of a*b + c. Every multiply-add in the float
  code is written with it, because the CUDA compiler (NVVM) contracts ``a*b + c`` into an
  FMA by default and the CPU does not: writing it explicitly makes both targets round the same.
  With AVX2+FMA the vectorizer turns it into ``vfmadd``.
- ``f32_as_i32`` / ``i32_as_f32`` and ``f64_as_i64`` / ``i64_as_f64``: bit casts. Scalar
  ``.view`` is refused inside ``prange`` loops, and the casts vectorize to nothing.

- ``select(cond, a, b)``: LLVM ``select`` (a if cond else b) with no control flow: a vector
  blend once vectorized. Used where a Python conditional expression, inlined through several
  levels of Numba functions, trips Numba's SSA checks.

They lower to plain LLVM IR, so numba-cuda compiles them too (checked with ``compile_ptx``).
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.core.extending import intrinsic

__all__ = ["fma", "select", "f32_as_i32", "i32_as_f32", "f64_as_i64", "i64_as_f64"]


@intrinsic
def fma(typingctx, a, b, c):
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def select(typingctx, cond, a, b):
    if not isinstance(cond, types.Boolean) or a != b:
        return None
    sig = a(cond, a, b)

    def codegen(context, builder, signature, args):
        flag = context.cast(builder, args[0], signature.args[0], types.boolean)
        return builder.select(
            builder.trunc(flag, ir.IntType(1)) if flag.type != ir.IntType(1) else flag, args[1], args[2]
        )

    return sig, codegen


def _bitcast(src, dst):
    @intrinsic
    def cast(typingctx, x):
        if x != src:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    return cast


f32_as_i32 = _bitcast(types.float32, types.int32)
i32_as_f32 = _bitcast(types.int32, types.float32)
f64_as_i64 = _bitcast(types.float64, types.int64)
i64_as_f64 = _bitcast(types.int64, types.float64)
