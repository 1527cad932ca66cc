"""Bad input, everywhere: one table of misuses and what each must give.

Every row performs one thing a user can get wrong and states the outcome a
NumPy/JAX user should expect (API.md, "Errors"):

- ``Raises(exc, *patterns, line=tag)``: an exception of the documented type
  whose message matches every regex in ``patterns`` (it names the operation,
  the dtype/shape or the argument) and, where the misuse sits inside the
  user's function, ends with the user's source line (``test_misuse.py:NN``,
  the line below carrying the marker ``# L:tag``);
- ``Ok(check)``: no exception, and ``check(result)`` passes (NumPy's answer);
- ``OkOr(check, Raises(...))``: either of the two, where both are reasonable
  (a feature that may be supported later), but never a third outcome.

Whatever is raised must not be a raw Numba/llvmlite error. Rows marked
``isolate=True`` could crash or hang the interpreter if tracediff got them
wrong (enormous allocations, out-of-bounds reads in compiled code), so they
run in a forked child with a time limit.
"""

from __future__ import annotations

import collections
import os
import pickle
import re
import select
import signal
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracediff as td

# --- where a marked line is -------------------------------------------------------

_SRC = Path(__file__).read_text().splitlines()


def _lineno(tag: str) -> int:
    hits = [i + 1 for i, s in enumerate(_SRC) if s.rstrip().endswith(f"# L:{tag}")]
    assert len(hits) == 1, f"marker # L:{tag} found {len(hits)} times"
    return hits[0]


def _at(tag: str) -> str:
    """A regex for `(at test_misuse.py:NN)`, NN the line marked `# L:tag`."""
    return re.escape(f"test_misuse.py:{_lineno(tag)}") + r"\b"


# --- expectations -----------------------------------------------------------------


class Raises:
    """An exception of type `exc` whose message matches `patterns` (and names `line`)."""

    def __init__(self, exc, *patterns: str, line: str | None = None):
        self.exc, self.patterns, self.line = exc, patterns, line

    def verify(self, e: BaseException) -> None:
        msg = str(e)
        desc = f"{type(e).__module__}.{type(e).__qualname__}: {msg}"
        mod = type(e).__module__ or ""
        assert not mod.startswith(("numba", "llvmlite")), f"a raw Numba error escaped: {desc}"
        assert isinstance(e, self.exc), f"expected {self.exc}, got {desc}"
        for p in self.patterns:
            assert re.search(p, msg, re.IGNORECASE | re.DOTALL), f"message does not match {p!r}: {desc}"
        if self.line is not None:
            want = _at(self.line)
            assert re.search(want, msg), f"message does not name the user's line {want}: {desc}"


@dataclass
class Ok:
    check: Callable[[Any], None]


@dataclass
class OkOr:
    check: Callable[[Any], None]
    raises: Raises


@dataclass
class Case:
    id: str
    call: Callable[[], Any]
    expect: Raises | Ok | OkOr
    isolate: bool = False


def _outcome(case: Case) -> None:
    """Run one row and check its outcome (raises AssertionError on a mismatch)."""
    exp = case.expect
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN/inf rows warn as NumPy does
        try:
            result = case.call()
        except AssertionError:
            raise
        except BaseException as e:  # noqa: BLE001  (MemoryError, user exceptions, ...)
            if isinstance(exp, Ok):
                raise AssertionError(
                    f"expected a result, got {type(e).__module__}.{type(e).__qualname__}: {e}\n"
                    + "".join(traceback.format_exception(e))[-3000:]
                ) from None
            (exp if isinstance(exp, Raises) else exp.raises).verify(e)
            return
    if isinstance(exp, Raises):
        raise AssertionError(f"expected {exp.exc} matching {exp.patterns}, got a result: {result!r}"[:2000])
    exp.check(result)


