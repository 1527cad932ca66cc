"""Scale-out: transformed and compiled functions pickle, run in other processes,
and examples/dask_data_parallel.py trains on a two-worker dask.distributed cluster.

The functions come from tests/distributed_helpers.py (importable, so pickle can
store them by reference). A loaded copy is traced again where it is loaded; in
the same process it shares the original's traces.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import tracediff as td
from tracediff.api import Transformed

sys.path.insert(0, str(Path(__file__).parent))
import distributed_helpers as h  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)
X = RNG.standard_normal(5)
Y = RNG.standard_normal(5)
M = RNG.standard_normal((3, 4))
X0 = np.array(0.3)
PX, PY = h.make_data(RNG, 40)
PARAMS = {"w": np.array([0.3, -0.2]), "b": np.array(0.1)}


def power_sum(x, k):
    return np.sum(x**k)


# name: (the function, its arguments); every transformation, alone and composed
CASES = {
    "grad": (lambda: td.grad(h.scalar), (X,)),
    "grad argnums": (lambda: td.grad(h.two_args, argnums=(0, 1)), (X, Y)),
    "grad has_aux": (lambda: td.grad(h.with_aux, has_aux=True), (X,)),
    "grad(grad)": (lambda: td.grad(td.grad(h.scalar)), (X0,)),
    "value_and_grad": (lambda: td.value_and_grad(h.loss), (PARAMS, PX, PY)),
    "jit": (lambda: td.jit(h.scalar), (X,)),
    "jit(grad)": (lambda: td.jit(td.grad(h.scalar)), (X,)),
    "jit(value_and_grad), module level": (lambda: h.shard_value_and_grad, (PARAMS, PX, PY)),
    "jit interpret": (lambda: td.jit(td.grad(h.scalar), target="interpret"), (X,)),
    "jit static_argnums": (lambda: td.jit(td.grad(power_sum), static_argnums=1), (X, 3)),
    "jit math=libm": (lambda: td.jit(td.grad(h.scalar), math="libm"), (X,)),
    "jit nan_safe": (lambda: td.jit(td.grad(h.sqrt_where), nan_safe=True), (np.array([-1.0, 0.5, 2.0]),)),
    "grad(jit)": (lambda: td.grad(td.jit(h.scalar)), (X,)),
    "vmap": (lambda: td.vmap(h.per_row), (M,)),
    "vmap(grad) in_axes": (lambda: td.vmap(td.grad(h.two_args), in_axes=(0, None)), (M, M[0])),
    "jit(vmap(grad))": (lambda: td.jit(td.vmap(td.grad(h.per_row))), (M,)),
    "jacobian": (lambda: td.jacobian(h.vector), (X,)),
    "jacrev": (lambda: td.jacrev(h.vector), (X,)),
    "jacfwd": (lambda: td.jacfwd(h.vector), (X,)),
    "hessian": (lambda: td.hessian(h.scalar), (X,)),
    "jit(hessian)": (lambda: td.jit(td.hessian(h.scalar)), (X,)),
    "grad of custom_vjp": (lambda: td.grad(h.uses_custom_vjp), (3 * X,)),
    "grad of custom_jvp": (lambda: td.grad(h.uses_custom_jvp), (X,)),
    "jacfwd of custom_jvp": (lambda: td.jacfwd(h.uses_custom_jvp), (X,)),
    "grad of checkpoint": (lambda: td.grad(h.uses_checkpoint), (X,)),
    "jit(grad of checkpoint)": (lambda: td.jit(td.grad(h.uses_checkpoint)), (X,)),
    "module level grad": (lambda: h.grad_of_scalar, (X,)),
    "decorated grad": (lambda: h.decorated_grad, (X,)),
    "decorated jit": (lambda: h.decorated_jit, (X,)),
    "decorated value_and_grad": (lambda: h.decorated_value_and_grad, (X,)),
    "decorated checkpoint": (lambda: h.block, (X,)),
    "grad of decorated jit": (lambda: td.grad(h.decorated_jit), (X,)),
}
DECORATED = {"decorated grad", "decorated jit", "decorated value_and_grad", "decorated checkpoint"}


def assert_same(got, want):
    """Equal pytrees of arrays (the same program ran, or the same one traced again)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for a, b in zip(got, want):
            assert_same(a, b)
    else:
        assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def dumps(fn, how):
    if how == "cloudpickle":
        cloudpickle = pytest.importorskip("cloudpickle")
        return cloudpickle.dumps(fn)
    return pickle.dumps(fn)


# --- (a) round trips in this process --------------------------------------------------------


@pytest.mark.parametrize("how", ["pickle", "cloudpickle"])
@pytest.mark.parametrize("name", list(CASES))
def test_round_trip(name, how):
    make, args = CASES[name]
    fn = make()
    want = fn(*args)
    loaded = pickle.loads(dumps(fn, how))
    assert type(loaded) is type(fn)
    if name in DECORATED:  # by name: the module's own object
        assert loaded is fn
    if isinstance(fn, Transformed):
        assert loaded.chain == fn.chain  # the same transformations with the same options
        assert loaded.base is fn.base  # by reference: the same user function
    assert_same(loaded(*args), want)
    if name == "jit nan_safe":  # the option came along: no NaN from sqrt's side at x = -1
        assert np.isfinite(loaded(*args)).all()


def test_pickle_is_small_and_holds_no_programs():
    """A compiled function pickles as a reference and its options, not its traces or code."""
    fn = td.jit(td.value_and_grad(h.loss))
    fn(PARAMS, PX, PY)
    assert len(pickle.dumps(fn)) < 500


