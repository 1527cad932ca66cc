"""Random draws inside a traced function would be frozen: detect them.

Tracing runs the user's function once. A random draw made then (`np.random.*`,
a `Generator`'s methods, Python's `random`) becomes a constant of the program
and is reused on every later call: dropout written as users write it would
keep one mask forever. NumPy cannot dispatch these calls to a tracer, so
tracediff watches the generators' states instead: the global ones (`np.random`'s
legacy state, Python's `random`) and every generator the traced function can
reach (its closure, the globals and functions it names, the attributes of a
bound method's object, its static arguments). A state that changed while
tracing raises `TracerError`.
"""

from __future__ import annotations

import functools
import random
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

_RNG_TYPES = (np.random.Generator, np.random.RandomState, np.random.BitGenerator, random.Random)
_MAX_DEPTH = 3  # how far through functions and objects the search for generators goes


def _state(rng: Any) -> Any:
    if isinstance(rng, np.random.Generator):
        s = rng.bit_generator.state
    elif isinstance(rng, np.random.RandomState):
        s = rng.get_state(legacy=False)
    elif isinstance(rng, np.random.BitGenerator):
        s = rng.state
    else:
        s = rng.getstate()
    return _frozen(s)


def _frozen(s: Any) -> Any:
    if isinstance(s, dict):
        return tuple((k, _frozen(v)) for k, v in s.items())
    if isinstance(s, (list, tuple)):
        return tuple(_frozen(v) for v in s)
    if isinstance(s, np.ndarray):
        return s.tobytes()
    return s


def _global_rngs() -> list:
    rngs = [random._inst]  # what random.random() & co. draw from
    legacy = getattr(np.random.mtrand, "_rand", None)  # what np.random.rand() & co. draw from
    if legacy is not None:
        rngs.append(legacy)
    return rngs


def _code_names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_names(c)


def _reachable(roots: Iterable[Any]) -> list:
    """Generators reachable from `roots` (functions, objects, values)."""
    found, seen = [], set()
    stack = [(r, 0) for r in roots]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (type, types.ModuleType, np.ndarray)):
            continue
        seen.add(id(obj))
        if isinstance(obj, _RNG_TYPES):
            found.append(obj)
            continue
        if depth >= _MAX_DEPTH:
            continue
        nxt = depth + 1
        if isinstance(obj, types.FunctionType):
            g = obj.__globals__
            stack += [(g[n], nxt) for n in set(_code_names(obj.__code__)) if n in g]
            for cell in obj.__closure__ or ():
                try:
                    stack.append((cell.cell_contents, nxt))
                except ValueError:  # an empty cell
                    pass
            stack += [(d, nxt) for d in obj.__defaults__ or ()]
            stack += [(d, nxt) for d in (obj.__kwdefaults__ or {}).values()]
        elif isinstance(obj, types.MethodType):
            stack += [(obj.__func__, depth), (obj.__self__, nxt)]
        elif isinstance(obj, functools.partial):
            stack += (
                [(obj.func, depth)] + [(a, nxt) for a in obj.args] + [(a, nxt) for a in obj.keywords.values()]
            )
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += [(x, nxt) for x in obj]
        elif isinstance(obj, dict):
            stack += [(x, nxt) for x in obj.values()]
        else:
            inner = getattr(obj, "fun", None)  # a transformed function: its user function
            if callable(inner):
                stack.append((inner, depth))
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict):
                stack += [(x, nxt) for x in d.values()]
    return found


class RandomWatch:
    """The states of every generator a traced function can reach, taken before tracing."""

    def __init__(self, fun: Callable, statics: Iterable[Any] = ()):
        self.fun = fun
        rngs = _global_rngs() + _reachable([fun, *statics])
        self.before = [(r, _state(r)) for r in {id(r): r for r in rngs}.values()]

    def moved(self) -> list:
        """The generators that drew numbers since the watch began (one look: another
        thread may move a global one at any time)."""
        return [rng for rng, state in self.before if _state(rng) != state]

    def check(self, error: type[Exception], where: str = "", moved: list | None = None) -> None:
        """Raise `error` if a generator drew numbers since the watch began (or if
        `moved`, the result of `self.moved()` filtered by the caller, is not empty)."""
        for rng in self.moved() if moved is None else moved:
            name = getattr(self.fun, "__name__", type(self.fun).__name__)
            if isinstance(rng, random.Random):
                kind = "Python's random module"
            elif any(rng is g for g in _global_rngs()):
                kind = "np.random"
            else:
                kind = f"a {type(rng).__name__}"
            raise error(
                f"{name} drew random numbers from {kind} while being traced{where}: the draw "
                "would be frozen into the traced program and reused on every call (dropout "
                "would keep one mask forever). Draw random arrays outside the function and "
                "pass them in as arguments, e.g. `mask = rng.random(x.shape) < p; "
                "step(params, x, mask)`. (Another thread drawing from the same generator "
                "while this one traced has the same effect.)"
            )


_CRandom = random.Random.__mro__[1]  # _random.Random, whose C methods draw
_RANDOM_FILE = random.__file__
_READ_ONLY = frozenset({"getstate", "get_state", "__getstate__", "__reduce__", "__reduce_ex__"})


def draws_from_globals(fn: Callable[[], Any]) -> tuple[Any, bool]:
    """(fn(), whether this thread called a method of Python's global generator
    meanwhile), seen by a profile hook, which is per thread: other threads' draws
    are not counted. (NumPy's generators are Cython code, which a profile hook
    does not see: they get no such second look.)"""
    ids = {id(random._inst)}
    drew = False

    def hook(frame, event, arg):
        nonlocal drew
        if event == "call":  # a method of random.Random written in Python (gauss keeps a value)
            code = frame.f_code
            if code.co_filename == _RANDOM_FILE and code.co_name not in _READ_ONLY:
                drew = drew or id(frame.f_locals.get("self")) in ids
            return
        if event != "c_call" or getattr(arg, "__name__", "") in _READ_ONLY:
            return
        owner = getattr(arg, "__self__", None)
        if owner is None and getattr(arg, "__objclass__", None) is _CRandom:
            owner = frame.f_locals.get("self")  # self.random(): an unbound method's call
        if id(owner) in ids:
            drew = True

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        result = fn()
    finally:
        sys.setprofile(previous)
    return result, drew