def _run_isolated(case: Case, timeout: float = 120.0) -> None:
    """Run the row in a forked child: a crash or a hang fails the row, not the session."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            try:
                _outcome(case)
                payload = ("pass", "")
            except BaseException as e:  # noqa: BLE001
                payload = ("fail", f"{type(e).__name__}: {e}")
            with os.fdopen(w, "wb") as f:
                f.write(pickle.dumps(payload))
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    data = b""
    with os.fdopen(r, "rb") as f:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"{case.id}: hung (no outcome after {timeout:.0f} s)")
            ready, _, _ = select.select([f], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(f.fileno(), 1 << 20)
                if not chunk:
                    break
                data += chunk
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise AssertionError(f"{case.id}: crashed with signal {os.WTERMSIG(status)}")
    assert data, f"{case.id}: the child exited without an outcome (status {status})"
    verdict, text = pickle.loads(data)
    assert verdict == "pass", text


@pytest.fixture(scope="module", autouse=True)
def _own_cache_dir(tmp_path_factory):
    old = os.environ.get("TRACEDIFF_CACHE_DIR")
    os.environ["TRACEDIFF_CACHE_DIR"] = str(tmp_path_factory.mktemp("td_misuse_cache"))
    yield
    if old is None:
        os.environ.pop("TRACEDIFF_CACHE_DIR", None)
    else:
        os.environ["TRACEDIFF_CACHE_DIR"] = old


# --- result checks ------------------------------------------------------------------


def _rtol(dt) -> float:
    return {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 2e-6}.get(np.dtype(dt), 1e-12)


def _same(got, want) -> None:
    """Same pytree structure, dtypes, shapes, and values (NaN and +-inf exactly)."""
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want), f"{got!r} vs {want!r}"
        for g, w in zip(got, want):
            _same(g, w)
        return
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{got!r} vs {want!r}"
        for k in want:
            _same(got[k], want[k])
        return
    if isinstance(want, float) and type(want) is float:
        assert type(got) is float, f"expected a Python float, got {type(got).__name__}: {got!r}"
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"shape {g.shape} != {w.shape}"
    assert g.dtype == w.dtype, f"dtype {g.dtype} != {w.dtype}"
    if w.dtype.kind == "c":
        _same(g.real, w.real)
        _same(g.imag, w.imag)
        return
    if w.dtype.kind in "fc":
        assert np.array_equal(np.isnan(g), np.isnan(w)), f"NaNs differ: {g} vs {w}"
        assert np.array_equal(np.isinf(g) & (g > 0), np.isinf(w) & (w > 0)), f"+inf differ: {g} vs {w}"
        assert np.array_equal(np.isinf(g) & (g < 0), np.isinf(w) & (w < 0)), f"-inf differ: {g} vs {w}"
        fin = np.isfinite(w)
        np.testing.assert_allclose(g[fin], w[fin], rtol=_rtol(w.dtype), atol=0)
    else:
        np.testing.assert_array_equal(g, w)


def equals(want) -> Callable[[Any], None]:
    return lambda got: _same(got, want() if callable(want) else want)


# --- user functions (the marked lines are where the misuse happens) ------------------

X3 = np.array([0.5, -1.0, 2.0])


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)
        self.a, self.b = a, b


def raises_own(x):
    raise TwoArgError(7, "seven")


def _own_error(call) -> Callable[[], Any]:
    def run():
        try:
            call()
        except TwoArgError as e:
            assert type(e) is TwoArgError and e.args == (7, "seven") and (e.a, e.b) == (7, "seven"), e
            return "unchanged"
        raise AssertionError("the user's exception did not come out")

    return run


def f_broadcast(a, b):
    return np.sum(a + b)  # L:broadcast


def f_matmul(a, b):
    return np.sum(a @ b)  # L:matmul


def f_cholesky(a):
    return np.sum(np.linalg.cholesky(a))  # L:cholesky


def f_solve_then_cholesky(a):
    x = np.linalg.solve(a, np.ones(2))  # L:solve_singular
    return np.sum(np.linalg.cholesky(a * a)) + np.sum(x)


NOT_PD = np.array([[1.0, 2.0], [2.0, 1.0]])


def f_matmul_0d(a, b):
    return a @ b  # L:matmul0d


def f_if(a):
    # a traced array as a condition: ambiguous, as in NumPy (a traced scalar makes a `cond`)
    if a > 0:  # L:if
        return np.sum(a)
    return -np.sum(a)


def f_float(a):
    return float(np.sum(a)) * 2.0  # L:float


def f_builtin_max(a):
    return max(np.sum(a), 1.0)  # L:builtin_max


def f_traced_slice(a):
    i = np.argmax(a)
    return np.sum(a[i : i + 2])  # L:traced_slice


def f_while(a):
    s = a * 1.0
    while s > 1.0:  # L:while
        s = s / 2
    return np.sum(s)


def f_static_oob(a):
    return a[5]  # L:static_oob


def f_too_many_idx(a):
    return a[:, 0]  # L:too_many_idx


def f_const_idx_oob(a):
    return a[np.array([0, 7])]  # L:const_idx_oob


def f_gather(a, idx):
    return np.sum(a[idx])  # L:gather


def f_gather_values(a, idx):
    return a[idx]  # L:gather_values


def f_argmax_empty(a):
    return np.argmax(a)  # L:argmax_empty


def f_max_empty(a):
    return np.max(a)  # L:max_empty


def f_reshape(a):
    return a.reshape(2, 2)  # L:reshape


def f_axis(a):
    return np.sum(a, axis=3)  # L:axis


def f_sort(a):
    return np.sum(np.unique(a))  # L:sort


def f_solve(a):
    return np.linalg.eigvals(np.outer(a, a))  # L:solve


def f_mask(a):
    return np.sum(a[a > 0])  # L:mask


def f_traced_shape(a):
    return np.zeros(a.shape[0] * np.sum(a))  # L:traced_shape


def f_setitem(a):
    a[0] = 1.0  # L:setitem
    return a


def f_complex_const(a):
    return np.sum(a * 1j)  # L:complex_const


def f_astype_complex(a):
    return a.astype(np.complex128) * 2  # L:astype_complex


def f_astype_f16(a):
    return a.astype(np.float16) * 2  # L:astype_f16


def f_sum_out(a):
    return a.sum(out=np.zeros(()))  # L:sum_out


def f_np_sum_out(a):
    return np.sum(a, out=np.zeros(()))  # L:np_sum_out


def f_mean_out(a):
    return np.mean(a, out=np.zeros(()))  # L:mean_out


def f_max_out(a):
    return a.max(out=np.zeros(()))  # L:max_out


def f_exp_out(a):
    return np.exp(a, out=np.zeros(3))  # L:exp_out


def f_add_out_self(a):
    return np.add(a, 1.0, out=a)  # L:add_out_self


def f_var_mean(a):
    return np.var(a, mean=np.zeros(1))  # L:var_mean


def f_sum_where(a):
    return np.sum(a, where=np.array([True, False, True]))  # L:sum_where


def f_random_legacy(a):
    return a + np.random.normal(size=a.shape)  # L:random_legacy


_RNG = np.random.default_rng(0)


def f_random_generator(a):
    return a * _RNG.standard_normal(a.shape)  # L:random_generator


def f_random_rand(a):
    return np.sum(a * np.random.rand(3))  # L:random_rand


_LEAKED: list = []


def f_use_leak_inside(a):
    return np.sum(a * _LEAKED[0])  # L:leak_inside


def _leak_then(use):
    def run():
        def f_leak(a):  # a new function each time: traced anew, leaks anew
            _LEAKED.append(a)
            return np.sum(a * 2.0)

        _LEAKED.clear()
        td.grad(f_leak)(np.ones(3))
        assert len(_LEAKED) == 1
        return use()

    return run


def _use_leak_outside():
    return _LEAKED[0] + 1.0  # L:leak_outside


def _use_leak_np():
    return np.exp(_LEAKED[0])  # L:leak_np


def f_huge_const(a):
    return a + np.zeros((10**6, 10**6)).sum()  # L:huge_const


def f_huge_out(a):
    return np.exp(np.broadcast_to(a[:1], (10**6, 10**6)))  # L:huge_out


def f_too_big(a):
    return np.broadcast_to(a[:1], (2**62, 2**62))  # L:too_big


def f_nan_elementwise(a):
    return (
        np.exp(a),
        np.log(a),
        np.sqrt(a),
        np.tanh(a),
        np.sin(a),
        a**1.5,
        np.maximum(a, 0.5),
        np.minimum(a, 0.5),
        np.clip(a, -1.0, 1.0),
        a / 0.0,
        np.mod(a, 0.0),
        np.logaddexp(a, 0.0),
        1.0 / (1.0 + np.exp(-a)),
        np.log1p(a),
        np.expm1(a),
        np.sign(a),
        np.floor(a),
        np.arctan(a),
    )


def f_nan_reductions(a):
    return np.max(a), np.min(a), np.argmax(a), np.argmin(a), np.sum(a), np.mean(a), np.prod(a)


def f_nan_grad(a):
    return np.sum(np.sqrt(a)) + np.sum(a * a)


def f_int_div(a, b):
    return a // b, a % b


def f_floordiv(a, b):
    return a // b


def f_mod(a, b):
    return a % b


def f_sum(a):
    return np.sum(a * a)


def f_weights(weights):
    return np.sum(weights * weights)  # L:weights


def f_zarg(zarg):
    return np.sum(zarg * zarg)


def f_zarg_vec(zarg):
    return zarg * 2.0


def f_half(half):
    return np.sum(half * half)  # L:half


def f_obj(objarg):
    return np.sum(objarg)  # L:objarg


def f_tree(params):
    return params["w"] * 2.0 + params["b"]


def f_two(a, b):
    return np.sum(a * b)


def f_static(a, s):
    return a * 2.0


def f_static_kw(a, s):
    return np.sum(a * s)


def f_poly(a, coeffs):
    return sum(c * a**k for k, c in enumerate(coeffs))


def f_vec(a):
    return a * 2.0


def f_none_ret(a):
    return None


def f_str_ret(a):
    return "abc"


def f_tuple_ret(a):
    return np.sum(a), np.sum(a * a)


def f_int_valued(a):
    return np.sum(a > 0)


def f_shape1(a):
    return np.sum(a, keepdims=True)


def f_pair(a):
    return np.sum(a * a), {"n": np.max(a)}


def f_triple(a):
    return np.sum(a), 1.0, 2.0


class _Unhashable:
    __hash__ = None  # type: ignore[assignment]


def _jit_twice(fn, x):
    g = td.jit(fn)
    return g(x), g(x)


def _complex_arr():
    return np.array([1.0 + 2.0j, 0.5, -1.0j])


def _vjp_fn():
    return td.vjp(f_vec, X3)[1]


def _np_var_mean(a):
    return np.var(a, mean=np.zeros(1))


def _ref(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)


NAN_INF = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1.0, 1e300, 3.5])
with np.errstate(over="ignore"):
    NAN_INF32 = NAN_INF.astype(np.float32)  # 1e300 is inf in float32
NAN_FIRST = np.array([1.0, np.nan, 5.0, np.nan, -np.inf])
INT_MIN = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).min])


def _mutate_results():
    """Results are the caller's: writing into one must not change the next call's."""
    x = np.arange(3.0)
    out = []
    for make in (
        lambda f: td.jit(f),
        lambda f: td.jit(f, target="interpret"),
        lambda f: td.grad(lambda a: np.sum(f(a)[0] * f(a)[1])),
    ):
        g = make(lambda a: (np.zeros(3) + 1.0, a * 2.0 + 0.0 * a, a * 2.0))
        first = g(x)
        for r in first if isinstance(first, tuple) else (first,):
            r += 100.0  # the user writes into the results
        out.append(g(x))
    return out


def _mutate_results_want():
    x = np.arange(3.0)
    return [(np.ones(3), 2 * x, 2 * x)] * 2 + [np.full(3, 2.0)]


def _mutate_global():
    x = np.arange(3.0)
    out = []
    for make in (lambda f: td.jit(f), lambda f: td.jit(f, target="interpret"), lambda f: td.jit(td.jit(f))):
        w_glob = np.ones(3)
        s_glob = np.ones(3)
        g = make(lambda a: a * w_glob + np.sum(s_glob) * a)  # noqa: B023  (bound per loop)
        first = g(x)
        w_glob[:] = 2.0
        s_glob[:] = 3.0
        out.append((first, g(x)))
    return out


P = collections.namedtuple("P", "w b")

ARG = r"'(a|weights|zarg|half|objarg|params)'|argument \d"  # names the offending argument


def arg_or_line(tag: str) -> str:
    """The message names the offending argument or the user's line marked `tag`."""
    return rf"(?:{ARG})|{_at(tag)}"