def test_closures_and_lambdas_pickle_by_value_with_cloudpickle():
    """What standard pickle cannot reach by name (a lambda, a nested function) travels by
    value under cloudpickle, as Dask sends it."""
    cloudpickle = pytest.importorskip("cloudpickle")
    scale = 3.0

    def inner(x):
        return np.sum(scale * np.sin(x))

    for fn in (td.jit(td.grad(inner)), td.value_and_grad(lambda x: np.sum(x**3))):
        loaded = pickle.loads(cloudpickle.dumps(fn))
        assert_same(loaded(X), fn(X))


def test_custom_rule_functions_pickle_with_cloudpickle():
    """A custom_vjp / custom_jvp function transformed directly (not called from another
    function) travels by value with cloudpickle."""
    cloudpickle = pytest.importorskip("cloudpickle")
    for fn in (td.grad(lambda x: np.sum(h.clip_gradient(x))), td.jacobian(h.softplus)):
        loaded = pickle.loads(cloudpickle.dumps(fn))
        assert_same(loaded(3 * X), fn(3 * X))


def test_custom_rule_and_checkpoint_functions_pickle_with_standard_pickle():
    """By name where decorated at module level; otherwise as (function, rules)."""
    assert pickle.loads(pickle.dumps(h.clip_gradient)) is h.clip_gradient
    assert pickle.loads(pickle.dumps(h.block)) is h.block
    renamed = td.checkpoint(h.uses_custom_vjp)  # bound to no module name of its own
    rules = td.custom_vjp(h.uses_custom_vjp)
    rules.defvjp(lambda x: (h.uses_custom_vjp(x), x), h.double_cotangent)
    for fn in (
        td.jacobian(h.softplus),
        td.grad(h.clip_gradient_sum),
        td.grad(renamed),
        td.jit(td.grad(renamed)),
    ):
        loaded = pickle.loads(pickle.dumps(fn))
        assert_same(loaded(3 * X), fn(3 * X))
    with pytest.raises((pickle.PicklingError, AttributeError)):  # a lambda rule: cloudpickle's job
        pickle.dumps(rules)
    cloudpickle = pytest.importorskip("cloudpickle")
    loaded = pickle.loads(cloudpickle.dumps(td.grad(rules)))
    assert_same(loaded(3 * X), 2 * 3 * X)  # the rule's cotangent, not the function's


# --- (b) other processes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    # spawn: a fresh interpreter per worker (fork would copy Numba's threads and locks). The
    # workers inherit TRACEDIFF_CACHE_DIR, so they load what this process compiled.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
        yield ex


def test_sharded_gradients_in_a_process_pool(pool):
    """Each worker computes (loss, gradient) of a shard; the sums equal the whole-data call."""
    fn = h.shard_value_and_grad
    value, grads = fn(PARAMS, PX, PY)
    fn.compile(PARAMS, PX[:10], PY[:10])  # the shard program, on disk for the workers
    shards = [(PX[i : i + 10], PY[i : i + 10]) for i in range(0, 40, 10)]
    results = list(pool.map(fn, [PARAMS] * 4, *zip(*shards)))
    for (v, g), (x, y) in zip(results, shards):  # each shard as computed here
        assert_same((v, g), fn(PARAMS, x, y))
    np.testing.assert_allclose(sum(v for v, _ in results), value, rtol=1e-12)
    for k in grads:
        np.testing.assert_allclose(sum(g[k] for _, g in results), grads[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "name", ["jit(value_and_grad), module level", "vmap(grad) in_axes", "hessian", "grad of custom_vjp"]
)
def test_transformations_run_in_a_process_pool(pool, name):
    """A function sent to another process (standard pickle) gives the same result there."""
    make, args = CASES[name]
    fn = make()
    want = fn(*args)
    assert_same(pool.submit(fn, *args).result(timeout=120), want)


_MAIN_SCRIPT = """
import multiprocessing, pickle
from concurrent.futures import ProcessPoolExecutor

import cloudpickle
import numpy as np
import tracediff as td
from tracediff.api import Transformed


def f(x):
    return np.sum(np.sin(x) ** 2)


@td.jit
def decorated(x):
    return np.sum(np.cos(x))


if __name__ == "__main__":
    x = np.linspace(0.0, 1.0, 4)
    # a decorated function of __main__ travels by value with cloudpickle (Dask)
    assert np.allclose(pickle.loads(cloudpickle.dumps(decorated))(x), decorated(x))
    # an undecorated one by reference, with the standard pickle of multiprocessing
    step = td.jit(td.grad(f))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
        got = ex.submit(step, x).result()
    assert np.allclose(got, step(x)), (got, step(x))
    print("main ok")
"""


def test_functions_of_a_script_main(tmp_path):
    """The guide's advice for scripts: transform functions of __main__ with td.jit(f)."""
    pytest.importorskip("cloudpickle")
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_MAIN_SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "main ok" in proc.stdout


# --- (c) the Dask example ---------------------------------------------------------------------


def test_dask_example(tmp_path):
    """examples/dask_data_parallel.py at small size: two worker processes, a fresh cache."""
    pytest.importorskip("dask.distributed")
    env = dict(os.environ, TRACEDIFF_CACHE_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dask_data_parallel.py"), "--small"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert "match: the 2-worker training equals the one-process training" in proc.stdout, proc.stdout
    assert any(p.name.startswith("td_") for p in tmp_path.iterdir())  # the workers' shared cache
