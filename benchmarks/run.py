"""Time tracediff against hand-written limits (and peers, when installed).

    python benchmarks/run.py                 # all workloads
    python benchmarks/run.py W2 W4 --rounds 20
    python benchmarks/run.py --quick --markdown /tmp/bench.md

For each workload, in one process: the hand-written limit, `tracediff eager`
(td.grad, interpreted with NumPy; traced once, then cached), `tracediff jit
cpu` (td.jit(td.grad(...))), and JAX / PyTorch / autograd rows when they
import. Every variant is checked against the limit before it is timed, and
the limit is checked against td.grad and finite differences, so a wrong
number is never reported as a time. Each variant is warmed up, then timed in
interleaved rounds (each round runs every variant once, in an order shuffled
per round); a table gives the median and the min time per call and the
ratio of the medians to the limit's.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# OpenMP threads (Numba's omp layer, PyTorch) spin for a while after each
# parallel region by default; interleaved with other variants on few cores,
# that spinning steals the next variant's CPU. Sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import workloads as W  # noqa: E402

import tracediff as td  # noqa: E402

ALL = ("W1", "W2", "W3", "W4", "W5", "W6", "W9", "W10", "W12", "W13")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def short(e: BaseException, n: int = 90) -> str:
    s = f"{type(e).__name__}: {e}".replace("\n", " ").replace("|", "/")
    return s if len(s) <= n else s[: n - 3] + "..."


# --- results ------------------------------------------------------------------------------


ONE_CALL_S = 60.0  # a variant slower than this per call is timed once


@dataclass
class Row:
    workload: str
    variant: str
    times: list[float] = field(default_factory=list)  # seconds per call, one per sample
    status: str = ""  # "" when timed; else "n/a (...)", "WRONG (...)"
    notes: list[str] = field(default_factory=list)
    single: float | None = None  # W5: one measurement, no median

    @property
    def median(self) -> float | None:
        if self.single is not None:
            return self.single
        return statistics.median(self.times) if self.times else None

    @property
    def min(self) -> float | None:
        return min(self.times) if self.times else None


def fmt_t(t: float | None) -> str:
    if t is None:
        return "—"
    if t < 1e-3:
        return f"{t * 1e6:.2f} µs"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def table(rows: list[Row]) -> str:
    lines = [
        "| workload | variant | median | min | ratio to limit | notes |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    limits = {r.workload: r.median for r in rows if r.variant == "limit" and not r.status}
    for r in rows:
        lim = limits.get(r.workload)
        notes = list(r.notes)
        if r.status:
            kind, _, reason = r.status.partition(" (")
            med, mn, ratio = kind, "—", "—"
            if reason:
                notes.insert(0, reason.rstrip(")"))
        else:
            med, mn = fmt_t(r.median), fmt_t(r.min)
            ratio = f"{r.median / lim:.2f}×" if lim and (r.single is None or r.workload != "W5") else "—"
        lines.append(f"| {r.workload} | {r.variant} | {med} | {mn} | {ratio} | {'; '.join(notes)} |")
    return "\n".join(lines)


# --- the variants of one workload ------------------------------------------------------------


def _np_tuple(x):
    return tuple(np.asarray(a) for a in W.as_tuple(x))


def variants(w: W.Workload, args, peers: tuple[str, ...], target: str = "cpu") -> dict:
    """{name: build}; build() returns (call, to_numpy), and may raise."""

    def single(grad):  # W6 trains with one gradient array, not a 1-tuple
        return (lambda *a: grad(*a)[0]) if w.training else grad

    def make(grad):
        def build():
            if w.training:
                g = single(grad)
                call = lambda: W.train(g, *args)  # noqa: E731
            else:
                call = lambda: grad(*args)  # noqa: E731
            compile_ = getattr(grad, "compile", None)
            if compile_ is not None:  # td.jit: its steady state is the compiled code
                call.ready = lambda: compile_(*args)
            return call, _np_tuple

        return build

    out = {
        "limit": make(w.limit),
        "tracediff eager": make(_td_grad(w)),
        f"tracediff jit {target}": make(_td_grad(w, jit=target)),
    }
    if peers:
        import peers as P

        out.update(P.peer_variants(w, args, peers))
    return out


def _td_grad(w: W.Workload, jit: str | None = None):
    """td.grad(fn, argnums), or td.jit(td.grad(fn, argnums), target=jit); returns a tuple."""
    g = td.grad(w.fn, argnums=w.argnums)
    if jit:
        g = td.jit(g, target=jit)
    if isinstance(w.argnums, int):
        one = lambda *a: (g(*a),)  # noqa: E731
        if jit:
            one.compile = g.compile
        return one
    return g


# --- timing ------------------------------------------------------------------------------------


def sample(call, k: int) -> float:
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(k):
            call()
        return (time.perf_counter() - t0) / k
    finally:
        if gc_was:
            gc.enable()


def memory_kept(call, to_numpy) -> tuple[float, float | None]:
    """MB kept for the backward pass during one call: (tracemalloc, peak RSS growth).

    tracemalloc sees NumPy's allocations (not Numba's, JAX's or torch's); the
    peak-RSS figure (VmHWM reset through /proc/self/clear_refs) sees all of
    them. Both exclude the inputs (allocated before) and the outputs."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    out = call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out_bytes = sum(a.nbytes for a in to_numpy(out))
    traced = max(0, peak - base - out_bytes) / 1e6
    del out
    rss = None
    try:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
        out = call()
        rss = max(0.0, (_status_kb("VmHWM") - before) * 1e3 - out_bytes) / 1e6
        del out
    except (OSError, AttributeError):
        pass
    return traced, rss


