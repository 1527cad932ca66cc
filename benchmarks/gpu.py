"""W11, the GPU: `td.jit(td.grad(f, argnums), target="cuda")` on device arrays, timed
against hand-written numba.cuda kernels and against the device's memory-bandwidth floor.

    python benchmarks/gpu.py                  # W1 2 x 64M, W2 batch 4096, W4 16M (float32)
    python benchmarks/gpu.py --quick          # 1/16 of those sizes, fewer rounds
    python benchmarks/gpu.py W4 --rounds 40 --markdown /tmp/gpu.md

Without a usable GPU it prints "no GPU: skipped (reason)" and exits 0; the CUDA
simulator (NUMBA_ENABLE_CUDASIM=1) does not count as one. Two checks of the
hand-written kernels need no GPU:

    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu.py --check-kernels-small   # values, n = 64
    python benchmarks/gpu.py --check-ptx      # compile: no float64 values, W4 all in registers

Rows of each workload (inputs already on the device, results left there):

- `limit`: hand-written numba.cuda kernels. W1: one fused grid-stride kernel
  that reads x, y once and writes gx, gy. W4: one kernel that runs the 40 steps
  forward and back per element with every intermediate in a register (its
  source is generated, unrolled), reduces gw per block, and a one-block kernel
  that adds the block sums. W2: six cuBLAS matmuls
  (`tracediff.backend.cublas.matmul`, else PyTorch's; bias gradients as ones @ d)
  and three small kernels: bias + tanh, softmax + loss gradient, tanh'.
  Outputs and workspace are allocated once (what a caching allocator gives).
- `tracediff jit cuda`: `td.jit(td.grad(f, argnums=...), target="cuda")`.
- `JAX jit (GPU)` and `PyTorch CUDA eager`, when they see a GPU: JAX with
  float32 matmul precision "highest" and PyTorch with TF32 off, like NumPy.
- `bandwidth floor`: the bytes that must move (every input read once, every
  gradient written once) over the bandwidth a copy kernel reaches on a 1 GiB
  array (cuda events). No row can beat it by more than timing noise.

Method, in one process: the limit is checked against the CPU limit of
`workloads.py`, every other row against the limit (relative error 2e-4); a
wrong row shows `WRONG` instead of a time. Two warm-up samples, then
interleaved rounds (each round runs every row once, in a seeded order
shuffled per round, as benchmarks/run.py does: a rotation keeps each row behind
the same predecessor). A sample is k calls between two synchronizations of the device, with
k chosen so that it lasts about 20 ms; the table gives the median and the min
time per call and the ratios of the medians to the limit's and to the floor.
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import random
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# JAX takes 75% of the GPU's memory at start unless told not to, which would
# leave too little for the other rows
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import peers as P  # noqa: E402
import run as R  # noqa: E402
import workloads as W  # noqa: E402

import tracediff as td  # noqa: E402

try:
    from numba import cuda  # a module global: the simulator swaps it in the kernels' globals
except Exception:  # gpu_missing() says why
    cuda = None

IDS = ("W1", "W2", "W4")
SIZES = {"W1": 64_000_000, "W2": 4096, "W4": 16_000_000}  # elements of x (and y), W2's batch
QUICK = 16  # --quick divides the sizes by this
SAMPLE_S = 0.02  # each sample batches calls up to about this long
TOL = 2e-4  # float32, relative to the largest |gradient|, as in run.py
F32 = np.float32
_ZERO, _ONE, _TWO, _TENTH = F32(0.0), F32(1.0), F32(2.0), F32(0.1)
MAX_TPB = 256  # the block reductions' shared buffer; threads per block are a power of two up to this


def gpu_missing() -> str | None:
    """Why there is no GPU to time on, or None."""
    from tracediff.backend.cuda import gpu_missing as why

    return why()


# --- data: workloads.py's distributions and seeds at W11's sizes -------------------------


def data(wid: str, size: int) -> tuple:
    if wid == "W1":
        rng = np.random.default_rng(W.SEED + 1)
        return (rng.standard_normal(size, dtype=F32), rng.standard_normal(size, dtype=F32))
    if wid == "W2":
        rng = np.random.default_rng(W.SEED + 2)
        n, d, hdim, k = size, 784, 512, 10
        X = rng.random((n, d), dtype=F32)
        Y = np.eye(k, dtype=F32)[rng.integers(0, k, n)]
        W1 = (rng.standard_normal((d, hdim)) * math.sqrt(1.0 / d)).astype(F32)
        b1 = (rng.standard_normal(hdim) * 0.01).astype(F32)
        W2 = (rng.standard_normal((hdim, k)) * math.sqrt(1.0 / hdim)).astype(F32)
        b2 = (rng.standard_normal(k) * 0.01).astype(F32)
        return (W1, b1, W2, b2, X, Y)
    if wid == "W4":
        rng = np.random.default_rng(W.SEED + 4)
        x = rng.standard_normal(size, dtype=F32)
        return (x, rng.standard_normal(1, dtype=F32), rng.standard_normal(1, dtype=F32))
    raise KeyError(wid)


def title(wid: str, size: int) -> str:
    return {
        "W1": f"elementwise-heavy loss, 2 x {size:,} float32",
        "W2": f"MLP step, {size} x 784 -> 512 -> 10, float32",
        "W4": f"40-step chain, {size:,} float32",
    }[wid]


def rel_err(got, want) -> float:
    """workloads.max_rel_err, except that a NaN or inf in `got` is wrong (its max() skips NaN)."""
    if not all(np.all(np.isfinite(np.asarray(g))) for g in W.as_tuple(got)):
        return math.inf
    return W.max_rel_err(got, want)


def floor_bytes(wid: str, args) -> int:
    """Every input read once, every gradient written once."""
    return sum(a.nbytes for a in args) + sum(args[i].nbytes for i in W.WORKLOADS[wid].nums)


def w2_flops(args) -> float:
    W1, _, W2, _, X, _ = args
    (n, d), hdim, k = X.shape, W1.shape[1], W2.shape[1]
    return 2.0 * n * (2 * d * hdim + 3 * hdim * k)  # X@W1, X.T@da; h@W2, h.T@d, d@W2.T


# --- the hand-written kernels --------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """Grid-stride launches: tpb threads a block, at most max_blocks blocks."""

    tpb: int
    max_blocks: int

    def blocks(self, n: int) -> int:
        return max(1, min(self.max_blocks, -(-n // self.tpb)))


def _w4_source(steps: int) -> str:
    """W4's gradient kernel, the `steps` steps unrolled: x_k and t_k are scalars (registers)."""
    body = []
    for k in range(steps):
        body += [f"t{k} = math.tanh(x{k} * wv + bv)", f"x{k + 1} = x{k} + TENTH * t{k}"]
    body.append(f"g = TWO * x{steps}")  # d sum(x*x) / dx
    for k in range(steps - 1, -1, -1):
        body += [f"du = TENTH * g * (ONE - t{k} * t{k})", f"sw += du * x{k}", "g += du * wv"]
    lines = "\n".join(" " * 8 + s for s in body)
    return f"""\
def w4_grad(x, w, b, gx, partial):
    wv = w[0]
    bv = b[0]
    sw = ZERO
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        x0 = x[i]
{lines}
        gx[i] = g
    total = block_sum(sw)
    if cuda.threadIdx.x == 0:
        partial[cuda.blockIdx.x] = total
"""


