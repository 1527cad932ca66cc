"""Python control flow on traced values: the helpers converted code calls.

The source transformation (`pyconv`) rewrites `if`, `while`, `for`, `and`,
`or`, `not`, conditional expressions and in-place stores into calls of the
functions here. Each decides at trace time: a concrete condition runs as plain
Python (static branches, unrolled loops), so nothing that worked before
changes; a traced one becomes a `cond`, `while` or `loop` equation whose
regions are the branches and bodies, traced as sub-programs.

The state a region changes is (1) the local variables it assigns (read and
written through the `get`/`set` functions the converter makes) and (2) traced
arrays of the enclosing trace it updates in place (moved into the region while
it is traced, see `builder.localize`). Both become outputs of the region.
"""

from __future__ import annotations

from .loops import UNROLL_ALWAYS, UNROLL_UNUSED, Enumerate, Unstageable, Zip, for_stmt, while_stmt
from .regions import Region, Undefined, and_, if_exp, if_stmt, not_, or_
from .stores import NEVER, aug, aug_item, call_out, fn, getitem, index, load, setitem, ufunc_at

__all__ = [
    "NEVER",
    "UNROLL_ALWAYS",
    "UNROLL_UNUSED",
    "Enumerate",
    "Region",
    "Undefined",
    "Unstageable",
    "Zip",
    "and_",
    "aug",
    "aug_item",
    "call_out",
    "fn",
    "getitem",
    "for_stmt",
    "if_exp",
    "if_stmt",
    "index",
    "load",
    "not_",
    "or_",
    "setitem",
    "ufunc_at",
    "while_stmt",
]