def peak_rss_growth(call, to_numpy) -> float:
    """MB by which one call raises the resident set's high-water mark, less its outputs.

    Compiled code allocates outside Python's allocator (Numba's NRT calls malloc
    directly), so tracemalloc misses it; the kernel's count of resident pages
    does not. Checked on the 2-core benchmark machine (Linux 6.18, glibc 2.36): writing "5" to
    /proc/self/clear_refs resets VmHWM to the current VmRSS, and a Numba
    function that allocates and frees a 16 MB array in a call then reads
    +15.6 MB, as a NumPy temporary of 16 MB does. Before the call, malloc_trim(0)
    hands the free memory of every malloc arena back to the OS, so that a call
    reusing pages freed by an earlier one still counts them. Memory a variant
    keeps between calls (a cached workspace) is not counted: only what a call
    adds while it runs."""
    out_bytes = sum(a.nbytes for a in to_numpy(call()))
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kb("VmRSS")
    out = call()
    hwm = _status_kb("VmHWM")
    del out
    return max(0.0, (hwm - before) * 1e3 - out_bytes) / 1e6


def peak_memory_fresh(wid: str, variant: str, target: str, timeout: float = 300.0) -> dict:
    """`peak_rss_growth` of one variant in a fresh process (W12): nothing else in its
    heap, no other variant's libraries or thread pools, after two warm-up calls
    (compilation, caches, thread pools, and whatever a variant allocates once).
    TRACEDIFF_EAGER_FIRST=0: the calls run the compiled program, not the
    interpreter that td.jit's first calls otherwise use while Numba compiles.
    Returns {"peak_mb": ...} or {"error": ...}."""
    cmd = [sys.executable, os.path.abspath(__file__), "--peak-memory-child", wid, variant, target]
    return json_child(cmd, dict(os.environ, TRACEDIFF_EAGER_FIRST="0"), timeout)