@functools.cache
def kernels() -> types.SimpleNamespace:
    """The kernels, compiled on first launch."""

    @cuda.jit(device=True)
    def block_sum(v):
        """The sum of v over the block (blockDim.x a power of two), in every thread."""
        buf = cuda.shared.array(MAX_TPB, numba.float32)
        t = cuda.threadIdx.x
        buf[t] = v
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if t < s:
                buf[t] += buf[t + s]
            cuda.syncthreads()
            s //= 2
        return buf[0]

    @cuda.jit
    def w1_grad(x, y, gx, gy):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            a = x[i]
            c = y[i]
            e = math.exp(-a * a)
            t = math.tanh(a * c)
            s = _ONE - t * t
            gx[i] = (math.cos(a) - _TWO * a * math.sin(a)) * e + s * c
            gy[i] = s * a + _TWO * c / (_ONE + c * c)

    @cuda.jit
    def sum_partials(partial, out):
        """One block: out[0] = sum(partial)."""
        s = _ZERO
        for i in range(cuda.threadIdx.x, partial.size, cuda.blockDim.x):
            s += partial[i]
        total = block_sum(s)
        if cuda.threadIdx.x == 0:
            out[0] = total

    @cuda.jit
    def bias_tanh(h, b):
        """h = tanh(h + b), b broadcast along rows: a block a row, the threads along it."""
        for i in range(cuda.blockIdx.x, h.shape[0], cuda.gridDim.x):
            for j in range(cuda.threadIdx.x, h.shape[1], cuda.blockDim.x):
                h[i, j] = math.tanh(h[i, j] + b[j])

    @cuda.jit
    def softmax_grad(logits, b, Y, d, inv_n):
        """One thread a row: z = logits + b; d = (softmax(z) * sum(Y) - Y) / n."""
        k = logits.shape[1]
        for r in range(cuda.grid(1), logits.shape[0], cuda.gridsize(1)):
            m = logits[r, 0] + b[0]
            for j in range(1, k):
                m = max(m, logits[r, j] + b[j])
            s = _ZERO
            ys = _ZERO
            for j in range(k):
                s += math.exp(logits[r, j] + b[j] - m)
                ys += Y[r, j]
            scale = ys / s
            for j in range(k):
                d[r, j] = (math.exp(logits[r, j] + b[j] - m) * scale - Y[r, j]) * inv_n

    @cuda.jit
    def tanh_back(da, h):
        """da *= tanh'(.) = 1 - h * h; laid out as bias_tanh."""
        for i in range(cuda.blockIdx.x, h.shape[0], cuda.gridDim.x):
            for j in range(cuda.threadIdx.x, h.shape[1], cuda.blockDim.x):
                t = h[i, j]
                da[i, j] *= _ONE - t * t

    @cuda.jit
    def copy(src, dst):
        for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
            dst[i] = src[i]

    ns = {"math": math, "cuda": cuda, "block_sum": block_sum}
    ns.update(ZERO=_ZERO, ONE=_ONE, TWO=_TWO, TENTH=_TENTH)
    exec(compile(_w4_source(W.W4_STEPS), "<w4_grad, generated>", "exec"), ns)
    w4_grad = cuda.jit(ns["w4_grad"])
    return types.SimpleNamespace(
        block_sum=block_sum,
        w1_grad=w1_grad,
        w4_grad=w4_grad,
        sum_partials=sum_partials,
        bias_tanh=bias_tanh,
        softmax_grad=softmax_grad,
        tanh_back=tanh_back,
        copy=copy,
    )


