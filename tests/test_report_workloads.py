"""td.report runs on every workload of benchmarks/workloads.py (small arrays) and on
the loss of each example, as benchmarks/report_check.py reports them at full size.

measure=False: no timing, no memory measurement. Three workloads compile for
target="cpu" (cheap compiles); the others run interpreted, where the cost model,
the trust checks and the finite-difference check are the same and Numba's
compile time (W4's 40-step chain: ~25 s) is not paid."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import tracediff as td

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)

import report_check as RC  # noqa: E402  (benchmarks/report_check.py: the cases and their small data)

ON_CPU = {"W2", "W3", "W6"}  # compiled: a second or two each


def _assert_report(rep) -> None:
    assert rep.gradient is not None
    for p in (rep.forward, rep.gradient):
        assert p.cost.total.flops > 0, p.title
        assert p.traced_eqns > 0 and p.cost.eqns > 0
        assert p.seconds is None and p.peak_measured is None  # measure=False
        assert p.cost.seconds > 0 and p.cost.peak_bytes >= 0
    assert rep.gradient.cost.kept_bytes >= 0
    kinds = rep.kinds()
    assert "finite-differences" not in kinds and "non-finite-gradient" not in kinds, str(rep)
    text = str(rep)
    assert "time (model)" in text and "checks:" in text


WORKLOADS = [c for c in RC.workload_cases(small=True) if not c.skip]


def test_every_workload_is_reported_or_says_why():
    cases = RC.workload_cases(small=True)
    assert [c.name for c in cases] == [f"W{i}" for i in range(1, 14)]
    for c in cases:
        assert (c.fn is None) == bool(c.skip), c.name
    assert {c.name for c in cases if c.skip} == {"W5", "W7", "W8", "W11"}
    assert len(ON_CPU & {c.name for c in WORKLOADS}) == 3


@pytest.mark.parametrize("case", WORKLOADS, ids=[c.name for c in WORKLOADS])
def test_report_of_a_workload(case):
    target = "cpu" if case.name in ON_CPU else "interpret"
    rep = td.report(case.fn, *case.args, argnums=case.argnums, target=target, measure=False)
    _assert_report(rep)
    assert rep.target == target
    if target == "cpu":
        assert rep.forward.compile_s is not None and rep.gradient.loops is not None


EXAMPLES = RC.example_cases(small=True)


@pytest.mark.parametrize("case", EXAMPLES, ids=[c.name for c in EXAMPLES])
def test_report_of_an_example_loss(case):
    if case.skip:
        pytest.skip(case.skip)  # an optional dependency (scikit-learn, Dask) missing
    rep = td.report(case.fn, *case.args, argnums=case.argnums, target="interpret", measure=False)
    _assert_report(rep)


def test_small_data_keeps_the_dtypes_of_the_full_size():
    # the dtypes of WORKLOADS.md, without building the full arrays (W1: 2 x 4M elements)
    f32 = {"W1", "W2", "W4", "W12", "W13"}
    for c in WORKLOADS:
        dt = "float32" if c.name in f32 else "float64"
        assert all(np.asarray(a).dtype == dt for a in c.args), c.name