def json_child(cmd: list, env: dict, timeout: float) -> dict:
    """Run `cmd` in HERE; the JSON object its last line of output prints, or
    {"error": ...} saying why there is none."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {p.returncode}: {tail}"}


def _peak_memory_child(wid: str, variant: str, target: str) -> int:
    w = W.WORKLOADS[wid]
    args = w.data()
    try:
        peers = () if variant == "limit" or variant.startswith("tracediff ") else (variant,)
        build = variants(w, args, peers, target)[variant]
        call, to_np = build()
        for _ in range(2):
            to_np(call())
        res = {"peak_mb": min(peak_rss_growth(call, to_np) for _ in range(3))}  # least of 3: no noise
    except Exception as e:
        res = {"error": short(e, 70)}
    print(json.dumps(res))
    return 0


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(key)


def run_workload(
    w: W.Workload,
    rounds: int,
    peers: tuple[str, ...],
    target: str = "cpu",
    wait_quiet: float = 0.0,
    settle: float = 0.15,
) -> list[Row]:
    args = w.data()
    log(f"{w.id}: {w.title}")
    # 1. the limit must be right: against td.grad, with finite differences as the judge
    td_grads, td_err = None, None
    try:
        td_grads = _np_tuple(_td_grad(w)(*args))
    except Exception as e:
        td_err = short(e)
    ok, note = W.verify_limit(w, args, td_grads, td_err)
    if not ok:
        return [Row(w.id, "limit", status="n/a (limit failed verification)", notes=[note])]
    # 2. build, run once, check against the limit, warm up
    ref = None
    tol = W.tolerance(args, w.nums) if not w.training else 1e-8
    rows: dict[str, Row] = {}
    live: dict[str, tuple] = {}
    k_common = None  # calls per sample, set by the first variant timed (the limit)
    for name, build in variants(w, args, peers, target).items():
        row = rows[name] = Row(w.id, name)
        try:
            call, to_np = build()
            t0 = time.perf_counter()
            out = to_np(call())
            first = time.perf_counter() - t0
        except Exception as e:
            row.status = f"n/a ({short(e, 70)})"
            log(f"  {name}: {row.status}")
            continue
        if ref is None:  # the limit comes first
            ref = out
        err = W.max_rel_err(out, ref)
        if err > tol:
            row.status = "WRONG"
            row.notes.append(f"rel err {err:.1e} vs the limit")
            log(f"  {name}: WRONG ({err:.1e})")
            continue
        if first > ONE_CALL_S:  # PyTorch's W10 (160 s a call): one measurement, no rounds
            row.single = first
            row.notes.append(f"one call (over {ONE_CALL_S:.0f} s: not repeated)")
            continue
        ready = getattr(call, "ready", None)
        if ready is not None:  # (tiered: the first calls ran interpreted while Numba compiled)
            ready()
        t_one = min(sample(call, 1) for _ in range(2))  # warm-up
        # one number of calls per sample for every variant, the limit's: each sample
        # starts after the settle pause with the BLAS threads asleep, and a variant
        # given fewer calls per sample would carry more of that wake-up per call
        if k_common is None:
            k_common = max(1, min(100_000, int(w.sample_s / t_one))) if w.sample_s else 1
        k = k_common
        live[name] = (call, to_np, k)
        if name == "limit":
            row.notes.append(note)
        elif name != "tracediff eager" or first > 2 * t_one:
            row.notes.append(f"first call {fmt_t(first)}")
        if k > 1:
            row.notes.append(f"{k} calls per sample")
    # 3. interleaved rounds; with wait_quiet, a round during which other processes
    #    used the CPUs is dropped and run again once they are done (up to wait_quiet s)
    names = list(live)
    t_start = time.perf_counter()
    deadline = t_start + wait_quiet
    dropped, shares = 0, []  # shares: CPU share of other processes in each kept round
    if wait_quiet:
        _wait_quiet(deadline)
    r = 0
    while r < rounds:
        # a shuffled order (seeded), not a rotation: a rotation keeps each variant
        # behind the same one, and a sample's time depends on what ran before it
        # (W2's limit: 7.13 ms right after the interpreter, 6.54 ms after tracediff)
        order = random.Random(1000 * r + len(names)).sample(names, len(names))
        round_load, got = Load(), {}
        for name in order:
            call, _, k = live[name]
            time.sleep(settle)
            got[name] = sample(call, k)
        share = round_load.share() or 0.0
        if wait_quiet and share > BUSY and time.perf_counter() < deadline:
            dropped += 1
            _wait_quiet(deadline)
            continue
        for name, t in got.items():
            rows[name].times.append(t)
        shares.append(share)
        r += 1
    busy = statistics.mean(shares) if shares else 0.0
    log(
        f"  {rounds} rounds in {time.perf_counter() - t_start:.1f} s; other processes used "
        f"{100 * busy:.0f}% of the CPUs during them; {dropped} busy rounds dropped"
    )
    if "limit" in rows:
        if dropped:
            rows["limit"].notes.append(f"{dropped} busy rounds dropped")
        if busy > BUSY:
            rows["limit"].notes.append(f"NOISY: other processes used {100 * busy:.0f}% of the CPUs")
    # 4. memory kept for the backward pass
    if w.memory:
        for name, (call, to_np, _) in live.items():
            traced, rss = memory_kept(call, to_np)
            rss_txt = f", peak RSS +{rss:.0f} MB" if rss is not None else ""
            rows[name].notes.insert(0, f"tape {traced:.0f} MB (tracemalloc){rss_txt}")
    if w.peak_memory:
        for name in live:
            res = peak_memory_fresh(w.id, name, target)
            txt = (
                f"peak +{res['peak_mb']:.1f} MB a call" if "peak_mb" in res else f"peak n/a ({res['error']})"
            )
            target_txt = (
                f"; target ≤ {w.peak_target_mb:.0f} MB"
                if w.peak_target_mb and name.startswith("tracediff jit")
                else ""
            )
            rows[name].notes.insert(0, f"{txt} (fresh process{target_txt})")
            log(f"  {name}: {txt} (fresh process)")
    if w.training:
        rows["limit"].notes.insert(0, f"{W.W6_STEPS} steps, lr {W.W6_LR}, time of the whole run")
    for row in rows.values():
        if row.times:
            log(f"  {row.variant:20s} median {fmt_t(row.median):>10s}  min {fmt_t(row.min):>10s}")
    return list(rows.values())


# --- W5: first-call latency in fresh processes -------------------------------------------------


def _latency(wid: str, variant: str, cache_dir: str, timeout: float, target: str) -> dict:
    env = dict(os.environ, TRACEDIFF_CACHE_DIR=cache_dir)
    return json_child([sys.executable, os.path.join(HERE, "latency.py"), wid, variant, target], env, timeout)


def run_latency(
    peers: tuple[str, ...],
    target: str = "cpu",
    wait_quiet: float = 0.0,
    quick: bool = False,
    timeout: float = 300.0,
) -> list[Row]:
    log("W5: first-call latency (fresh processes)")
    rows = []
    have_jax = "JAX jit" in peers
    for wid in W.LATENCY_WORKLOADS[:1] if quick else W.LATENCY_WORKLOADS:
        with (
            tempfile.TemporaryDirectory(prefix="tracediff-cache-") as cache,
            tempfile.TemporaryDirectory(prefix="tracediff-cache-") as cache2,
        ):
            runs = [  # tiered (the default): the first calls interpreted while Numba compiles
                (f"tracediff jit {target}, cold cache", "jit", cache),
                (f"tracediff jit {target}, warm cache", "jit", cache),
                (f"tracediff jit {target}, eager_first=False, cold cache", "jit-wait", cache2),
                (f"tracediff jit {target}, eager_first=False, warm cache", "jit-wait", cache2),
                ("tracediff eager", "eager", cache),
            ]
            if have_jax:
                runs.append(("JAX jit (cold)", "jax", cache))
            for label, variant, cdir in runs:
                if wait_quiet:
                    _wait_quiet(time.perf_counter() + wait_quiet / 4)
                res = _latency(wid, variant, cdir, timeout, target)
                row = Row("W5", f"{wid}: {label}")
                if res.get("error"):
                    row.status = f"n/a ({res['error'][:70]})"
                elif res.get("check") != "ok":
                    row.status = "WRONG"
                    row.notes.append(str(res.get("check")))
                else:
                    row.single = res["first_s"]
                    what = {
                        "eager": "trace + first call",
                        "jit": "trace + first call, interpreted",
                    }.get(variant, "trace + compile + first call")
                    row.notes.append(
                        f"{what}; import {fmt_t(res['import_s'])}, next call {fmt_t(res['second_s'])}"
                    )
                    if res.get("compiled_s") is not None:
                        row.notes.append(
                            f"compiled code ready {fmt_t(res['compiled_s'])} after the first call began"
                        )
                log(f"  {row.variant}: {row.status or fmt_t(row.single)}")
                rows.append(row)
    return rows


# --- the report ----------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        n_avail = len(os.sched_getaffinity(0))
    except AttributeError:
        n_avail = os.cpu_count()
    try:
        rev = (
            subprocess.run(
                ["git", "describe", "--always", "--dirty"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or "?"
        )
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    lines = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M')}, tracediff at git {rev}",
        f"- machine: {n_avail} CPU cores available ({os.cpu_count()} online), {cpu}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__} "
        f"({numba.config.NUMBA_NUM_THREADS} threads, {_layer()} layer), "
        f"tracediff {td.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}",
    ]
    return lines


def _layer() -> str:
    try:
        return numba.threading_layer()  # the one in use, once a parallel function has run
    except ValueError:
        return numba.config.THREADING_LAYER


BUSY = 0.10  # the share of all CPUs used by other processes that makes a round noisy


def _wait_quiet(deadline: float) -> bool:
    """Sleep until other processes leave the CPUs alone for 3 s in a row, or until deadline."""
    quiet = 0
    while time.perf_counter() < deadline:
        load = Load()
        time.sleep(1.0)
        quiet = quiet + 1 if (load.share() or 0.0) < BUSY else 0
        if quiet >= 3:
            return True
    return False


class Load:
    """How busy the machine was with other processes while we ran (/proc/stat)."""

    def __init__(self):
        self.t0, self.own0, self.busy0 = time.perf_counter(), self._own(), self._busy()

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
        except OSError:
            return None
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait

    def share(self) -> float | None:
        """The fraction of all CPUs other processes used since this object was made."""
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        other = (busy - self.busy0) - (self._own() - self.own0)
        return max(0.0, other) / (wall * (os.cpu_count() or 1))

    def text(self) -> str:
        share = self.share()
        return "" if share is None else f"; other processes used {100 * share:.0f}% of the CPUs meanwhile"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workloads", nargs="*", help=f"any of {' '.join(ALL)} (default: all)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per workload (default: per workload)")
    ap.add_argument("--quick", action="store_true", help="few rounds: a smoke run under a minute")
    ap.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    ap.add_argument("--no-peers", action="store_true", help="skip JAX / PyTorch / autograd rows")
    ap.add_argument("--peers", metavar="LIST", help="comma-separated subset of jax,torch,autograd")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="on a shared machine: drop rounds during which other processes used the CPUs "
        "and rerun them when it is quiet, waiting up to S seconds per workload",
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=0.15,
        metavar="S",
        help="pause before each sample, so that the BLAS/OpenMP threads of the previous "
        "variant stop spinning (default 0.15 s)",
    )
    ap.add_argument(
        "--jit-target",
        default="cpu",
        choices=("cpu", "cuda", "interpret"),
        help="target of the `tracediff jit` rows (default: cpu)",
    )
    ap.add_argument(
        "--peak-memory-child", nargs=3, metavar=("W", "VARIANT", "TARGET"), help=argparse.SUPPRESS
    )
    opts = ap.parse_args(argv)
    if opts.peak_memory_child:
        return _peak_memory_child(*opts.peak_memory_child)
    wanted = [x.upper() for x in opts.workloads] or list(ALL)
    for x in wanted:
        if x not in ALL:
            ap.error(f"unknown workload {x!r}; choose from {' '.join(ALL)}")
    peer_line = []
    peers: tuple[str, ...] = ()
    if not opts.no_peers:
        import peers as P

        avail = P.available()
        if opts.peers:
            names = {"jax": "JAX jit", "torch": "PyTorch eager", "autograd": "autograd"}
            want = {names.get(p.strip().lower(), p.strip()) for p in opts.peers.split(",")}
            avail = {k: v for k, v in avail.items() if k in want}
        peers = tuple(avail)
        peer_line.append("- peers: " + (", ".join(f"{k} {v}" for k, v in avail.items()) or "none installed"))
    for line in machine() + peer_line:
        log(line)
    rows: list[Row] = []
    load = Load()
    t0 = time.perf_counter()
    for wid in ALL:
        if wid not in wanted:
            continue
        if wid == "W5":
            rows += run_latency(peers, opts.jit_target, opts.wait_quiet, opts.quick)
            continue
        w = W.WORKLOADS[wid]
        rounds = opts.rounds or (max(3, w.rounds // 4) if opts.quick else w.rounds)
        if opts.quick and w.training:
            rounds = opts.rounds or 2
        rows += run_workload(w, rounds, peers, opts.jit_target, opts.wait_quiet, opts.settle)
    took = time.perf_counter() - t0
    cmd = "python benchmarks/run.py" + (
        "" if argv is None and len(sys.argv) < 2 else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    report = "\n".join(
        [*machine(), *peer_line, f"- command: `{cmd}` ({took:.0f} s{load.text()})", "", table(rows), ""]
    )
    print(report)
    if opts.markdown:
        with open(opts.markdown, "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