# --- matmuls for W2's limit -----------------------------------------------------------------


@dataclass
class Matmul:
    """`bind(x, y, out)` returns a function that computes out[...] = x @ y (device arrays)."""

    name: str
    bind: Callable[[Any, Any, Any], Callable[[], Any]]


def _tracediff_cublas() -> Matmul:
    try:  # written alongside the CUDA backend
        from tracediff.backend.cuda.cublas import matmul
    except ImportError:
        from tracediff.backend.cublas import matmul

    stream = cuda.default_stream()
    return Matmul("cuBLAS (tracediff's cublas.matmul)", lambda x, y, out: lambda: matmul(x, y, out, stream))


def _torch_cublas() -> Matmul:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no GPU")
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, as NumPy

    def bind(x, y, out):
        # zero-copy views of numba's memory (__cuda_array_interface__), made once; torch's
        # default stream is the legacy one, like numba's, so they run in order
        tx, ty, to = (torch.as_tensor(a, device="cuda") for a in (x, y, out))
        return lambda: torch.matmul(tx, ty, out=to)

    return Matmul(f"cuBLAS (PyTorch {torch.__version__})", bind)


def _host_numpy() -> Matmul:
    def bind(x, y, out):
        return lambda: out.copy_to_device(np.ascontiguousarray(x.copy_to_host() @ y.copy_to_host()))

    return Matmul("NumPy on the host (simulator only)", bind)


def _matmul_error(mm: Matmul) -> str | None:
    """Why mm is not right (None if it is): plain, transposed-view and (1, n) operands."""
    rng = np.random.default_rng(0)
    a, b, c, e = (rng.standard_normal(s).astype(F32) for s in ((37, 19), (19, 23), (23, 19), (19, 37)))
    da, db, dc, de = (cuda.to_device(v) for v in (a, b, c, e))
    cases = [(da, db, a @ b), (da, dc.T, a @ c.T), (de.T, db, e.T @ b), (da[:1], db, a[:1] @ b)]
    for x, y, want in cases:
        out = cuda.device_array(want.shape, F32)
        mm.bind(x, y, out)()
        cuda.synchronize()
        got = out.copy_to_host()
        err = rel_err(got, want)
        if not err < 1e-5:  # TF32 would give about 1e-3
            return f"{x.shape} @ {y.shape}: rel err {err:.1e}"
    return None


