"""Vectorizable math for generated loops (see bits.py for how it vectorizes).

One module per family; each function is named `<name>_f32` / `<name>_f64`,
takes and returns that float type, and is inlined into the fused loops by
the code generator (`FAST_CODE` in tracediff/prims/elementwise.py) unless
`td.jit(..., math="libm")`.
"""

from .bits import bits_of_f32, bits_of_f64, f32_from_bits, f64_from_bits, fma
from .exp import *  # noqa: F403
from .folds import *  # noqa: F403
from .ints import *  # noqa: F403
from .log import *  # noqa: F403
from .pow import *  # noqa: F403
from .tanh import *  # noqa: F403
from .trig import *  # noqa: F403

__all__ = ["bits_of_f32", "bits_of_f64", "f32_from_bits", "f64_from_bits", "fma"]
