"""Large arrays allocated inside compiled kernels get transparent huge pages,
as NumPy's own allocator does (NumPy calls madvise(MADV_HUGEPAGE) on arrays
of 4 MB and more; Numba's allocator does not).

Without this a fresh 16 MB output takes 4096 page faults of 4 KB on its first
write, which cost as much as W1's whole computation; with huge pages (where
the kernel's THP setting is "madvise", the common default) it takes eight.
"""

from __future__ import annotations

import sys

from llvmlite import ir as llir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

HUGE_MIN_BYTES = 1 << 22  # NumPy's threshold
_PAGE = 4096
_MADV_HUGEPAGE = 14  # Linux


@intrinsic
def _madvise(typingctx, addr, length, advice):
    """libc madvise(addr, length, advice), called by symbol (so the machine code
    caches: no process-specific addresses are baked in)."""
    sig = types.int32(types.intp, types.intp, types.int32)

    def codegen(context, builder, signature, args):
        i8p = llir.IntType(8).as_pointer()
        fnty = llir.FunctionType(llir.IntType(32), [i8p, llir.IntType(64), llir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "madvise")
        a, n, adv = args
        return builder.call(fn, [builder.inttoptr(a, i8p), n, adv])

    return sig, codegen


if sys.platform.startswith("linux"):

    @njit(cache=True)
    def advise_huge_pages(a) -> None:
        """Ask for huge pages for the whole pages inside `a`'s buffer (not yet touched)."""
        start = a.ctypes.data
        end = start + a.size * a.itemsize
        lo = (start + _PAGE - 1) // _PAGE * _PAGE
        hi = end // _PAGE * _PAGE
        if hi > lo:
            _madvise(lo, hi - lo, _MADV_HUGEPAGE)  # advice only: failure changes nothing

else:

    @njit(cache=True)
    def advise_huge_pages(a) -> None:
        pass