def pick_matmul(host_ok: bool = False) -> tuple[Matmul | None, list[str]]:
    """The first matmul that works and is right, and notes on those that were passed over."""
    notes = []
    makers = [_tracediff_cublas, _torch_cublas] + ([_host_numpy] if host_ok else [])
    if host_ok and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        makers = [_host_numpy]  # the simulator's arrays live on the host
    for make in makers:
        try:
            mm = make()
            err = _matmul_error(mm)
        except Exception as e:
            notes.append(f"{make.__name__.strip('_')}: {R.short(e, 80)}")
            continue
        if err is None:
            return mm, notes
        notes.append(f"{mm.name} wrong: {err}")
    return None, notes


# --- the limits: build once (buffers, launch configurations), call many times --------------


def limit_w1(args, launch: Launch, mm: Matmul | None = None) -> Callable[[], tuple]:
    x, y = args
    gx, gy = cuda.device_array_like(x), cuda.device_array_like(y)
    k = kernels().w1_grad[launch.blocks(x.size), launch.tpb]

    def call():
        k(x, y, gx, gy)
        return gx, gy

    return call


def limit_w4(args, launch: Launch, mm: Matmul | None = None) -> Callable[[], tuple]:
    K = kernels()
    x, w, b = args
    blocks = launch.blocks(x.size)
    gx = cuda.device_array_like(x)
    partial = cuda.device_array(blocks, F32)  # one sum of gw a block
    gw = cuda.device_array(1, F32)
    k1, k2 = K.w4_grad[blocks, launch.tpb], K.sum_partials[1, launch.tpb]

    def call():
        k1(x, w, b, gx, partial)
        k2(partial, gw)
        return gx, gw

    return call


def limit_w2(args, launch: Launch, mm: Matmul | None = None) -> Callable[[], tuple]:
    """The forward and backward of workloads.w2_limit, on the device."""
    if mm is None:
        raise RuntimeError("no working matmul")
    K = kernels()
    W1, b1, W2, b2, X, Y = args
    (n, _), hdim, k = X.shape, W1.shape[1], W2.shape[1]
    h, logits, d, da = (cuda.device_array(s, F32) for s in ((n, hdim), (n, k), (n, k), (n, hdim)))
    ones = cuda.to_device(np.ones((1, n), F32))  # column sums as ones @ a
    out = gW1, gb1, gW2, gb2 = tuple(cuda.device_array(a.shape, F32) for a in (W1, b1, W2, b2))
    tpb, nh, nr = launch.tpb, min(n, launch.max_blocks), launch.blocks(n)  # nh: a block a row
    bt, sg, tb = K.bias_tanh[nh, tpb], K.softmax_grad[nr, tpb], K.tanh_back[nh, tpb]
    inv_n = F32(1.0 / n)
    steps = [
        mm.bind(X, W1, h),
        lambda: bt(h, b1),  # h = tanh(X @ W1 + b1)
        mm.bind(h, W2, logits),
        lambda: sg(logits, b2, Y, d, inv_n),  # d = d loss / d logits
        mm.bind(h.T, d, gW2),
        mm.bind(ones, d, gb2.reshape(1, k)),
        mm.bind(d, W2.T, da),
        lambda: tb(da, h),  # da = d loss / d (X @ W1 + b1)
        mm.bind(X.T, da, gW1),
        mm.bind(ones, da, gb1.reshape(1, hdim)),
    ]

    def call():
        for s in steps:
            s()
        return out

    return call


LIMITS = {"W1": limit_w1, "W2": limit_w2, "W4": limit_w4}


# --- the variants -----------------------------------------------------------------------------


@dataclass
class Variant:
    call: Callable[[], Any]  # one gradient, inputs already on the device
    to_host: Callable[[Any], tuple]  # the result as NumPy arrays
    sync: Callable[[Any], None]  # wait until the result is computed


def _numba_host(out) -> tuple:
    return tuple(a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a) for a in W.as_tuple(out))


def _numba_sync(out=None) -> None:
    cuda.synchronize()


def _jax_gpu():
    import jax

    return jax, jax.devices("gpu")[0]  # raises without a GPU backend


def _torch_gpu():
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no GPU")
    return torch


def peers_available() -> dict[str, str]:
    """{row name: version or why not}; only peers that see a GPU get a row."""
    out = {}
    try:
        jax, dev = _jax_gpu()
        out["JAX jit (GPU)"] = f"{jax.__version__} on {dev.device_kind}"
    except Exception as e:
        out["JAX jit (GPU)"] = f"n/a ({R.short(e, 60)})"
    try:
        torch = _torch_gpu()
        out["PyTorch CUDA eager"] = f"{torch.__version__}, CUDA {torch.version.cuda}"
    except Exception as e:
        out["PyTorch CUDA eager"] = f"n/a ({R.short(e, 60)})"
    return out


