"""Check td.report's cost model against its own measurements, on every workload
of shared/bench/WORKLOADS.md and on the loss of each example.

    python benchmarks/report_check.py                  # full sizes (a few minutes)
    python benchmarks/report_check.py --small          # small arrays: a quick smoke run
    python benchmarks/report_check.py W1 W4 mlp_digits --markdown /tmp/report_check.md

For each loss function (the one each workload differentiates, with the argnums
of benchmarks/run.py; W6 is a training run of 300 steps: its loss, w6, at the
starting point) it runs `td.report(loss, *args, argnums=...)` on target "cpu"
and prints a table: modelled against measured time of the forward and the
gradient program (ratio measured/model), the bytes kept for the backward
sweep, the modelled peak memory and the measured peak (VmHWM growth) of one
gradient call (ratios measured/kept and measured/model peak), the findings of
the trust checks, and how long the report took. A workload that cannot be
reported gets a row saying why (W5 has no loss of its own; W11 needs a GPU;
W7 and W8 are not in WORKLOADS.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as run.py: no spinning OpenMP threads

import numpy as np  # noqa: E402
import workloads as W  # noqa: E402

import tracediff as td  # noqa: E402
from tracediff.report.render import _bytes, _time  # noqa: E402

# --- what is reported -------------------------------------------------------------------------


@dataclass
class Case:
    """One loss function and its arguments (or why it cannot be reported)."""

    name: str
    title: str
    fn: Callable | None = None
    args: tuple = ()
    argnums: int | tuple[int, ...] = 0
    skip: str = ""  # the reason, when there is nothing to report


def _rng(k: int) -> np.random.Generator:
    return np.random.default_rng(W.SEED + 100 + k)


def small_data(wid: str) -> tuple:
    """The arguments of workload `wid` at a small size (same dtypes and value ranges)."""
    if wid == "W1":
        x, y = (_rng(1).standard_normal(20_000, dtype=np.float32) for _ in range(2))
        return (x, y)
    if wid == "W2":
        rng = _rng(2)
        n, d, h, k = 64, 64, 32, 10
        X = rng.random((n, d), dtype=np.float32)
        Y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
        W1 = (rng.standard_normal((d, h)) / math.sqrt(d)).astype(np.float32)
        W2 = (rng.standard_normal((h, k)) / math.sqrt(h)).astype(np.float32)
        b1 = np.zeros(h, np.float32)
        b2 = np.zeros(k, np.float32)
        return (W1, b1, W2, b2, X, Y)
    if wid == "W3":
        return W.w3_data()  # 16 elements already
    if wid == "W4":
        rng = _rng(4)
        return (
            rng.standard_normal(10_000, dtype=np.float32),
            rng.standard_normal(1, dtype=np.float32),
            rng.standard_normal(1, dtype=np.float32),
        )
    if wid == "W6":
        rng = _rng(6)
        X = rng.standard_normal((2_000, 20))
        y = (rng.random(2_000) < 0.5).astype(np.float64)
        return (np.zeros(20), X, y)
    if wid == "W9":
        rng = _rng(9)
        return (rng.standard_normal(1_000), rng.standard_normal(1_000), np.array(2.0))
    if wid == "W10":
        a, b, c, d = W.w10_data()
        return tuple(v[:1_000].copy() for v in (a, b, c, d))
    if wid == "W12":
        P, w = W.w12_data()
        return (P[:200].copy(), w[:200].copy())
    if wid == "W13":
        rng = _rng(13)
        return tuple(rng.standard_normal((4, 32, 16), dtype=np.float32) for _ in range(4))
    raise KeyError(wid)


WORKLOAD_IDS = [f"W{i}" for i in range(1, 14)]
_NOT_HERE = {
    "W5": "first-call latency of W2 and W4 (no loss of its own: see the W2 and W4 rows)",
    "W7": "not in WORKLOADS.md (the table has W1-W6 and W9-W13)",
    "W8": "not in WORKLOADS.md (the table has W1-W6 and W9-W13)",
    "W11": "the GPU workload (W1, W2, W4 at larger sizes on target='cuda'): needs a CUDA device",
}


def workload_cases(small: bool) -> list[Case]:
    out = []
    for wid in WORKLOAD_IDS:
        if wid in _NOT_HERE:
            out.append(Case(wid, "", skip=_NOT_HERE[wid]))
            continue
        w = W.WORKLOADS[wid]
        title = w.title + (" (training run: its loss at the start)" if w.training else "")
        args = small_data(wid) if small else w.data()
        out.append(Case(wid, title, w.fn, args, w.argnums))
    return out


def _example(name: str):
    ex = os.path.join(ROOT, "examples")
    if ex not in sys.path:
        sys.path.insert(0, ex)  # dask_data_parallel imports logistic_regression by name
    return importlib.import_module(name)


def example_cases(small: bool) -> list[Case]:
    """The loss of each example in examples/ (imported, not run), at its own data size."""
    out = []

    def add(name, title, build):
        try:
            fn, args, argnums = build()
            out.append(Case(name, title, fn, args, argnums))
        except Exception as e:  # an optional dependency missing, ...
            out.append(Case(name, title, skip=f"{type(e).__name__}: {e}"))

    def linear():
        m = _example("linear_regression")
        rng = np.random.default_rng(0)
        x = rng.uniform(-1.0, 1.0, 200)
        y = 2.0 * x + 1.0 + 0.1 * rng.standard_normal(200)
        return m.loss, ((np.array(0.0), np.array(0.0)), x, y), 0

    def logistic():
        m = _example("logistic_regression")
        x, y = m.make_data(np.random.default_rng(0), 1000)
        return m.loss, ({"w": np.zeros(2), "b": np.zeros(())}, x, y), 0

    def mlp():
        m = _example("mlp_digits")
        try:
            from sklearn.datasets import load_digits

            digits = load_digits()
            x, target = digits.data.astype(np.float32), digits.target
        except ImportError:  # (the examples extra): data of the same shapes, the same program
            rng = np.random.default_rng(0)
            x, target = rng.integers(0, 17, (m.BATCH, 64)).astype(np.float32), rng.integers(0, 10, m.BATCH)
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
        idx = np.arange(m.BATCH)
        onehot = np.eye(10, dtype=np.float32)[target[idx]]
        params = m.init_params(np.random.default_rng(0), x.shape[1], m.HIDDEN, 10)
        return m.loss, (params, x[idx], onehot), 0

    def rosen():
        m = _example("scipy_fit")
        return m.rosenbrock, (np.tile([-1.2, 1.0], 5),), 0

    def curve():
        m = _example("scipy_fit")
        rng = np.random.default_rng(0)
        t = np.linspace(0.0, 4.0, 50)
        y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.02 * rng.standard_normal(t.size)
        return m.curve_loss, (np.array([1.0, 1.0, 0.0]), t, y), 0

    def second():
        m = _example("second_derivative")
        return m.z, (3.0, -2.0), (0, 1)

    def second_d():
        m = _example("second_derivative")
        return m.dz_dx, (3.0, -2.0), (0, 1)  # the gradient of dz/dx: second derivatives

    def inspect():
        m = _example("inspect_ir")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 3)).astype(np.float32)
        y = (rng.random(32) > 0.5).astype(np.float32)
        return m.logistic_loss, (np.zeros(3, np.float32), x, y), 0

    def dask_shard():
        m = _example("dask_data_parallel")
        lr = _example("logistic_regression")
        n = 1000 if small else 50_000  # one shard of the example's 200000 rows in 4
        x, y = lr.make_data(np.random.default_rng(0), n)
        return m.shard_loss, ({"w": np.zeros(2), "b": np.zeros(())}, x, y), 0

    add("linear_regression", "examples/linear_regression.py: loss", linear)
    add("logistic_regression", "examples/logistic_regression.py: loss", logistic)
    add("mlp_digits", "examples/mlp_digits.py: loss, one batch of 64", mlp)
    add("scipy_fit.rosenbrock", "examples/scipy_fit.py: rosenbrock, 10-d", rosen)
    add("scipy_fit.curve_loss", "examples/scipy_fit.py: curve_loss, 50 points", curve)
    add("second_derivative.z", "examples/second_derivative.py: z = x*x*y", second)
    add("second_derivative.dz_dx", "examples/second_derivative.py: dz/dx (report: d2z)", second_d)
    add("inspect_ir", "examples/inspect_ir.py: logistic_loss, float32", inspect)
    add("dask_data_parallel", "examples/dask_data_parallel.py: shard_loss, one shard", dask_shard)
    return out


# --- one report, in a fresh process -------------------------------------------------------------
#
# td.report's peak-memory measurement sets glibc's mmap threshold to a fixed 128 KB when
# it is done (that turns off glibc's dynamic threshold for the rest of the process), so
# NumPy or compiled code that allocates larger arrays is slower afterwards. Each case
# therefore runs in its own process, and its programs are timed again, without a
# report, in another one (the "clean" columns).


def _find(name: str, small: bool) -> Case:
    for c in workload_cases(small) + example_cases(small):
        if c.name == name:
            return c
    raise SystemExit(f"no case {name!r}")


def _report_child(name: str, small: bool, target: str) -> dict:
    c = _find(name, small)
    t0 = time.perf_counter()
    rep = td.report(c.fn, *c.args, argnums=c.argnums, target=target)
    took = time.perf_counter() - t0
    f, g = rep.forward, rep.gradient
    return {
        "report_s": took,
        "fwd_model": f.cost.seconds,
        "fwd_meas": f.seconds,
        "grad_model": g.cost.seconds if g else None,
        "grad_meas": g.seconds if g else None,
        "ratio": rep.ratio,
        "kept": g.cost.kept_bytes if g else None,
        "model_peak": g.cost.peak_bytes if g else None,
        "meas_peak": g.peak_measured if g else None,
        "fwd_model_peak": f.cost.peak_bytes,
        "fwd_meas_peak": f.peak_measured,
        "grad_flops": g.cost.total.flops if g else None,
        "grad_bytes": g.cost.total.bytes if g else None,
        "compile": [f.compile_s, g.compile_s if g else None],
        "from_cache": [f.from_cache, g.from_cache if g else None],
        "kinds": rep.kinds(),
        "text": str(rep),
    }


def _clean_child(name: str, small: bool, target: str) -> dict:
    """The forward and gradient timed as td.report times them, in a process that ran no
    report; then the gradient's peak memory (the last thing: it changes malloc's settings)."""
    from tracediff.report.measure import median_time, peak_memory

    c = _find(name, small)
    fwd = td.jit(c.fn, target=target, eager_first=False)
    nums = (c.argnums,) if isinstance(c.argnums, int) else c.argnums
    grad = td.jit(
        td.grad(c.fn, argnums=c.argnums if isinstance(c.argnums, int) else tuple(nums)),
        target=target,
        eager_first=False,
    )
    out = {}
    for key, fn in (("fwd", fwd), ("grad", grad)):
        fn(*c.args)
        fn(*c.args)
        out[key] = median_time(lambda fn=fn: fn(*c.args))
    out["grad_peak"] = peak_memory(lambda: grad(*c.args)) if target == "cpu" else None
    return out


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _child(
    kind: str, name: str, small: bool, target: str, timeout: float, threads: int | None = None
) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), f"--{kind}-child", name, "--target", target]
    if small:
        cmd.append("--small")
    env = dict(os.environ)
    if threads:
        env.update({k: str(threads) for k in THREAD_VARS})
    import run  # (its helper; imported here: run.py imports the peers' shims)

    out = run.json_child(cmd, env, timeout)
    if "error" in out:
        out["error"] = out["error"][:200]
    return out


@dataclass
class Result:
    case: Case
    rep: dict = field(default_factory=dict)  # from _report_child, or {"error": ...}
    clean: dict = field(default_factory=dict)  # from _clean_child

    @property
    def error(self) -> str:
        return self.rep.get("error", "")


# --- the table ---------------------------------------------------------------------------------


def _t(s: float | None) -> str:
    return "—" if s is None else _time(s)


def _b(n: int | None) -> str:
    return "—" if n is None else _bytes(n)


def _q(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _r(q: float | None) -> str:
    if q is None:
        return "—"
    return f"{q:.2f}" if q < 10 else f"{q:.0f}"


def ratios(res: Result) -> dict[str, float | None]:
    """measured/model of the times (the report's measurement, and the clean one), and the
    report's measured peak over the kept bytes and over the modelled peak."""
    r, c = res.rep, res.clean
    return {
        "fwd": _q(r.get("fwd_meas"), r.get("fwd_model")),
        "grad": _q(r.get("grad_meas"), r.get("grad_model")),
        "fwd clean": _q(c.get("fwd"), r.get("fwd_model")),
        "grad clean": _q(c.get("grad"), r.get("grad_model")),
        "grad report/clean": _q(r.get("grad_meas"), c.get("grad")),
        "peak/kept": _q(r.get("meas_peak"), r.get("kept")),
        "peak/model": _q(r.get("meas_peak"), r.get("model_peak")),
    }


HEAD = (
    "| case | fwd model | fwd measured | ratio | grad model | grad measured | ratio "
    "| grad clean | ratio | t(grad)/t(f) | kept | model peak | measured peak | /kept | /model peak "
    "| findings | report |"
)


def table(results: list[Result]) -> str:
    lines = [HEAD, "| --- " + "| ---: " * 16 + "|"]
    for res in results:
        c, r = res.case, res.rep
        if c.skip or res.error:
            why = c.skip or f"td.report failed: {res.error}"
            lines.append(f"| {c.name} | " + " | ".join(["—"] * 15) + f" | {why} |")
            continue
        q = ratios(res)
        kinds = r["kinds"]
        found = f"{len(kinds)}: {', '.join(sorted(set(kinds)))}" if kinds else "0"
        cells = [
            c.name,
            _t(r["fwd_model"]),
            _t(r["fwd_meas"]),
            _r(q["fwd"]),
            _t(r["grad_model"]),
            _t(r["grad_meas"]),
            _r(q["grad"]),
            _t(res.clean.get("grad")),
            _r(q["grad clean"]),
            f"{r['ratio']:.2f}" if r["ratio"] is not None else "—",
            _b(r["kept"]),
            _b(r["model_peak"]),
            _b(r["meas_peak"]),
            _r(q["peak/kept"]),
            _r(q["peak/model"]),
            found,
            _t(r["report_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread(results: list[Result], min_s: float, min_bytes: int) -> list[str]:
    """The factors: ranges of measured/model (time; also for programs measured at min_s or
    more) and of the measured peak against the kept bytes and the modelled peak (for peaks
    of min_bytes or more: below, the page-granular measurement says little)."""
    out = []
    ok = [r for r in results if r.rep and not r.error and not r.case.skip]
    for key, meas, label in (
        ("fwd", "fwd_meas", "forward"),
        ("grad", "grad_meas", "gradient"),
        ("grad clean", None, "gradient, timed in a clean process"),
    ):
        vals = []
        for r in ok:
            q = ratios(r)[key]
            t = r.rep.get(meas) if meas else r.clean.get("grad")
            if q is not None and t is not None:
                vals.append((q, t >= min_s, r.case.name))
        big = [v for v in vals if v[1]]
        for sel, what in ((vals, "all"), (big, f"measured >= {_t(min_s)}")):
            if sel:
                lo, hi = min(sel), max(sel)
                out.append(
                    f"- time, {label}, {what} ({len(sel)}): measured/model from {lo[0]:.3g} ({lo[2]}) "
                    f"to {hi[0]:.3g} ({hi[2]})"
                )
    for key, label in (("peak/kept", "measured peak / kept"), ("peak/model", "measured peak / model peak")):
        vals = [
            (ratios(r)[key], r.case.name)
            for r in ok
            if ratios(r)[key] is not None and (r.rep.get("meas_peak") or 0) >= min_bytes
        ]
        if vals:
            lo, hi = min(vals), max(vals)
            out.append(
                f"- memory, {label}, measured peak >= {_b(min_bytes)} ({len(vals)}): "
                f"from {lo[0]:.3g} ({lo[1]}) to {hi[0]:.3g} ({hi[1]})"
            )
    return out


def machine_lines(target: str) -> list[str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M')}; target {target}",
        f"- machine: {n} CPU cores available ({os.cpu_count()} online), {cpu}"
        + (f"; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start" if load else ""),
        f"- Python {sys.version.split()[0]}, NumPy {np.__version__}, tracediff {td.__version__}",
    ]
    return lines


def _wait_quiet(seconds: float) -> None:
    if seconds <= 0:
        return
    import run  # its load probe (/proc/stat less our own CPU time)

    if not run._wait_quiet(time.perf_counter() + seconds):
        print(f"  (not quiet after {seconds:.0f} s; going on)", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="workload ids (W1 ...) or example names (default: all)")
    ap.add_argument("--small", action="store_true", help="small arrays: every report in a few seconds")
    ap.add_argument("--target", default="cpu", choices=("cpu", "cuda", "interpret"))
    ap.add_argument("--no-examples", action="store_true", help="the workloads only")
    ap.add_argument("--no-clean", action="store_true", help="skip the timing without a report")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    ap.add_argument("--text", action="store_true", help="also print each report in full (stderr)")
    ap.add_argument("--timeout", type=float, default=600.0, metavar="S", help="per child process")
    ap.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="BLAS, OpenMP and Numba threads of the reports' processes (default: their own defaults). "
        "On a shared machine, 1 keeps a busy neighbour from stalling a multi-threaded matrix "
        "product (a 3 ms W13 gradient then takes 300 ms)",
    )
    ap.add_argument(
        "--min-time",
        type=float,
        default=1e-3,
        metavar="S",
        help="the time factor is also given for programs measured at S seconds or more (default 1 ms)",
    )
    ap.add_argument(
        "--min-bytes",
        type=int,
        default=1 << 20,
        metavar="B",
        help="the memory factors count measured peaks of B bytes or more (default 1 MiB)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="on a shared machine: before each report, wait until other processes leave the "
        "CPUs alone for 3 s (up to S seconds), as run.py --wait-quiet does",
    )
    ap.add_argument("--report-child", metavar="CASE", help=argparse.SUPPRESS)
    ap.add_argument("--clean-child", metavar="CASE", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.report_child or opts.clean_child:
        if opts.report_child:
            res = _report_child(opts.report_child, opts.small, opts.target)
        else:
            res = _clean_child(opts.clean_child, opts.small, opts.target)
        print(json.dumps(res))
        return 0
    cases = workload_cases(opts.small) + ([] if opts.no_examples else example_cases(opts.small))
    if opts.cases:
        want = {x.lower() for x in opts.cases}
        cases = [c for c in cases if c.name.lower() in want or c.name.split(".")[0].lower() in want]
        if not cases:
            ap.error(f"no case matches {' '.join(opts.cases)}")
    head = machine_lines(opts.target)
    if opts.threads:
        head.append(f"- threads: {opts.threads} ({', '.join(THREAD_VARS)})")
    for line in head:
        print(line, file=sys.stderr, flush=True)
    results = []
    t_all = time.perf_counter()
    loads = []
    for c in cases:
        res = Result(c)
        results.append(res)
        if c.skip:
            print(f"{c.name}: not reported: {c.skip}", file=sys.stderr, flush=True)
            continue
        _wait_quiet(opts.wait_quiet)
        if hasattr(os, "getloadavg"):
            loads.append(os.getloadavg()[0])
        print(f"{c.name}: {c.title} ...", file=sys.stderr, flush=True)
        res.rep = _child("report", c.name, opts.small, opts.target, opts.timeout, opts.threads)
        if res.error:
            print(f"  td.report failed: {res.error}", file=sys.stderr, flush=True)
            continue
        if not opts.no_clean:
            res.clean = _child("clean", c.name, opts.small, opts.target, opts.timeout, opts.threads)
            if "error" in res.clean:
                print(f"  clean timing failed: {res.clean['error']}", file=sys.stderr, flush=True)
                res.clean = {}
        q = ratios(res)
        print(
            f"  {res.rep['report_s']:.1f} s; measured/model: forward {_r(q['fwd'])}, gradient "
            f"{_r(q['grad'])} (clean {_r(q['grad clean'])}); peak/kept {_r(q['peak/kept'])}, "
            f"peak/model peak {_r(q['peak/model'])}; findings {res.rep['kinds'] or 'none'}",
            file=sys.stderr,
            flush=True,
        )
        if opts.text:
            print(res.rep["text"], file=sys.stderr, flush=True)
    took = time.perf_counter() - t_all
    cmd = "python benchmarks/report_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_txt = (
        f"; load average (1 min) {min(loads):.2f} to {max(loads):.2f} at the reports' starts" if loads else ""
    )
    out = [
        *head,
        f"- command: `{cmd.strip()}` ({took:.0f} s{load_txt})",
        "",
        table(results),
        "",
        "Factors:",
        "",
        *spread(results, opts.min_time, opts.min_bytes),
        "",
    ]
    text = "\n".join(out)
    print(text)
    if opts.markdown:
        with open(opts.markdown, "w") as f:
            f.write(text)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
