"""Run the primitive and program tables on target="cuda" under Numba's CUDA
simulator, or compile the kernels those runs launched to PTX.

Not a test module: `tests/test_cuda.py` runs it in subprocesses, because the
simulator must be chosen (NUMBA_ENABLE_CUDASIM=1) before Numba is imported.

    python tests/cuda_sim.py run SHARD NSHARDS OUT.json   (simulator)
    python tests/cuda_sim.py ptx IN.json                  (real numba-cuda, no GPU needed)

`run` compiles each case's forward, value_and_grad and (float64) second
derivative as one program for target="cuda", compares it with the NumPy
interpreter running the unoptimized program, and records every kernel launch
(its module, name and argument types) for `ptx`.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _arg_type(a) -> list:
    if hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, np.generic):
        contig = bool(a.flags["C_CONTIGUOUS"]) if hasattr(a, "flags") else True
        return ["array", str(a.dtype), len(a.shape), "C" if contig else "A"]
    return ["scalar", type(a).__name__, str(np.asarray(a).dtype)]


def _record_launches(launches: dict) -> None:
    from numba.cuda.simulator import kernel as simk

    orig = simk.FakeCUDAKernel.__call__

    def call(self, *args):
        if not self._device and not simk._kernel_context:
            mod = self.fn.__module__
            if mod.startswith("td_"):
                sig = [_arg_type(getattr(a, "_ary", a)) for a in args]
                path = sys.modules[mod].__file__
                launches.setdefault(json.dumps([path, self.fn.__name__, sig]), None)
        return orig(self, *args)

    simk.FakeCUDAKernel.__call__ = call


def _cases():
    """(id, function of no arguments returning (got, want, rtol)) for every case."""
    import test_prims as tp
    import test_programs as tg
    from programs_helpers import F32

    import tracediff as td

    def both_of(fn, fs, argnums, second):
        vg = td.value_and_grad(fs, argnums=argnums) if fs is not None else None
        if second:
            g0 = td.grad(fs, argnums=0)
            h = td.grad(lambda *a: np.sum(g0(*a) * 0.5))  # a Hessian-vector product
        return lambda *a: (fn(*a),) + ((vg(*a),) if vg else ()) + ((h(*a),) if second else ())

    for spec, shape, dt in (c.values for c in tp.CORE_CASES):
        if dt != np.float64 and shape != spec.shapes[0]:  # float32: each primitive's first shape
            continue

        def run(spec=spec, shape=shape, dt=dt):
            args = spec.args(np.random.default_rng(tp._seed(spec, shape)), dt, shape)
            out = np.asarray(spec.fn(*args))
            diff = spec.diff and out.dtype.kind == "f"
            fs = tp._scalarized(spec.fn, args) if diff else None
            second = diff and dt == np.float64 and spec.order >= 2 and shape == spec.shapes[0]
            both = both_of(spec.fn, fs, tuple(range(len(args))), second)
            tol = 2e-5 if dt == np.float32 else 1e-11
            return td.jit(both, target="cuda")(*args), td.jit(both, target="interpret")(*args), tol

        yield f"prim:{spec.prim}-{shape}-{np.dtype(dt).name}", run
    for p, dt in (c.values for c in tg.CASES):
        # each program once: a quarter of them in float32 (every primitive ran in both above)
        if (sum(map(ord, p.name)) % 4 == 3) != (dt == F32):
            continue

        def run(p=p, dt=dt):
            args = p.gen(tg._rng(p.name), dt)
            fs, _ = tg._scalarize(p, args)
            both = both_of(p.fn, fs, p.argnums, False)
            tol = 1e-4 if dt == F32 else 1e-10
            return td.jit(both, target="cuda")(*args), td.jit(both, target="interpret")(*args), tol

        yield f"program:{p.name}-{np.dtype(dt).name}", run
    import test_vmap as tv

    for name, fn, args in tv.BATCHED_CASES:  # vmap, Jacobians, Hessians: batched programs

        def run(fn=fn, args=args):
            return td.jit(fn, target="cuda")(*args), td.jit(fn, target="interpret")(*args), 1e-11

        yield f"batched:{name}", run


def run(shard: int, nshards: int, out: str) -> None:
    from programs_helpers import assert_close_tree

    launches: dict = {}
    _record_launches(launches)
    results = []
    for k, (name, case) in enumerate(_cases()):
        if k % nshards != shard:
            continue
        try:
            got, want, tol = case()
            assert_close_tree(got, want, tol, what=name)
            results.append([name, "ok", ""])
        except Exception as e:  # recorded, judged by the caller
            msg = f"{type(e).__name__}: {e}"
            kind = "error" if type(e).__name__ in CLEAR_ERRORS and "cuda" in str(e) else "fail"
            results.append([name, kind, msg + ("" if kind == "error" else "\n" + traceback.format_exc())])
    with open(out, "w") as f:
        json.dump({"results": results, "launches": [json.loads(k) for k in launches]}, f)


# a case may raise one of these, naming the operation and target 'cuda': an honest
# refusal, counted apart from wrong answers
CLEAR_ERRORS = {"EmitError", "TypeError"}


def _canonical(src: str) -> str:
    """A kernel's source with its value names numbered by first appearance: the
    same kernel in two programs compiles once."""
    import re

    names: dict[str, str] = {}
    body = src.split("\n", 1)[1]  # without the decorator
    body = re.sub(r"def kern\d+", "def kern", body)
    return re.sub(
        r"\b(?:v|k|scr|r\d+_t)\d+\b", lambda m: names.setdefault(m.group(0), f"n{len(names)}"), body
    )


def _ptx_for(fn, argtypes, ccs) -> None:
    """PTX of the kernel for each compute capability: typed and lowered once,
    then NVVM per target (numba-cuda's compile_ptx would redo it all per target),
    unoptimized (what is checked is that it compiles)."""
    from numba import cuda
    from numba.cuda import compiler

    try:
        lib, _ = compiler._compile_pyfunc_with_fixup(
            fn,
            argtypes,
            device=False,
            cc=ccs[0],
            abi="numba",
            debug=False,
            lineinfo=False,
            fastmath=False,
            opt=None,
            abi_info=None,
            forceinline=False,
            launch_bounds=None,
            lto=False,
        )
    except (AttributeError, TypeError):  # another numba-cuda: the public way
        for cc in ccs:
            cuda.compile_ptx(fn, argtypes, cc=cc)
        return
    for cc in ccs:
        (code,) = lib.get_asm_strs(cc=cc)
        assert f".target sm_{cc[0]}{cc[1]}" in code, code[:300]


def ptx(path: str, done: str | None = None) -> None:
    """Compile every recorded kernel launch to PTX for sm_80 (one target: the
    driver compiles sm_80 PTX for later GPUs; a second one, sm_90, cost ~8 s of
    a shard's ~65); `done`: a folder shared by the shards, naming the kernels
    already compiled."""
    import hashlib
    import importlib.util
    import inspect

    from numba import types
    from numba.np.numpy_support import from_dtype

    with open(path) as f:
        launches = json.load(f)["launches"]
    mods, failures, n, seen = {}, [], 0, set()
    for file, name, sig in launches:
        if file not in mods:
            spec = importlib.util.spec_from_file_location(os.path.basename(file)[:-3], file)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
            mod.TPB = 256  # the block size on a GPU (the simulator's is smaller)
            mods[file] = mod
        fn = getattr(mods[file], name).py_func
        key = hashlib.sha1((_canonical(inspect.getsource(fn)) + json.dumps(sig)).encode()).hexdigest()
        if key in seen or (done and os.path.exists(os.path.join(done, key))):
            continue
        seen.add(key)
        argtypes = []
        for t in sig:
            if t[0] == "array":
                argtypes.append(types.Array(from_dtype(np.dtype(t[1])), t[2], t[3]))
            else:
                argtypes.append(from_dtype(np.dtype(t[2])) if t[1] != "float" else types.float64)
        try:
            _ptx_for(fn, tuple(argtypes), ((8, 0),))
            n += 1
            if done:
                open(os.path.join(done, key), "w").close()
        except Exception as e:
            failures.append(f"{name} {sig}: {type(e).__name__}: {str(e)[:600]}")
    print(json.dumps({"compiled": n, "failures": failures}))


if __name__ == "__main__":
    import gc

    from conftest import GC_THRESHOLD  # the suite's collector threshold (compiles dominate here too)

    gc.set_threshold(*GC_THRESHOLD)
    if sys.argv[1] == "run":
        run(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        ptx(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