def _masked():
    return np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False])


def _matrix():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix([[1.0, 2.0], [3.0, 4.0]])


def _check_matrix_product(got):
    want = np.array(_matrix() * _matrix())  # [[7, 10], [15, 22]]
    np.testing.assert_array_equal(np.array(got), want, err_msg="np.matrix `*` is a matrix product")


def _changing_signatures():
    g = td.jit(f_sum)
    out = [g(np.ones(3)), g(np.ones(4)), g(np.ones(3, np.float32)), g(2.0), g(np.float32(3.0))]
    out.append(g(np.arange(6.0)[::2]))
    out.append(g(np.asfortranarray(np.arange(6.0).reshape(2, 3))))
    ro = np.arange(3.0)
    ro.setflags(write=False)
    out.append(g(ro))
    out.append(g(np.broadcast_to(np.array([2.0]), (3,))))
    return out


def _changing_signatures_want():
    return [
        np.float64(3.0),
        np.float64(4.0),
        np.float32(3.0),
        np.float64(4.0),  # np.sum of a Python float is a NumPy float64
        np.float32(9.0),
        np.float64(20.0),
        np.float64(55.0),
        np.float64(5.0),
        np.float64(12.0),
    ]


def _mutated_input():
    g = td.jit(f_vec)
    a = np.ones(3)
    first = g(a)
    a[:] = 5.0
    return first, g(a)


def _pytree_changes():
    g = td.jit(f_tree)
    return (
        g({"w": np.ones(2), "b": 1.0}),
        g({"w": np.ones(3), "b": np.ones(3)}),
        g({"w": 2.0, "b": 0.5}),
        td.grad(lambda p: np.sum(f_tree(p)))({"w": np.ones(2), "b": 1.0}),
        td.grad(lambda p: np.sum(f_tree(p)))({"w": np.ones(2), "b": np.zeros(2)}),
    )


def _check_namedtuple(got):
    assert type(got) is P, f"the gradient of a namedtuple is a {type(got).__name__}"
    _same(tuple(got), (np.full(2, 2.0), 2.0))


def _tuple_then_list():
    g = td.jit(lambda t: t[0] * t[1])
    return g((np.ones(2), 3.0)), g([np.ones(2), 4.0]), g((2.0, 3.0))


# --- the table ------------------------------------------------------------------------

