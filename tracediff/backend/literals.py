"""How generated code spells a dtype and a constant."""

from __future__ import annotations

import math

import numpy as np


def dtype_ctor(dt: np.dtype) -> str:
    dt = np.dtype(dt)
    return "np.bool_" if dt == np.dtype(bool) else f"np.{dt.name}"


def literal(val, dt: np.dtype) -> str:
    dt = np.dtype(dt)
    v = np.asarray(val).item()
    if dt == np.dtype(bool):
        return repr(bool(v))
    if dt.kind == "c":
        part = np.dtype(f"f{dt.itemsize // 2}")
        return f"{dtype_ctor(dt)}(complex({literal(v.real, part)}, {literal(v.imag, part)}))"
    if dt.kind == "f":
        if math.isnan(v):
            return f"{dtype_ctor(dt)}(np.nan)"
        if math.isinf(v):
            return f"{dtype_ctor(dt)}({'-' if v < 0 else ''}np.inf)"
        return f"{dtype_ctor(dt)}({float(v)!r})"
    return f"{dtype_ctor(dt)}({int(v)})"
