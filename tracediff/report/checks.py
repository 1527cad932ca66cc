"""Trust checks of a gradient at given inputs: NaN-unsafe selects, float32
values promoted to float64, long float32 sums, integer arguments asked to be
differentiated, and a directional finite-difference check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ad import active_vars
from ..builder import bind
from ..core import IR, Lit, Var
from ..interpret import eval_ir
from ..passes.nan_safe import Cone, select_cones

BIG_FLOAT32_SUM = 10_000_000  # terms: float32's 24-bit mantissa loses digits past this


@dataclass
class Finding:
    """One thing a user should know about the gradient."""

    kind: str  # "nan-unsafe-select", "promotion", "float32-sum", "int-argnum", "finite-differences", ...
    line: str  # the user's source line (file.py:N), "" if none
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.line}: " if self.line else ""
        return f"[{self.kind}] {where}{self.message}" + (f"\n    fix: {self.fix}" if self.fix else "")


def _values(ir: IR, args: Sequence[Any], trips: dict | None = None) -> dict[Var, Any]:
    """Every top-level value of `ir` at these inputs (the NumPy reference); the trip
    count of each top-level `while` goes into `trips`, by source line."""
    env: dict[Var, Any] = dict(zip(ir.invars, args))
    with np.errstate(all="ignore"):
        for e in ir.eqns:
            ins = [a.val if type(a) is Lit else env[a] for a in e.inputs]
            if e.prim.name == "while" and trips is not None:
                outs = _counted_while(e, ins, trips)
            else:
                outs = bind(e.prim, *ins, **e.params)
            env.update(zip(e.outvars, [outs] if e.prim.nout == 1 else outs))
    return env


def loop_trips(ir: IR, args: Sequence[Any]) -> dict[str, int]:
    """Trip counts of the top-level `while` loops at these inputs, by source line."""
    trips: dict[str, int] = {}
    _values(ir, args, trips)
    return trips


def _counted_while(e, ins, trips: dict) -> list:
    n = e.params["n_carry"]
    carry, consts = list(ins[:n]), list(ins[n:])
    k = 0
    while bool(np.asarray(eval_ir(e.params["cond"], carry + consts)[0])):
        carry = list(eval_ir(e.params["body"], carry + consts))
        k += 1
    trips[e.src] = max(trips.get(e.src, 0), k)
    return carry


def _read(env, a):
    return a.val if type(a) is Lit else env[a]


def _cone_nans(cone: Cone, env: dict, active: set[Var]) -> tuple[Any, int, int, Any] | None:
    """Run the cone's adjoint with the select's exact cotangent (one where its side
    is taken, zero elsewhere). (the equation whose rule first makes a non-finite
    cotangent where the side is not taken, how many such positions reach the
    differentiated inputs, how many positions are untaken, an operand value
    there), or None if the gradient stays finite."""
    s = cone.select
    taken = np.broadcast_to(np.asarray(_read(env, s.inputs[0]), bool), s.outvars[0].aval.shape)
    if cone.side == 2:
        taken = ~taken
    untaken = ~taken
    if not untaken.any():
        return None
    a = s.inputs[cone.side]
    cts = {a: taken.astype(a.aval.dtype)}
    culprit = None
    with np.errstate(all="ignore"):
        for e in reversed(cone.eqns):
            ct = cts.get(e.outvars[0])
            if ct is None:
                continue
            ins = [_read(env, x) for x in e.inputs]
            try:
                grads = e.prim.vjp(ct, env[e.outvars[0]], *ins, **e.params)
            except Exception:  # a rule that needs tracing: the cone cannot be checked here
                return None
            clean = np.all(np.isfinite(ct)[untaken])
            for x, g in zip(e.inputs, grads):
                if g is None or type(x) is not Var or not x.aval.is_inexact:
                    continue
                g = np.broadcast_to(np.asarray(g), x.aval.shape)
                if culprit is None and clean and not np.all(np.isfinite(g)[untaken]):
                    bad = ~np.isfinite(g) & untaken
                    k = np.flatnonzero(bad)[0]
                    operand = [np.broadcast_to(v, x.aval.shape).flat[k] for v in ins]
                    culprit = (e, operand)
                cts[x] = cts[x] + g if x in cts else g
    if culprit is None:
        return None
    bad = np.zeros(untaken.shape, bool)
    for x in cone.entries:
        if x in active and x in cts:
            bad |= ~np.isfinite(cts[x]) & untaken
    if not bad.any():
        return None
    return culprit[0], int(bad.sum()), int(untaken.sum()), culprit[1]


def _fmt(v) -> str:
    return np.format_float_positional(v, precision=6, trim="-") if np.isscalar(v) else str(v)


def nan_unsafe_selects(ir: IR, args: Sequence[Any], wrt: Sequence[bool]) -> list[Finding]:
    """Selects (`np.where`) whose untaken side has an infinite or NaN derivative
    at these inputs, so the gradient is NaN there (top-level selects)."""
    cones = [c for c in select_cones(ir) if c.risky]
    if not cones:
        return []
    env = _values(ir, args)
    active = active_vars(ir, wrt)
    out = []
    for cone in cones:
        hit = _cone_nans(cone, env, active)
        if hit is None:
            continue
        e, n_bad, n_untaken, operand = hit
        side = "true" if cone.side == 1 else "false"
        other = "false" if cone.side == 1 else "true"
        ops = ", ".join(_fmt(v) for v in operand)
        at = f" ({e.src})" if e.src and e.src != cone.select.src else ""
        out.append(
            Finding(
                "nan-unsafe-select",
                cone.select.src,
                f"np.where's {side} side has an infinite or NaN derivative where the condition is "
                f"{other}: {e.prim.name}({ops}){at}; the gradient is NaN at {n_bad} of "
                f"{cone.select.outvars[0].aval.size} positions ({n_untaken} untaken)",
                'keep the untaken side\'s inputs in the domain ("double where"): '
                "np.where(c, np.sqrt(np.where(c, x, 1.0)), 0.0); or td.jit(..., nan_safe=True) does it",
            )
        )
    return out


def _bodies(ir: IR):
    for e in ir.eqns:
        for v in e.params.values():
            subs = [v] if isinstance(v, IR) else list(v) if isinstance(v, tuple) else []
            for sub in subs:
                if isinstance(sub, IR):
                    yield sub
                    yield from _bodies(sub)


def nested_unsafe_selects(ir: IR, plain: list, safe: list) -> list[Finding]:
    """Risky selects inside branches and loop bodies, which the value check above
    does not reach: named when the gradient has NaNs that nan_safe removes
    (`plain` and `safe`: the gradient's leaves without and with it)."""
    bad = sum(int(np.sum(~np.isfinite(g))) for g in plain)
    fixed = bad - sum(int(np.sum(~np.isfinite(g))) for g in safe)
    if fixed <= 0:
        return []
    out, seen = [], set()
    for body in _bodies(ir):
        for cone in select_cones(body):
            s = cone.select
            if not cone.risky or s.src in seen:
                continue
            seen.add(s.src)
            ops = ", ".join(sorted({e.prim.name for e in cone.risky}))
            out.append(
                Finding(
                    "nan-unsafe-select",
                    s.src,
                    f"np.where inside a branch or loop with {ops} on a side: the gradient has {bad} NaN "
                    f"or infinite entries, {fixed} of them made by the untaken sides of such selects "
                    "(they are finite with nan_safe=True)",
                    'keep the untaken side\'s inputs in the domain ("double where"): '
                    "np.where(c, np.sqrt(np.where(c, x, 1.0)), 0.0); or td.jit(..., nan_safe=True) does it",
                )
            )
    return out


def promotions(ir: IR) -> list[Finding]:
    """float32 values converted to float64 (a float64 constant or array in an
    expression, NumPy's promotion), where the arguments are float32."""
    floats = {v.aval.dtype.name for v in ir.invars if v.aval.dtype.kind == "f" and not v.aval.weak}
    if floats != {"float32"}:
        return []
    out, seen = [], set()
    for e in ir.eqns:
        if (
            e.prim.name == "convert"
            and e.inputs[0].aval.dtype.name == "float32"
            and e.outvars[0].aval.dtype.name == "float64"
            and e.src not in seen
        ):
            seen.add(e.src)
            out.append(
                Finding(
                    "promotion",
                    e.src,
                    f"a float32 value {e.inputs[0].aval} becomes float64 (a float64 constant or array "
                    "meets it, or an astype): the program runs in float64 from here",
                    "make the constant float32 (np.float32(c), c.astype(x.dtype)) or a Python float",
                )
            )
    res = [v.aval.dtype.name for v in ir.outvars if v.aval.dtype.kind == "f"]
    if "float64" in res and not out:
        out.append(
            Finding(
                "promotion", "", "the arguments are float32 but a result is float64", "check the constants"
            )
        )
    return out


def float32_sums(ir: IR) -> list[Finding]:
    """Sums of more float32 terms than float32 adds up faithfully."""
    out = []
    for e in ir.eqns:
        if e.prim.name not in ("reduce_sum", "cumsum", "matmul") or not e.inputs:
            continue
        x = e.inputs[0].aval
        if x.dtype.name != "float32":
            continue
        terms = x.shape[-1] if e.prim.name == "matmul" else x.size // max(1, e.outvars[0].aval.size)
        if e.prim.name == "cumsum":
            terms = max(x.shape) if x.shape else 1
        if terms > BIG_FLOAT32_SUM:
            out.append(
                Finding(
                    "float32-sum",
                    e.src,
                    f"{e.prim.name} adds {terms:,} float32 terms: the result may keep few correct digits",
                    "accumulate in float64 (np.sum(x, dtype=np.float64)) or sum in blocks "
                    "(x.reshape(k, -1).sum(axis=1).sum())",
                )
            )
    return out


def directional_check(
    f_value, grads: list, wrt_args: list, rng: np.random.Generator
) -> tuple[float, float, float]:
    """(finite difference, gradient · v, relative error) along a random direction v,
    a central difference in float64: `f_value(shifted wrt args) -> float`."""
    vs = [rng.standard_normal(np.shape(a)) for a in wrt_args]
    x64 = [np.asarray(a, np.float64) for a in wrt_args]
    scale = max(1.0, max((float(np.sqrt(np.mean(a * a))) if np.size(a) else 0.0) for a in x64))
    h = 1e-5 * scale  # float64: truncation and rounding both ~1e-10 relative
    plus = f_value([a + h * v for a, v in zip(x64, vs)])
    minus = f_value([a - h * v for a, v in zip(x64, vs)])
    fd = (plus - minus) / (2 * h)
    ad = float(sum(np.sum(np.asarray(g, np.float64) * v) for g, v in zip(grads, vs)))
    err = abs(fd - ad) / max(abs(fd), abs(ad), 1e-300)
    return fd, ad, err