CASES = [
    # compiled LAPACK calls that fail on the values: Numba's LinAlgError, named
    Case(
        "compiled_cholesky_not_pd",
        lambda: td.jit(td.grad(f_cholesky), eager_first=False)(NOT_PD),
        Raises(np.linalg.LinAlgError, r"^cholesky: .*positive definite", line="cholesky"),
    ),
    Case(
        "compiled_solve_singular",
        lambda: td.jit(f_solve_then_cholesky, eager_first=False)(np.ones((2, 2))),
        Raises(np.linalg.LinAlgError, r"^solve: .*singular", line="solve_singular"),
    ),
    # ---- strings, None, lists, object arrays, unusual array types as arguments
    Case("str_to_grad", lambda: td.grad(f_weights)("abc"), Raises(TypeError, ARG, r"str")),
    Case("str_to_jit_numpy_error", lambda: td.jit(lambda s: np.sum(s))("abc"), Raises(TypeError)),
    Case(
        "str_array_to_jit",
        lambda: td.jit(f_weights)(np.array(["a", "b"])),
        Raises(TypeError, arg_or_line("weights"), r"<U1|str"),
    ),
    Case("none_to_grad", lambda: td.grad(f_weights)(None), Raises(TypeError, ARG, r"None")),
    Case("none_to_jit", lambda: td.jit(f_weights)(None), Raises(TypeError, r"NoneType")),
    Case("list_as_pytree_grad", lambda: td.grad(lambda a: a[0] * a[1])([2.0, 3.0]), Ok(equals([3.0, 2.0]))),
    Case(
        "list_to_np_sum_jit",
        lambda: td.jit(lambda a: np.sum(a))([1.0, 2.0]),
        Ok(equals(np.float64(3.0))),  # a list holding traced values is made an array, as NumPy does
    ),
    Case("list_pow_grad", lambda: td.grad(lambda a: np.sum(a**2))([1.0, 2.0]), Raises(TypeError, r"list")),
    Case(
        "ragged_list_jit",
        lambda: td.jit(lambda a: np.sum(a))([[1.0, 2.0], [3.0]]),
        Raises((TypeError, ValueError), r"traced value|inhomogeneous|ragged"),
    ),
    Case(
        "object_array_grad",
        lambda: td.grad(f_obj)(np.array([1.0, 2.0], dtype=object)),
        Raises(TypeError, arg_or_line("objarg"), r"object"),
    ),
    Case(
        "object_array_jit",
        lambda: td.jit(f_obj)(np.array([1.0, 2.0], dtype=object)),
        Raises(TypeError, arg_or_line("objarg"), r"object"),
    ),
    Case(
        "set_leaf_grad",
        lambda: td.grad(f_static, argnums=0)(np.ones(2), {1, 2}),
        Raises(TypeError, r"'s'|argument 1", r"set"),
    ),
    Case(
        "unhashable_object_leaf_jit",
        lambda: td.jit(f_static)(np.ones(2), _Unhashable()),
        Raises(TypeError, r"'s'|argument 1", r"_Unhashable|hashable"),
    ),
    Case(
        "masked_array_jit_cpu",
        lambda: td.jit(f_obj)(_masked()),
        OkOr(equals(np.float64(4.0)), Raises(TypeError, arg_or_line("objarg"), r"MaskedArray|masked")),
    ),
    Case(
        "masked_array_interpret",
        lambda: td.jit(f_obj, target="interpret")(_masked()),
        OkOr(equals(np.float64(4.0)), Raises(TypeError, arg_or_line("objarg"), r"MaskedArray|masked")),
    ),
    Case(
        "np_matrix_jit",  # matrix `*` is a matrix product in NumPy
        lambda: td.jit(lambda a: a * a)(_matrix()),
        OkOr(
            _check_matrix_product,
            Raises(TypeError, r"matrix"),
        ),
    ),
    Case(
        "big_endian_jit",
        lambda: td.jit(f_weights)(np.array([1.0, 2.0]).astype(">f8")),
        OkOr(equals(np.float64(5.0)), Raises(TypeError, arg_or_line("weights"), r">f8|byte.?order|endian")),
    ),
    Case(
        "longdouble_jit",
        lambda: td.jit(f_weights)(np.ones(2, np.longdouble)),
        Raises(TypeError, arg_or_line("weights"), r"float128|longdouble|float96"),
    ),
    Case(
        "datetime_jit",
        lambda: td.jit(lambda a: a)(np.array(["2020-01-01"], "datetime64[D]")),
        OkOr(equals(np.array(["2020-01-01"], "datetime64[D]")), Raises(TypeError, ARG, r"datetime64")),
    ),
    # ---- complex numbers, to every entry point: traced (JAX's conventions); a
    # complex scalar result needs holomorphic=True, a complex Jacobian too
    Case("complex_grad", lambda: td.grad(f_zarg)(_complex_arr()), Raises(TypeError, r"holomorphic=True")),
    Case(
        "complex_value_and_grad",
        lambda: td.value_and_grad(f_zarg)(_complex_arr()),
        Raises(TypeError, r"holomorphic=True"),
    ),
    Case(
        "complex_grad_holomorphic",
        lambda: td.grad(f_zarg, holomorphic=True)(_complex_arr()),
        Ok(equals(lambda: 2 * _complex_arr())),
    ),
    Case(
        "complex_grad_holomorphic_real_input",
        lambda: td.grad(f_zarg, holomorphic=True)(X3),
        Raises(TypeError, r"holomorphic=True", r"complex"),
    ),
    Case(
        "complex_jit_cpu",
        lambda: td.jit(f_zarg)(_complex_arr()),
        Ok(equals(lambda: np.sum(_complex_arr() ** 2))),
    ),
    Case(
        "complex_jit_interpret",
        lambda: td.jit(f_zarg, target="interpret")(_complex_arr()),
        Ok(equals(lambda: np.sum(_complex_arr() ** 2))),
    ),
    Case(
        "complex_vjp",
        lambda: td.vjp(f_zarg_vec, _complex_arr())[1](np.ones(3, complex))[0],
        Ok(equals(np.full(3, 2.0 + 0j))),
    ),
    Case(
        "complex_jvp_real_tangent",
        lambda: td.jvp(f_zarg_vec, (_complex_arr(),), (np.ones(3),))[1],
        Ok(equals(np.full(3, 2.0 + 0j))),
    ),
    Case(
        "complex_jvp_tangent",  # dropping the imaginary part would be a silently wrong number
        lambda: td.jvp(f_zarg_vec, (X3,), (_complex_arr(),)),
        Raises(TypeError, r"complex", r"tangent"),
    ),
    Case(
        "complex_jacobian",
        lambda: td.jacobian(f_zarg_vec)(_complex_arr()),
        Raises(TypeError, r"complex", r"holomorphic=True"),
    ),
    Case(
        "complex_jacfwd",
        lambda: td.jacfwd(f_zarg_vec)(_complex_arr()),
        Raises(TypeError, r"complex", r"holomorphic=True"),
    ),
    Case(
        "complex_jacobian_holomorphic",
        lambda: td.jacobian(f_zarg_vec, holomorphic=True)(_complex_arr()),
        Ok(equals(np.eye(3) * (2.0 + 0j))),
    ),
    Case(
        "complex_hessian", lambda: td.hessian(f_zarg)(_complex_arr()), Raises(TypeError, r"holomorphic=True")
    ),
    Case(
        "complex_check_grads",
        lambda: td.check_grads(lambda z: np.sin(z) * np.conj(z), (_complex_arr(),), order=2),
        Ok(equals(None)),
    ),
    Case(
        "complex_python_scalar_grad",
        lambda: td.grad(f_zarg)(1.0 + 2.0j),
        Raises(TypeError, r"holomorphic=True"),
    ),
    Case("complex_python_scalar_jit", lambda: td.jit(f_zarg)(1.0 + 2.0j), Ok(equals((1.0 + 2.0j) ** 2))),
    Case(
        "complex_in_pytree_jit",
        lambda: td.jit(lambda params: params["w"] * 2.0)({"w": _complex_arr()}),
        Ok(equals(lambda: 2.0 * _complex_arr())),
    ),
    Case(
        "complex_cotangent",
        lambda: _vjp_fn()(_complex_arr()),
        Raises(TypeError, r"complex", r"cotangent"),
    ),
    Case(
        "complex_constant_inside",
        lambda: td.grad(f_complex_const)(X3),
        Raises(TypeError, r"float scalar", r"holomorphic=True"),
    ),
    Case(
        "complex_max_inside",
        lambda: td.jit(lambda z: np.max(z))(_complex_arr()),
        Raises(TypeError, r"complex", r"not supported"),
    ),
    Case(
        "astype_complex_inside_interpret",
        lambda: td.jit(f_astype_complex, target="interpret")(X3),
        Ok(equals(lambda: X3.astype(np.complex128) * 2)),
    ),
    Case(
        "astype_complex_inside_cpu",
        lambda: td.jit(f_astype_complex)(X3),
        Ok(equals(lambda: X3.astype(np.complex128) * 2)),
    ),
    # ---- float16
    Case(
        "float16_jit_cpu",
        lambda: td.jit(f_half)(np.array([1.0, 2.0, 3.0], np.float16)),
        OkOr(
            equals(np.float16(14.0)),
            Raises((TypeError, NotImplementedError), r"float16|f16\[", arg_or_line("half"), r"interpret"),
        ),
    ),
    Case(
        "float16_interpret",
        lambda: td.jit(f_half, target="interpret")(np.array([1.0, 2.0, 3.0], np.float16)),
        Ok(equals(np.float16(14.0))),
    ),
    Case(
        "float16_grad",
        lambda: td.grad(f_half)(np.array([1.0, 2.0], np.float16)),
        OkOr(equals(np.array([2.0, 4.0], np.float16)), Raises(TypeError, r"float16", ARG)),
    ),
    Case(
        "float16_intermediate_cpu",
        lambda: td.jit(f_astype_f16)(X3),
        OkOr(equals(lambda: X3.astype(np.float16) * 2), Raises(TypeError, r"float16|f16", line="astype_f16")),
    ),
    # ---- pytrees and signatures that change between calls: new trace, right answer
    Case("signatures_change_between_calls", _changing_signatures, Ok(equals(_changing_signatures_want))),
    Case(
        "pytree_changes_between_calls",
        _pytree_changes,
        Ok(
            equals(
                (
                    np.array([3.0, 3.0]),
                    np.array([3.0, 3.0, 3.0]),
                    4.5,
                    {"w": np.array([2.0, 2.0]), "b": 2.0},
                    {"w": np.array([2.0, 2.0]), "b": np.array([1.0, 1.0])},
                )
            )
        ),
    ),
    Case(
        "tuple_then_list_between_calls",
        _tuple_then_list,
        Ok(equals((np.array([3.0, 3.0]), np.array([4.0, 4.0]), 6.0))),
    ),
    Case("input_mutated_between_calls", _mutated_input, Ok(equals((np.full(3, 2.0), np.full(3, 10.0))))),
    Case(
        "namedtuple_grad_keeps_type",
        lambda: td.grad(lambda p: np.sum(p.w) * p.b)(P(np.ones(2), 2.0)),
        Ok(_check_namedtuple),
    ),
    Case(
        "dict_mixed_key_types",
        lambda: td.grad(lambda d: d[1] * d["a"])({1: 2.0, "a": 3.0}),
        Ok(equals({1: 3.0, "a": 2.0})),
    ),
    # ---- static arguments
    Case(
        "unhashable_static_list",
        lambda: td.jit(f_static, static_argnums=1)(np.ones(2), [1, 2]),
        Raises(TypeError, r"static", r"argument 1|'s'", r"hashable"),
    ),
    Case(
        "unhashable_static_array",
        lambda: td.jit(f_static, static_argnums=1)(np.ones(2), np.ones(2)),
        Raises(TypeError, r"static", r"argument 1|'s'", r"hashable"),
    ),
    Case(
        "static_argnums_out_of_range",
        lambda: td.jit(f_vec, static_argnums=5)(X3),
        Raises((ValueError, TypeError), r"static_argnums", r"5"),
    ),
    Case(
        "static_argnums_negative_out_of_range",
        lambda: td.jit(f_vec, static_argnums=-3)(X3),
        Raises((ValueError, TypeError), r"static_argnums", r"-3"),
    ),
    Case(
        "static_argnums_wrong_type",
        lambda: td.jit(f_static, static_argnums="s")(X3, 1.0),
        Raises(TypeError, r"static_argnums"),
    ),
    Case(
        "static_float_recompiles",
        lambda: [td.jit(f_poly, static_argnums=1)(X3, c) for c in ((1.0, 2.0), (0.5,), (1.0, 2.0))],
        Ok(equals([1.0 + 2.0 * X3, np.full(3, 0.5), 1.0 + 2.0 * X3])),
    ),
    Case(
        "static_argnum_passed_by_keyword",  # JAX treats it as static; a clear error is fine too
        lambda: td.jit(f_static_kw, static_argnums=1)(X3, s=2.0),
        OkOr(equals(np.sum(X3 * 2.0)), Raises((ValueError, TypeError), r"static_argnums")),
    ),
    # ---- the number of arguments, argnums
    Case("missing_argument", lambda: td.jit(f_two)(X3), Raises(TypeError, r"missing.*'b'")),
    Case("too_many_arguments", lambda: td.grad(f_vec)(X3, X3), Raises(TypeError, r"positional argument")),
    Case("unknown_keyword_argument", lambda: td.jit(f_vec)(X3, bogus=1), Raises(TypeError, r"bogus")),
    Case(
        "grad_keyword_only_call",
        lambda: td.grad(f_sum)(a=X3),
        Raises((ValueError, TypeError), r"argnums|positional"),
    ),
    Case(
        "argnums_out_of_range",
        lambda: td.grad(f_two, argnums=2)(X3, X3),
        Raises(ValueError, r"argnums", r"\b2\b"),
    ),
    Case(
        "argnums_negative_out_of_range",
        lambda: td.grad(f_two, argnums=-3)(X3, X3),
        Raises(ValueError, r"argnums", r"-3"),
    ),
    Case(
        "argnums_negative",
        lambda: td.grad(f_two, argnums=-1)(X3, np.ones(3)),
        Ok(equals(X3)),
    ),
    Case(
        "argnums_as_list",  # JAX accepts any sequence of ints
        lambda: td.grad(f_two, argnums=[0, 1])(X3, np.ones(3)),
        Ok(equals((np.ones(3), X3))),
    ),
    Case("argnums_float", lambda: td.grad(f_two, argnums=0.5)(X3, X3), Raises(TypeError, r"argnums")),
    Case(
        "jacobian_argnums_out_of_range",
        lambda: td.jacobian(f_vec, argnums=1)(X3),
        Raises(ValueError, r"argnums"),
    ),
    Case("grad_of_non_callable", lambda: td.grad(3)(X3), Raises(TypeError, r"callable")),
    # ---- what grad's function returns, and with respect to what
    Case(
        "grad_returns_tuple",
        lambda: td.grad(f_tuple_ret)(X3),
        Raises(TypeError, r"grad", r"scalar", r"tuple"),
    ),
    Case(
        "grad_non_scalar_output",
        lambda: td.grad(f_vec)(X3),
        Raises(TypeError, r"grad", r"scalar", r"f64\[3\]"),
    ),
    Case(
        "grad_shape_1_output",
        lambda: td.grad(f_shape1)(X3),
        Ok(equals(np.ones(3))),  # one element of any shape: its gradient, as autograd and PyTorch
    ),
    Case("grad_returns_none", lambda: td.grad(f_none_ret)(X3), Raises(TypeError, r"grad", r"None")),
    Case(
        "jit_returns_str",
        lambda: td.jit(f_str_ret)(X3),
        Raises(TypeError, r"f_str_ret returned a value of type str", r"defined at test_misuse\.py:\d+"),
    ),
    Case(
        "grad_of_int_valued_function",
        lambda: td.grad(f_int_valued)(X3),
        Raises(TypeError, r"grad", r"float", r"i64|int"),
    ),
    Case(
        "value_and_grad_non_scalar",
        lambda: td.value_and_grad(f_vec)(X3),
        Raises(TypeError, r"scalar", r"f64\[3\]"),
    ),
    Case(
        "grad_wrt_int_array",
        lambda: td.grad(f_weights)(np.array([1, 2, 3])),
        Raises(TypeError, r"'weights'|argument 0", r"int64"),
    ),
    Case(
        "grad_wrt_python_int",
        lambda: td.grad(f_weights)(3),
        Raises(TypeError, r"'weights'|argument 0", r"int"),
    ),
    Case(
        "grad_wrt_bool_array",
        lambda: td.grad(f_weights)(np.array([True, False])),
        Raises(TypeError, r"'weights'|argument 0", r"bool"),
    ),
    Case("grad_of_constant_function", lambda: td.grad(lambda a: 3.0)(X3), Ok(equals(np.zeros(3)))),
    Case(
        "grad_of_numpy_scalar_keeps_dtype",
        lambda: td.grad(lambda a: a * a)(np.float32(3.0)),
        Ok(equals(np.float32(6.0))),
    ),
    Case(
        "has_aux_returns_scalar",
        lambda: td.grad(f_sum, has_aux=True)(X3),
        Raises(TypeError, r"has_aux", r"pair \(value, aux\), got an array"),
    ),
    Case(
        "has_aux_returns_triple",
        lambda: td.grad(f_triple, has_aux=True)(X3),
        Raises(TypeError, r"has_aux", r"pair \(value, aux\), got a tuple of 3"),
    ),
    Case(
        "has_aux_ok",
        lambda: td.grad(f_pair, has_aux=True)(X3),
        Ok(equals((2 * X3, {"n": np.float64(2.0)}))),
    ),
    Case(
        "duplicate_argnums",
        lambda: td.grad(f_two, argnums=(0, 0))(X3, np.ones(3)),
        OkOr(equals((np.ones(3), np.ones(3))), Raises(ValueError, r"argnums")),
    ),
    # ---- vjp / jvp cotangents and tangents
    Case(
        "vjp_cotangent_wrong_shape",
        lambda: _vjp_fn()(np.ones(4)),
        Raises(ValueError, r"cotangent", r"f64\[4\]", r"f64\[3\]"),
    ),
    Case(
        "vjp_cotangent_scalar_for_vector",
        lambda: _vjp_fn()(1.0),
        Raises(ValueError, r"cotangent", r"f64\[\]", r"f64\[3\]"),
    ),
    Case("vjp_cotangent_string", lambda: _vjp_fn()("abc"), Raises(TypeError, r"cotangent", r"str")),
    Case(
        "vjp_cotangent_object_array",
        lambda: _vjp_fn()(np.ones(3, dtype=object)),
        Raises(TypeError, r"cotangent", r"object"),
    ),
    Case(
        "vjp_cotangent_wrong_structure",
        lambda: _vjp_fn()((np.ones(3),)),
        Raises(TypeError, r"cotangent", r"structure"),
    ),
    Case("vjp_cotangent_none", lambda: _vjp_fn()(None), Raises(TypeError, r"cotangent")),
    Case(
        "vjp_cotangent_dict_wrong_keys",
        lambda: td.vjp(lambda a: {"u": a, "v": a}, X3)[1]({"u": np.ones(3), "w": np.ones(3)}),
        Raises(TypeError, r"cotangent", r"structure"),
    ),
    Case(
        "vjp_cotangent_int",  # cast as NumPy would, or refused as JAX does
        lambda: _vjp_fn()(np.ones(3, int)),
        OkOr(equals((np.full(3, 2.0),)), Raises(TypeError, r"cotangent", r"i64|int")),
    ),
    Case(
        "jvp_tangent_wrong_shape",
        lambda: td.jvp(f_vec, (X3,), (np.ones(4),)),
        Raises(ValueError, r"tangent", r"f64\[4\]", r"f64\[3\]"),
    ),
    Case(
        "jvp_tangent_wrong_structure",
        lambda: td.jvp(f_vec, (X3,), (np.ones(3), np.ones(3))),
        Raises(TypeError, r"tangent", r"structure"),
    ),
    Case(
        "jvp_primals_not_a_tuple",  # an array is not a tuple of primals
        lambda: td.jvp(f_vec, np.ones(1), np.ones(1)),
        Raises(TypeError, r"primals|tuple"),
    ),
    Case("jvp_tangent_string", lambda: td.jvp(f_vec, (X3,), ("abc",)), Raises(TypeError, r"tangent", r"str")),
    Case(
        "jvp_tangent_int",  # cast as NumPy would, or refused as JAX does
        lambda: td.jvp(f_vec, (X3,), (np.ones(3, int),)),
        OkOr(equals((2 * X3, np.full(3, 2.0))), Raises(TypeError, r"tangent", r"i64|int")),
    ),
    Case(
        "check_grads_args_not_a_tuple",
        lambda: td.check_grads(f_sum, np.ones(3), order=1),
        Raises(TypeError, r"\bargs\b|tuple"),
    ),
    # ---- td.jit options
    Case("jit_unknown_option", lambda: td.jit(f_vec, paralel=True)(X3), Raises(TypeError, r"paralel")),
    Case(
        "jit_unknown_option_decorator",
        lambda: td.jit(paralel=True)(f_vec)(X3),
        Raises(TypeError, r"paralel"),
    ),
    Case("jit_bad_math", lambda: td.jit(f_vec, math="fastest")(X3), Raises(ValueError, r"math", r"fastest")),
    Case("jit_bad_target", lambda: td.jit(f_vec, target="gpu")(X3), Raises(ValueError, r"target", r"gpu")),
    Case("grad_unknown_keyword", lambda: td.grad(f_vec, argnum=0)(X3), Raises(TypeError, r"argnum")),
    # ---- ufunc out= and unsupported keyword arguments inside traced code
    Case(
        "method_sum_out",
        lambda: td.jit(f_sum_out)(X3),
        Raises((TypeError, NotImplementedError), r"\bout\b", line="sum_out"),
    ),
    Case(
        "np_sum_out",
        lambda: td.grad(f_np_sum_out)(X3),
        Raises((TypeError, NotImplementedError), r"\bout\b", line="np_sum_out"),
    ),
    Case(
        "np_mean_out",
        lambda: td.jit(f_mean_out)(X3),
        Raises((TypeError, NotImplementedError), r"\bout\b", line="mean_out"),
    ),
    Case(
        "method_max_out",
        lambda: td.jit(f_max_out)(X3),
        Raises((TypeError, NotImplementedError), r"\bout\b", line="max_out"),
    ),
    Case(
        "ufunc_exp_out",
        lambda: td.jit(f_exp_out)(X3),
        Raises((TypeError, NotImplementedError), r"\bout\b", line="exp_out"),
    ),
    Case(
        "ufunc_add_out_self",
        lambda: td.grad(lambda a: np.sum(f_add_out_self(a)))(X3),
        OkOr(equals(np.ones(3)), Raises((TypeError, NotImplementedError), r"\bout\b", line="add_out_self")),
    ),
    Case(
        "np_var_mean_keyword",
        lambda: td.jit(f_var_mean)(np.arange(3.0)),
        OkOr(
            equals(lambda: _np_var_mean(np.arange(3.0))),
            Raises((TypeError, NotImplementedError), r"\bmean\b", line="var_mean"),
        ),
    ),
    Case(
        "np_sum_where_keyword",
        lambda: td.jit(f_sum_where)(X3),
        OkOr(equals(np.float64(2.5)), Raises((TypeError, NotImplementedError), r"where", line="sum_where")),
    ),
    Case(
        "np_var_correction_keyword",
        lambda: td.jit(lambda a: np.var(a, correction=1))(np.arange(3.0)),
        Ok(equals(np.float64(1.0))),
    ),
    # ---- random numbers drawn while tracing would be frozen into the program
    Case(
        "np_random_legacy_inside_jit",
        lambda: _jit_twice(f_random_legacy, X3),
        Raises(td.TracerError, r"random", r"frozen", rf"f_random_legacy|{_at('random_legacy')}"),
    ),
    Case(
        "np_random_generator_inside_jit",
        lambda: _jit_twice(f_random_generator, X3),
        Raises(
            td.TracerError, r"random|Generator", r"frozen", rf"f_random_generator|{_at('random_generator')}"
        ),
    ),
    Case(
        "np_random_inside_grad",
        lambda: td.grad(f_random_rand)(X3),
        Raises(td.TracerError, r"random", r"frozen", rf"f_random_rand|{_at('random_rand')}"),
    ),
    # ---- Python control flow and conversions on traced values
    Case("python_if_on_tracer", lambda: td.grad(f_if)(X3), Raises(ValueError, r"ambiguous", line="if")),
    Case(
        "python_if_on_tracer_jit_grad",
        lambda: td.jit(td.grad(f_if))(X3),
        Raises(ValueError, r"ambiguous", line="if"),
    ),
    Case(
        "python_while_on_tracer",
        lambda: td.jit(f_while)(X3),
        Raises(ValueError, r"ambiguous", line="while"),
    ),
    Case("float_of_tracer", lambda: td.jit(f_float)(X3), Raises(td.TracerError, r"float\(\)", line="float")),
    Case(
        "traced_slice_bound",
        lambda: td.grad(f_traced_slice)(X3),
        Raises(td.TracerError, r"slice bound", r"np.arange", line="traced_slice"),
    ),
    Case(
        "builtin_max_of_tracers",
        lambda: td.grad(f_builtin_max)(X3),
        Raises(td.TracerError, r"max\(\)", r"np.maximum", line="builtin_max"),
    ),
    Case(
        # NumPy converts a shape itself and replaces the TracerError of Tracer.__index__
        # with its own TypeError (naming the Tracer, not the line): nothing to intercept
        "traced_value_as_shape",
        lambda: td.jit(f_traced_shape)(X3),
        Raises(TypeError, r"Tracer<f64\[\]>"),
    ),
    Case(
        "setitem_on_tracer",
        lambda: td.grad(lambda a: np.sum(f_setitem(a)))(X3),
        OkOr(equals(np.array([0.0, 1.0, 1.0])), Raises(td.TracerError, r"in-place", line="setitem")),
    ),
    Case(
        "boolean_mask_traced",
        lambda: td.jit(f_mask)(X3),
        Raises(td.TracerError, r"data-dependent", line="mask"),
    ),
    # ---- a tracer leaked into a global and used later
    Case(
        "leaked_tracer_used_outside",
        _leak_then(_use_leak_outside),
        Raises(td.TracerError, r"escaped", line="leak_outside"),
    ),
    Case(
        "leaked_tracer_numpy_function",
        _leak_then(_use_leak_np),
        Raises(td.TracerError, r"escaped", line="leak_np"),
    ),
    Case(
        "leaked_tracer_in_later_trace",
        _leak_then(lambda: td.jit(f_use_leak_inside)(np.ones(3))),
        Raises(td.TracerError, r"escaped", line="leak_inside"),
    ),
    # ---- the user's own exception comes out unchanged
    Case("own_exception_grad", _own_error(lambda: td.grad(raises_own)(X3)), Ok(equals("unchanged"))),
    Case("own_exception_jit", _own_error(lambda: td.jit(raises_own)(X3)), Ok(equals("unchanged"))),
    Case(
        "own_exception_jit_grad",
        _own_error(lambda: td.jit(td.grad(raises_own))(X3)),
        Ok(equals("unchanged")),
    ),
    Case(
        "own_exception_grad_grad",
        _own_error(lambda: td.grad(td.grad(raises_own))(1.0)),
        Ok(equals("unchanged")),
    ),
    Case("own_exception_vjp", _own_error(lambda: td.vjp(raises_own, X3)), Ok(equals("unchanged"))),
    Case("own_exception_jvp", _own_error(lambda: td.jvp(raises_own, (X3,), (X3,))), Ok(equals("unchanged"))),
    Case("own_exception_jacfwd", _own_error(lambda: td.jacfwd(raises_own)(X3)), Ok(equals("unchanged"))),
    Case(
        "own_exception_make_ir",
        _own_error(lambda: td.make_ir(td.value_and_grad(raises_own), X3)),
        Ok(equals("unchanged")),
    ),
    # ---- shapes
    Case(
        "broadcast_mismatch",
        lambda: td.grad(f_broadcast)(np.ones(3), np.ones(4)),
        Raises(ValueError, r"add", r"f64\[3\]", r"f64\[4\]", line="broadcast"),
    ),
    Case(
        "broadcast_mismatch_jit_grad",
        lambda: td.jit(td.grad(f_broadcast))(np.ones((2, 3)), np.ones(2)),
        Raises(ValueError, r"add", r"f64\[2,3\]", r"f64\[2\]", line="broadcast"),
    ),
    Case(
        "matmul_mismatch",
        lambda: td.jit(f_matmul)(np.ones((2, 3)), np.ones((4, 2))),
        Raises(ValueError, r"matmul", r"f64\[2,3\]", r"f64\[4,2\]", line="matmul"),
    ),
    Case(
        "matmul_with_0d",
        lambda: td.grad(lambda a, b: np.sum(f_matmul_0d(a, b)))(X3, 2.0),
        Raises(ValueError, r"matmul", line="matmul0d"),
    ),
    Case(
        "reshape_bad_size",
        lambda: td.jit(f_reshape)(X3),
        Raises(ValueError, r"reshape", r"f64\[3\]", r"\(2, 2\)", line="reshape"),
    ),
    Case(
        "axis_out_of_range",
        lambda: td.jit(f_axis)(X3),
        Raises(np.exceptions.AxisError, r"axis 3", line="axis"),
    ),
    Case(
        "static_index_out_of_bounds",
        lambda: td.jit(f_static_oob)(X3),
        Raises(IndexError, r"\b5\b", r"size 3", line="static_oob"),
    ),
    Case(
        "too_many_indices",
        lambda: td.grad(lambda a: np.sum(f_too_many_idx(a)))(X3),
        Raises(IndexError, r"too many indices", line="too_many_idx"),
    ),
    Case(
        "constant_index_array_out_of_bounds",
        lambda: td.jit(f_const_idx_oob)(X3),
        Raises(IndexError, r"\b7\b", line="const_idx_oob"),
    ),
    Case(
        "traced_index_out_of_bounds_jit",
        lambda: td.jit(f_gather_values)(np.arange(3.0), np.array([0, 10**9])),
        Raises(IndexError, r"out of bounds", line="gather_values"),
        isolate=True,
    ),
    Case(
        "traced_index_out_of_bounds_jit_grad",
        lambda: td.jit(td.grad(f_gather))(np.arange(3.0), np.array([0, -(10**9)])),
        Raises(IndexError, r"out of bounds", line="gather"),
        isolate=True,
    ),
    Case(
        "traced_index_out_of_bounds_interpret",
        lambda: td.jit(f_gather_values, target="interpret")(np.arange(3.0), np.array([0, 7])),
        Raises(IndexError, r"out of bounds", line="gather_values"),
    ),
    Case(
        "traced_negative_index",
        lambda: td.jit(f_gather_values)(np.arange(3.0), np.array([-1, 0, -3])),
        Ok(equals(np.array([2.0, 0.0, 0.0]))),
    ),
    Case(
        "unsupported_sort", lambda: td.grad(f_sort)(X3), Raises(NotImplementedError, r"unique", line="sort")
    ),
    Case(
        "unsupported_linalg_eigvals",
        lambda: td.jit(f_solve)(X3),
        Raises((NotImplementedError, TypeError), r"eigvals", line="solve"),
    ),
    # ---- enormous shapes
    Case(
        "enormous_constant_inside_jit",
        lambda: td.jit(f_huge_const, parallel=False)(X3),
        Raises((MemoryError, ValueError)),
        isolate=True,
    ),
    Case(
        "enormous_output_jit",
        lambda: td.jit(f_huge_out, parallel=False)(X3),
        Raises((MemoryError, ValueError)),
        isolate=True,
    ),
    Case(
        "enormous_output_interpret",
        lambda: td.jit(f_huge_out, target="interpret")(X3),
        Raises((MemoryError, ValueError)),
        isolate=True,
    ),
    Case(
        "shape_overflows_int64",
        lambda: td.jit(f_too_big)(X3),
        Raises(ValueError, r"broadcast|too big", line="too_big"),
    ),
    # ---- zero-size reductions
    Case(
        "argmax_of_empty_jit",
        lambda: td.jit(f_argmax_empty)(np.ones(0)),
        Raises(ValueError, r"argmax", r"empty|zero-size", line="argmax_empty"),
    ),
    Case(
        "argmax_of_empty_interpret",
        lambda: td.jit(f_argmax_empty, target="interpret")(np.ones(0)),
        Raises(ValueError, r"argmax", r"empty|zero-size", line="argmax_empty"),
    ),
    Case(
        "max_of_empty_grad",
        lambda: td.grad(f_max_empty)(np.ones(0)),
        Raises(ValueError, r"max", r"zero-size|empty", line="max_empty"),
    ),
    Case(
        "sum_mean_of_empty",
        lambda: td.jit(lambda a: (np.sum(a), np.mean(a), td.grad(f_sum)(a)))(np.ones(0)),
        Ok(equals((np.float64(0.0), np.float64(np.nan), np.zeros(0)))),
    ),
    # ---- NaN and inf inputs to compiled code give NumPy's answers
    Case(
        "nan_inf_elementwise_f64",
        lambda: td.jit(f_nan_elementwise)(NAN_INF),
        Ok(equals(lambda: _ref(f_nan_elementwise, NAN_INF))),
    ),
    Case(
        "nan_inf_elementwise_f32",
        lambda: td.jit(f_nan_elementwise)(NAN_INF32),
        Ok(equals(lambda: _ref(f_nan_elementwise, NAN_INF32))),
    ),
    Case(
        "nan_inf_reductions",
        lambda: td.jit(f_nan_reductions)(NAN_FIRST),
        Ok(equals(lambda: _ref(f_nan_reductions, NAN_FIRST))),
    ),
    Case(
        "inf_reductions_no_nan",
        lambda: td.jit(f_nan_reductions)(np.array([1.0, np.inf, -np.inf, 2.0])),
        Ok(equals(lambda: _ref(f_nan_reductions, np.array([1.0, np.inf, -np.inf, 2.0])))),
    ),
    Case(
        "nan_inf_gradient_jit",
        lambda: td.jit(td.grad(f_nan_grad))(np.array([0.0, 1.0, np.inf, np.nan])),
        Ok(equals(np.array([np.inf, 2.5, np.inf, np.nan]))),
    ),
    Case(
        "integer_division_by_zero_jit",
        lambda: td.jit(f_int_div)(np.array([1, 2, -3]), np.array([0, 1, 0])),
        Ok(equals(lambda: _ref(f_int_div, np.array([1, 2, -3]), np.array([0, 1, 0])))),
        isolate=True,
    ),
    Case(
        "integer_floordiv_overflow_jit",  # INT64_MIN // -1: NumPy wraps to INT64_MIN
        lambda: td.jit(f_floordiv)(INT_MIN, np.array([-1, 1])),
        Ok(equals(lambda: _ref(f_floordiv, INT_MIN, np.array([-1, 1])))),
        isolate=True,
    ),
    Case(
        "integer_mod_overflow_jit",  # INT64_MIN % -1: NumPy gives 0 (the CPU's idiv traps)
        lambda: td.jit(f_mod)(INT_MIN, np.array([-1, 1])),
        Ok(equals(lambda: _ref(f_mod, INT_MIN, np.array([-1, 1])))),
        isolate=True,
    ),
    # ---- results the user mutates, constants the user mutates
    Case("mutating_a_result_does_not_change_later_calls", _mutate_results, Ok(equals(_mutate_results_want))),
    Case(
        "global_array_mutated_after_tracing_stays_a_constant",  # guide: "constants of the traced program"
        _mutate_global,
        Ok(equals([(np.array([0.0, 4.0, 8.0]), np.array([0.0, 4.0, 8.0]))] * 3)),
    ),
]


