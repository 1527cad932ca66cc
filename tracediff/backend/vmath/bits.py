"""The building blocks of tracediff's vectorizable math: bit casts between
floats and integers, and fused multiply-add, each one LLVM instruction that
the loop vectorizer turns into SIMD code (Numba's `math` functions are scalar
libm calls, which it cannot vectorize).

Every function in this package is `@njit(forceinline=True)` and branch-free
(`if` on values only picks between two computed results, which LLVM turns
into a select), so a generated fused loop that calls them still vectorizes.
`forceinline` marks the compiled function `alwaysinline` for LLVM: it is
compiled (or loaded from Numba's disk cache) once per signature and LLVM
inlines it where the loop calls it. Numba's own `inline="always"` copied and
re-typed its IR at every call site instead, which took 40 % of the cold
compile of a gradient with many fused loops (W4: 7.7 s -> 4.0 s).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as llir
from numba import njit, types
from numba.extending import intrinsic


def _bitcast(src, dst, dst_ir):
    """An intrinsic reinterpreting the bits of `src` as `dst` (same width).

    An integer source may be any integer type: Numba computes in int64, so
    the value is truncated (or extended) to the width first, as C would.
    """

    @intrinsic
    def cast(typingctx, x):
        if isinstance(src, types.Integer) and isinstance(x, types.Integer):
            sig = dst(x)
        elif x == src:
            sig = dst(src)
        else:
            return None

        def codegen(context, builder, signature, args):
            v = args[0]
            if isinstance(src, types.Integer):
                width = src.bitwidth
                if x.bitwidth > width:
                    v = builder.trunc(v, llir.IntType(width))
                elif x.bitwidth < width:
                    v = builder.sext(v, llir.IntType(width))
            return builder.bitcast(v, dst_ir)

        return sig, codegen

    return cast


f64_from_bits = _bitcast(types.int64, types.float64, llir.DoubleType())
bits_of_f64 = _bitcast(types.float64, types.int64, llir.IntType(64))
f32_from_bits = _bitcast(types.int32, types.float32, llir.FloatType())
bits_of_f32 = _bitcast(types.float32, types.int32, llir.IntType(32))


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma), for float32 or float64 operands
    of one type. Hardware FMA where the CPU has it; vectorizes."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@njit(forceinline=True, error_model="numpy", cache=True)
def pow2_f64(k):
    """2.0**k for an integer-valued k with a normal result (-1022 <= k <= 1023),
    built from its exponent bits."""
    return f64_from_bits((np.int64(k) + 1023) << 52)


@njit(forceinline=True, error_model="numpy", cache=True)
def pow2_f32(k):
    """float32 2**k for an integer-valued k in [-126, 127]."""
    return f32_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))