def variants(wid: str, hargs, dargs, launch: Launch, mm, peers: tuple[str, ...]) -> dict:
    """{name: build}; build() returns a Variant, and may raise."""
    w = W.WORKLOADS[wid]

    def limit():
        return Variant(LIMITS[wid](dargs, launch, mm), _numba_host, _numba_sync)

    def tracediff():
        g = td.jit(td.grad(w.fn, argnums=w.argnums), target="cuda")
        return Variant(lambda: g(*dargs), _numba_host, _numba_sync)

    def jax_jit():
        jax, dev = _jax_gpu()
        import jax.numpy as jnp

        jax.config.update("jax_default_matmul_precision", "highest")  # no TF32
        grad = jax.jit(jax.grad(P._rebind(w.fn, jnp), argnums=w.argnums))
        jargs = [jax.device_put(a, dev) for a in hargs]
        return Variant(lambda: grad(*jargs), lambda r: tuple(np.asarray(a) for a in r), jax.block_until_ready)

    def torch_eager():
        torch = _torch_gpu()
        torch.backends.cuda.matmul.allow_tf32 = False
        fn, nums = P._torch_fns(torch)[wid], w.nums
        targs = [torch.as_tensor(a, device="cuda") for a in hargs]

        def call():
            xs = [t.detach().requires_grad_(i in nums) for i, t in enumerate(targs)]
            return torch.autograd.grad(fn(*xs), [xs[i] for i in nums])

        return Variant(
            call, lambda r: tuple(t.detach().cpu().numpy() for t in r), lambda r: torch.cuda.synchronize()
        )

    out = {"limit": limit, "tracediff jit cuda": tracediff}
    if "JAX jit (GPU)" in peers:
        out["JAX jit (GPU)"] = jax_jit
    if "PyTorch CUDA eager" in peers:
        out["PyTorch CUDA eager"] = torch_eager
    return out


# --- timing -----------------------------------------------------------------------------------


def sample(v: Variant, k: int) -> float:
    """Seconds per call over k calls, from an idle device until the last result is done."""
    _numba_sync()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(k):
            out = v.call()
        v.sync(out)
        return (time.perf_counter() - t0) / k
    finally:
        if gc_was:
            gc.enable()


