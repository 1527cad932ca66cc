"""W5: first-call latency, measured in a fresh process.

    python benchmarks/latency.py W2 jit      # td.jit(td.grad(f, argnums)), tiered (the default)
    python benchmarks/latency.py W2 jit-wait # the same with eager_first=False: waits for Numba
    python benchmarks/latency.py W4 eager    # td.grad(f, argnums), interpreted
    python benchmarks/latency.py W2 jax      # jax.jit(jax.grad(f, argnums))
    python benchmarks/latency.py W2 jit cuda # a jit target other than cpu

Prints one JSON object: import_s (import of the library), first_s (trace +
optimize + compile + first call), second_s (the next call), compiled_s (for
tiered jit: from the first call until the compiled program is ready), error
(why it failed, or null) and check (the first result against the hand-written
limit).
run.py starts this script with TRACEDIFF_CACHE_DIR set: an empty folder for
the cold run, the same folder again for the warm one.
"""

from __future__ import annotations

import json
import sys
import time


def main(wid: str, variant: str, target: str = "cpu") -> dict:
    res = {
        "workload": wid,
        "variant": variant,
        "import_s": None,
        "first_s": None,
        "second_s": None,
        "compiled_s": None,
        "error": None,
        "check": None,
    }
    t0 = time.perf_counter()
    if variant == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
    else:
        import tracediff as td
    res["import_s"] = time.perf_counter() - t0

    import numpy as np
    import workloads as W

    w = W.WORKLOADS[wid]
    args = w.data()
    try:
        t0 = time.perf_counter()
        if variant in ("jit", "jit-wait"):
            g = td.jit(td.grad(w.fn, argnums=w.argnums), target=target, eager_first=variant == "jit")
            call = lambda: g(*args)  # noqa: E731
        elif variant == "eager":
            g = td.grad(w.fn, argnums=w.argnums)
            call = lambda: g(*args)  # noqa: E731
        elif variant == "jax":
            from peers import _jax_fn

            g = jax.jit(jax.grad(_jax_fn(w, args, jax, jnp), argnums=w.argnums))
            jargs = [jnp.asarray(a) for a in args]
            call = lambda: jax.block_until_ready(g(*jargs))  # noqa: E731
        else:
            raise ValueError(f"unknown variant {variant!r}")
        out = call()
        res["first_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        call()
        res["second_s"] = time.perf_counter() - t0
        if variant == "jit":
            g.compile(*args)
            res["compiled_s"] = time.perf_counter() - t0 + res["first_s"]
    except Exception as e:  # reported as n/a by run.py
        res["error"] = f"{type(e).__name__}: {e}"
        return res
    out = tuple(np.asarray(o) for o in W.as_tuple(out))
    err = W.max_rel_err(out, W.as_tuple(w.limit(*args)))
    res["check"] = "ok" if err <= W.tolerance(args, w.nums) else f"WRONG (rel err {err:.1e})"
    return res


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