def test_table_has_at_least_40_rows_with_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids), [i for i in ids if ids.count(i) > 1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_misuse(case: Case):
    if case.isolate and hasattr(os, "fork"):
        _run_isolated(case)
    else:
        _outcome(case)


def test_markers_resolve():
    """Every line tag used by a row names exactly one marked line."""
    for c in CASES:
        exp = c.expect if isinstance(c.expect, Raises) else getattr(c.expect, "raises", None)
        if exp is not None and exp.line is not None:
            _lineno(exp.line)


def test_kernel_too_large_for_numba_names_the_way_out(monkeypatch):
    """Numba's compiler recurses over a kernel's statements, and a straight-line
    kernel of many thousands of lines (Python loops unrolled by tracing) ran it
    out of stack: a RecursionError from inside Numba, raised by a later call
    under tiered execution. It is now an error that says what made the kernel
    so long and the ways out; the compile is made to recurse here (a real one
    takes minutes)."""
    from tracediff import backend
    from tracediff.backend import cpu

    real = cpu.load_module

    class Recursing:  # Numba's dispatcher, whose compile runs out of stack
        overloads: dict = {}

        def compile(self, *args):
            raise RecursionError("maximum recursion depth exceeded")

        __call__ = compile

    def load(src, **kw):  # the module, with a kernel that cannot compile
        mod = type(real(src, **kw))("too_large")
        mod.kernel = Recursing()
        return mod

    monkeypatch.setattr(cpu, "load_module", load)

    def unrolled(x):
        for c in [0.5, 0.25, 0.125]:  # a loop over a list: unrolled by tracing
            x = x + np.sin(c * x)
        return np.sum(x * x)

    x = np.linspace(0.0, 1.0, 7)
    for eager_first in (False, True):
        g = td.jit(td.grad(unrolled), eager_first=eager_first)
        with pytest.raises(
            backend.base.EmitError, match=r"(?s)kernel has \d+ lines.*loop over a list.*target=\"interpret\""
        ):
            g.compile(x) if eager_first else g(x)
        np.testing.assert_allclose(td.jit(td.grad(unrolled), target="interpret")(x), td.grad(unrolled)(x))
