"""Where an equation comes from: the user's source line (`file.py:line`) and, in
programs made by reverse mode, the sweep (forward or backward) that made it.

Both are kept per thread. Derivative rules and re-staging set them for the
equations they make (`src_context`, `phase_context`, `restage_context`);
otherwise the line is the innermost frame outside tracediff and NumPy.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import numpy as np

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))


class _Provenance(threading.local):
    """Per thread: two threads tracing at once never see each other's source
    lines or sweeps."""

    def __init__(self):
        self.src: list[str] = []  # source-line overrides (derivative rules, re-staging)
        self.phase: list[str] = [""]


_state = _Provenance()


@contextlib.contextmanager
def _pushed(*pairs: tuple[list, str]):
    """Push a value on each stack for the duration of the block."""
    for stack, value in pairs:
        stack.append(value)
    try:
        yield
    finally:
        for stack, _ in pairs:
            stack.pop()


def phase_context(phase: str):
    """Tag equations made inside as the forward or backward sweep."""
    return _pushed((_state.phase, phase))


def src_context(src: str):
    """Attribute equations made inside to `src` (derivative rules, re-staging)."""
    return _pushed((_state.src, src))


def restage_context(src: str, phase: str):
    """Re-staging an equation keeps its source line, and its sweep unless one is active."""
    st = _state
    return _pushed((st.src, src), (st.phase, st.phase[-1] or phase))


def current_phase() -> str:
    """The sweep the equations made now belong to ("" outside reverse mode)."""
    return _state.phase[-1]


def user_src() -> str:
    """`file.py:line` of the innermost frame outside tracediff and NumPy."""
    override = _state.src
    if override:
        return override[-1]
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not (fn.startswith(_PKG_DIR) or fn.startswith(_NUMPY_DIR) or fn.startswith("<frozen")):
            return f"{os.path.basename(fn)}:{f.f_lineno}"
        f = f.f_back
    return ""


def at(src: str) -> str:
    return f" (at {src})" if src else ""