def measure_bandwidth(launch: Launch, nbytes: int = 1 << 30, reps: int = 10) -> tuple[float, str]:
    """Device memory bandwidth in bytes/s, (read + write) / time of a copy kernel over nbytes;
    the best of 4-byte and 8-byte elements, median of reps copies each, cuda events."""
    host = np.arange(nbytes // 4, dtype=np.uint32)
    src = cuda.to_device(host)
    best, notes = 0.0, []

    def timed(fn) -> float:
        fn()  # compile, warm
        ts = []
        for _ in range(reps):
            e0, e1 = cuda.event(), cuda.event()
            e0.record()
            fn()
            e1.record()
            e1.synchronize()
            ts.append(e0.elapsed_time(e1) / 1e3)  # ms
        return statistics.median(ts)

    for label, dtype in (("4-byte", np.uint32), ("8-byte", np.uint64)):
        dst = cuda.device_array_like(src)
        a, b = src.view(dtype), dst.view(dtype)
        k = kernels().copy[launch.blocks(a.size), launch.tpb]
        bw = 2 * nbytes / timed(lambda k=k, a=a, b=b: k(a, b))
        if not np.array_equal(dst.copy_to_host()[:: 1 << 16], host[:: 1 << 16]):
            raise RuntimeError(f"the {label} copy kernel did not copy")
        notes.append(f"{label} copy kernel {bw / 1e9:.0f} GB/s")
        best = max(best, bw)
    memcpy = 2 * nbytes / timed(lambda: dst.copy_to_device(src))
    notes.append(f"cudaMemcpy device to device {memcpy / 1e9:.0f} GB/s")
    return best, ", ".join(notes)


def run_workload(
    wid: str, size: int, rounds: int, launch: Launch, mm, mm_notes, peers, bw: float
) -> list[R.Row]:
    R.log(f"{wid}: {title(wid, size)}")
    hargs = data(wid, size)
    dargs = tuple(cuda.to_device(a) for a in hargs)
    floor = R.Row(wid, "bandwidth floor")
    nb = floor_bytes(wid, hargs)
    floor.single = nb / bw
    floor.notes.append(f"{nb / 1e6:.1f} MB at {bw / 1e9:.0f} GB/s")
    if wid == "W2":
        floor.notes.append(f"{w2_flops(hargs) / 1e9:.1f} GFLOP of matmuls: compute-bound")
    rows: dict[str, R.Row] = {}
    live: dict[str, tuple[Variant, int]] = {}
    ref = None
    for name, build in variants(wid, hargs, dargs, launch, mm, peers).items():
        row = rows[name] = R.Row(wid, name)
        try:
            v = build()
            _numba_sync()
            t0 = time.perf_counter()
            r = v.call()
            v.sync(r)
            first = time.perf_counter() - t0
            got = v.to_host(r)
        except Exception as e:
            row.status = f"n/a ({R.short(e, 70)})"
            R.log(f"  {name}: {row.status}")
            if name == "limit":
                row.notes += mm_notes if wid == "W2" else []
                return [row, floor]
            continue
        if ref is None:  # the limit, checked against the CPU limit of workloads.py
            err = rel_err(got, W.WORKLOADS[wid].limit(*hargs))
            if not err <= TOL:
                row.status = "n/a (limit failed verification)"
                row.notes.append(f"rel err {err:.1e} vs workloads.py's CPU limit")
                R.log(f"  limit: WRONG ({err:.1e} vs the CPU limit)")
                return [row, floor]
            ref = got
            row.notes.append(f"matches the CPU limit (rel err {err:.1e})")
            if wid == "W2":
                row.notes.append(f"matmuls: {mm.name}")
                row.notes += mm_notes
        else:
            err = rel_err(got, ref)
            if not err <= TOL:
                row.status = "WRONG"
                row.notes.append(f"rel err {err:.1e} vs the limit")
                R.log(f"  {name}: WRONG ({err:.1e})")
                continue
            row.notes.append(f"first call {R.fmt_t(first)}")
        t_one = min(sample(v, 1) for _ in range(2))  # warm-up
        k = max(1, min(1000, int(SAMPLE_S / t_one)))
        live[name] = (v, k)
        if k > 1:
            row.notes.append(f"{k} calls per sample")
    names = list(live)
    t_start = time.perf_counter()
    for r in range(rounds):
        for name in random.Random(1000 * r + len(names)).sample(names, len(names)):
            v, k = live[name]
            rows[name].times.append(sample(v, k))
    R.log(f"  {rounds} rounds in {time.perf_counter() - t_start:.1f} s")
    for row in rows.values():
        if row.times:
            R.log(f"  {row.variant:20s} median {R.fmt_t(row.median):>10s}  min {R.fmt_t(row.min):>10s}")
    return [*rows.values(), floor]


def table(rows: list[R.Row]) -> str:
    lines = [
        "| workload | variant | median | min | ratio to limit | ratio to floor | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    limits = {r.workload: r.median for r in rows if r.variant == "limit" and not r.status}
    floors = {r.workload: r.median for r in rows if r.variant == "bandwidth floor"}
    for r in rows:
        lim, flo = limits.get(r.workload), floors.get(r.workload)
        notes = list(r.notes)
        if r.status:
            kind, _, reason = r.status.partition(" (")
            med, mn, ratio, to_floor = kind, "—", "—", "—"
            if reason:
                notes.insert(0, reason.rstrip(")"))
        else:
            med, mn = R.fmt_t(r.median), R.fmt_t(r.min)
            ratio = f"{r.median / lim:.2f}×" if lim and r.variant != "bandwidth floor" else "—"
            to_floor = f"{r.median / flo:.2f}×" if flo else "—"
        lines.append(
            f"| {r.workload} | {r.variant} | {med} | {mn} | {ratio} | {to_floor} | {'; '.join(notes)} |"
        )
    return "\n".join(lines)


def gpu_lines(bw: float, bw_notes: str) -> list[str]:
    from importlib.metadata import version

    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    free, total = cuda.current_context().get_memory_info()
    try:
        drv = ".".join(map(str, cuda.cudadrv.driver.driver.get_version()))
    except Exception:
        drv = "?"
    return [
        f"- GPU: {name}, compute capability {'.'.join(map(str, dev.compute_capability))}, "
        f"{dev.MULTIPROCESSOR_COUNT} SMs, {total / 2**30:.0f} GiB ({free / 2**30:.0f} GiB free); "
        f"CUDA driver {drv}, numba-cuda {version('numba-cuda')}",
        f"- memory bandwidth: {bw / 1e9:.0f} GB/s over 1 GiB ({bw_notes})",
    ]


# --- checks of the hand-written kernels (no GPU needed) -------------------------------------


def w1_formula(x, y):
    """W1's gradient in float64, by hand."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    s = 1.0 - np.tanh(x * y) ** 2
    return ((np.cos(x) - 2.0 * x * np.sin(x)) * np.exp(-x * x) + s * y, s * x + 2.0 * y / (1.0 + y * y))


def w4_formula(x, w, b, steps=W.W4_STEPS):
    """W4's gradient in float64: the forward states kept, then the reverse sweep."""
    x, w, b = (a.astype(np.float64) for a in (x, w, b))
    xs, ts = [x], []
    for _ in range(steps):
        ts.append(np.tanh(xs[-1] * w + b))
        xs.append(xs[-1] + 0.1 * ts[-1])
    g, gw = 2.0 * xs[-1], 0.0
    for k in range(steps - 1, -1, -1):
        du = 0.1 * g * (1.0 - ts[k] ** 2)
        gw += float(np.sum(du * xs[k]))
        g = g + du * w
    return g, np.array([gw])


def check_kernels_small() -> int:
    """Each hand-written gradient at tiny sizes against NumPy formulas and against td.grad."""
    try:
        ok = cuda.is_available()
    except Exception:
        ok = False
    if not ok:
        print(
            "no GPU and no simulator: run NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu.py --check-kernels-small"
        )
        return 1
    where = "the CUDA simulator" if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else "the GPU"
    launch = Launch(tpb=16, max_blocks=2)  # several blocks and grid-stride steps even at n = 64
    rng = np.random.default_rng(7)
    cases = []
    for n in (64, 61):
        x, y = rng.standard_normal((2, n)).astype(F32)
        cases.append(("W1", n, (x, y), w1_formula(x, y)))
    for n in (64, 61):
        args = (rng.standard_normal(n).astype(F32), F32([0.9]), F32([-0.4]))
        cases.append(("W4", n, args, w4_formula(*args)))
    n, d, hdim, k = 64, 20, 24, 10  # any shapes; 24 columns: two strides of 16 threads
    args = (
        (rng.standard_normal((d, hdim)) * 0.3).astype(F32),
        (rng.standard_normal(hdim) * 0.1).astype(F32),
        (rng.standard_normal((hdim, k)) * 0.3).astype(F32),
        (rng.standard_normal(k) * 0.1).astype(F32),
        rng.random((n, d), dtype=F32),
        np.eye(k, dtype=F32)[rng.integers(0, k, n)],
    )
    args[5][3] *= 2.0  # one row whose labels do not sum to 1: exercises the sum(Y) term
    cases.append(("W2", n, args, W.w2_limit(*(a.astype(np.float64) for a in args))))
    mm, notes = pick_matmul(host_ok=True)
    print(f"hand-written kernels on {where}, {launch.tpb} threads x {launch.max_blocks} blocks")
    if mm is not None:
        print(f"W2 matmuls: {mm.name}" + (f" ({'; '.join(notes)})" if notes else ""))
    failed = 0
    for wid, n, args, want in cases:
        w = W.WORKLOADS[wid]
        try:
            dargs = tuple(cuda.to_device(a) for a in args)
            got = _numba_host(LIMITS[wid](dargs, launch, mm)())
        except Exception as e:
            print(f"{wid} n={n}: FAILED to run: {R.short(e, 200)}")
            failed += 1
            continue
        e_formula = rel_err(got, want)
        e_td = rel_err(got, W.as_tuple(td.grad(w.fn, argnums=w.argnums)(*args)))
        dtypes = {g.dtype for g in got}
        ok = e_formula < 1e-4 and e_td < 1e-4 and dtypes == {np.dtype(F32)}
        failed += not ok
        print(
            f"{wid} n={n}: rel err {e_formula:.1e} vs the NumPy formulas, {e_td:.1e} vs td.grad, "
            f"dtypes {sorted(map(str, dtypes))}: {'ok' if ok else 'FAILED'}"
        )
    print("all hand-written kernels agree" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


def check_ptx(cc: tuple[int, int] = (9, 0)) -> int:
    """Compile every hand-written kernel for `cc` (NVVM, no GPU needed): no float64 value in
    the typed code (a float64 constant would turn float32 arithmetic into float64), and no
    local memory in W4's kernel (its 80 states must stay in registers). libdevice's sinf and
    cosf bring a little float64 and local memory into w1_grad, on their slow path for
    |x| > 105615, as they would into any compiler's kernel: counted, not failed."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or cuda is None:
        print("--check-ptx needs the real numba.cuda: unset NUMBA_ENABLE_CUDASIM")
        return 1
    from numba.core import types as nt
    from numba.cuda import compiler, dispatcher

    if not cuda.is_available():  # device functions are compiled for the current device's cc
        dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    f32 = numba.float32
    v, m = f32[::1], f32[:, ::1]
    K = kernels()
    sigs = {
        "w1_grad": (v, v, v, v),
        "w4_grad": (v, v, v, v, v),
        "sum_partials": (v, v),
        "bias_tanh": (m, v),
        "softmax_grad": (m, v, m, m, f32),
        "tanh_back": (m, m),
        "copy": (numba.uint32[::1], numba.uint32[::1]),
    }

    def f64_vars(fn, sig, ret=nt.void) -> list[str]:
        tm = compiler.compile_cuda(fn, ret, sig, cc=cc).fndesc.typemap
        return [f"{k}: {t}" for k, t in tm.items() if "float64" in str(t)]

    failed = 0
    bad = f64_vars(K.block_sum.py_func, (f32,), f32)
    print(f"block_sum: {len(bad)} float64 values: {'ok' if not bad else 'FAILED ' + bad[0]}")
    failed += bool(bad)
    for name, sig in sigs.items():
        fn = getattr(K, name).py_func
        bad = f64_vars(fn, sig)
        lines = cuda.compile_ptx(fn, sig, cc=cc)[0].splitlines()
        f64 = sum(".f64" in ln for ln in lines if not ln.lstrip().startswith(".reg"))
        local = sum(".local" in ln for ln in lines)
        ok = not bad and not (name == "w4_grad" and local)
        failed += not ok
        print(
            f"{name}: {len(bad)} float64 values; PTX {len(lines)} lines, {f64} float64 instructions, "
            f"{local} local-memory lines: {'ok' if ok else 'FAILED'}" + (f" ({bad[0]})" if bad else "")
        )
    return 1 if failed else 0


# --- the command line -------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workloads", nargs="*", help=f"any of {' '.join(IDS)} (default: all)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per workload (default 20; --quick 5)")
    ap.add_argument("--quick", action="store_true", help=f"1/{QUICK} of the sizes and 5 rounds")
    ap.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    ap.add_argument("--no-peers", action="store_true", help="skip the JAX / PyTorch rows")
    ap.add_argument("--check-kernels-small", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-ptx", action="store_true", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*[Gg]rid size.*")  # the one-block reduction kernel
    if opts.check_kernels_small:
        return check_kernels_small()
    if opts.check_ptx:
        return check_ptx()
    wanted = [x.upper() for x in opts.workloads] or list(IDS)
    for x in wanted:
        if x not in IDS:
            ap.error(f"unknown workload {x!r}; choose from {' '.join(IDS)}")
    reason = gpu_missing()
    if reason is not None:
        print(f"no GPU: skipped ({reason})")
        return 0
    launch = Launch(tpb=256, max_blocks=32 * cuda.get_current_device().MULTIPROCESSOR_COUNT)
    rounds = opts.rounds or (5 if opts.quick else 20)
    avail = {} if opts.no_peers else peers_available()
    peers = tuple(k for k, v in avail.items() if not v.startswith("n/a"))
    peer_line = ["- peers: " + (", ".join(f"{k} {v}" for k, v in avail.items()) or "none (--no-peers)")]
    t0 = time.perf_counter()
    bw, bw_notes = measure_bandwidth(launch)
    head = R.machine() + gpu_lines(bw, bw_notes) + peer_line
    for line in head:
        R.log(line)
    mm, mm_notes = pick_matmul() if "W2" in wanted else (None, [])
    rows: list[R.Row] = []
    for wid in IDS:
        if wid in wanted:
            size = SIZES[wid] // QUICK if opts.quick else SIZES[wid]
            rows += run_workload(wid, size, rounds, launch, mm, mm_notes, peers, bw)
            gc.collect()
            cuda.current_context().deallocations.clear()
            if "PyTorch CUDA eager" in peers:
                import torch

                torch.cuda.empty_cache()
    took = time.perf_counter() - t0
    cmd = "python benchmarks/gpu.py" + (
        "" if argv is None and len(sys.argv) < 2 else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    report = "\n".join([*head, f"- command: `{cmd}` ({took:.0f} s)", "", table(rows), ""])
    print(report)
    if opts.markdown:
        with open(opts.markdown, "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
