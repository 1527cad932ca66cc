"""Data-parallel training on a Dask cluster: each worker computes the gradient of its shard.

The model and data are those of examples/logistic_regression.py. Here the loss
of a shard is the *sum* over its rows, so the shards' values and gradients add
up to those of the whole data set: the driver adds them, divides by the number
of rows and takes the gradient step, and the result is the one-process
training's, to rounding (the sums are only grouped differently).

td.jit(td.value_and_grad(shard_loss)) pickles (by reference to shard_loss; a
function of a script's __main__ travels by value, with the cloudpickle that Dask
uses), and is traced again where it is unpickled. Its compiled code comes from
the on-disk cache: the driver compiles the shard program once, and the workers,
pointed at the same cache folder, load it instead of compiling it again.

At this size Dask's overhead (milliseconds per task) outweighs a shard's
gradient, and one process is faster: data parallelism pays when a shard's
gradient takes much longer than that, or when the data does not fit one machine.

    python -m pip install -e '.[distributed]' && python examples/dask_data_parallel.py
    python examples/dask_data_parallel.py --small   # a few seconds, as in the tests
"""

import argparse
import os
import time

import numpy as np
from dask.distributed import Client, LocalCluster
from logistic_regression import make_data  # the script's folder is on sys.path

import tracediff as td


def shard_loss(params, x, y):
    """The logistic loss of examples/logistic_regression.py, summed over the rows."""
    logits = x @ params["w"] + params["b"]
    return np.sum(np.logaddexp(0.0, logits) - y * logits)


def shard_value_and_grad(grad_fn, params, shard):
    """What a worker runs: (loss, gradient) of one shard, with the compiled function."""
    x, y = shard
    return grad_fn(params, x, y)


def train(value_and_grad, params, n, steps, lr=0.5):
    """Full-batch gradient descent on the mean loss; value_and_grad(params) gives the sums."""
    losses = []
    for _ in range(steps):
        value, grads = value_and_grad(params)
        params = {k: params[k] - lr * grads[k] / n for k in params}
        losses.append(value / n)
    return params, np.array(losses)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="number of rows (default 200000)")
    p.add_argument("--steps", type=int, default=50, help="gradient steps (default 50)")
    p.add_argument("--shards", type=int, default=4, help="data shards, spread over 2 workers (default 4)")
    p.add_argument("--small", action="store_true", help="4000 rows, 10 steps: the size the tests run")
    p.add_argument("--cache-dir", help="tracediff's cache folder, shared with the workers")
    args = p.parse_args()
    if args.small:
        args.n, args.steps = 4000, 10
    return args


def main():
    args = parse_args()
    # The cache folder must be one the driver and every worker can reach: on one
    # machine any folder; on a cluster a shared file system (NFS, Lustre, ...).
    # tracediff reads TRACEDIFF_CACHE_DIR when it compiles, so setting it here is
    # enough for this process; the workers get it through the cluster's env.
    # Without a shared folder each worker compiles the program once itself.
    cache_dir = (
        args.cache_dir
        or os.environ.get("TRACEDIFF_CACHE_DIR")
        or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tracediff")
    )
    os.environ["TRACEDIFF_CACHE_DIR"] = cache_dir

    rng = np.random.default_rng(0)
    n = args.n - args.n % args.shards  # equal shards: one shape, one compiled program
    x, y = make_data(rng, n)
    shards = list(zip(np.split(x, args.shards), np.split(y, args.shards)))
    params0 = {"w": np.zeros(2), "b": np.zeros(())}
    grad_fn = td.jit(td.value_and_grad(shard_loss))

    # The same training in one process, for comparison: the whole data in one call.
    t0 = time.perf_counter()
    ref_params, ref_losses = train(lambda p: grad_fn(p, x, y), params0, n, args.steps)
    print(f"one process: {args.steps} steps in {time.perf_counter() - t0:.2f} s")

    # Compile the shard program here, once: this writes it to the cache folder.
    grad_fn.compile(params0, *shards[0])

    env = {"TRACEDIFF_CACHE_DIR": cache_dir}
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, env=env) as cluster,
        Client(cluster) as client,
    ):
        # Each shard is sent to a worker once and stays there.
        shard_futures = client.scatter(shards)
        # grad_fn is sent once to every worker: each worker unpickles it once and
        # traces it on its first call (later calls reuse the trace and the compiled
        # code). Passing grad_fn itself to every submit would unpickle a new copy
        # per task, and a function of __main__ (pickled by value) is traced again
        # for each new copy. A function defined in an importable module pickles by
        # reference, and every copy shares the traces of the worker.
        fn = client.scatter(grad_fn, broadcast=True)

        def value_and_grad_all(params):
            futures = [client.submit(shard_value_and_grad, fn, params, shard) for shard in shard_futures]
            results = client.gather(futures)  # in shard order: a deterministic sum
            value = sum(v for v, _ in results)
            grads = {k: sum(g[k] for _, g in results) for k in params}
            return value, grads

        t0 = time.perf_counter()
        value_and_grad_all(params0)  # the first step: each worker traces grad_fn and loads it
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        params, losses = train(value_and_grad_all, params0, n, args.steps)
        t_all = time.perf_counter() - t0

    print(
        f"dask, 2 workers, {args.shards} shards of {n // args.shards} rows: first step {t_first:.2f} s, "
        f"then {1e3 * t_all / args.steps:.1f} ms per step"
    )
    print(
        f"training loss {losses[0]:.4f} -> {losses[-1]:.4f}, w = {params['w']}, b = {float(params['b']):.3f}"
    )
    got = np.concatenate([params["w"], [params["b"]], losses])
    want = np.concatenate([ref_params["w"], [ref_params["b"]], ref_losses])
    diff = np.max(np.abs(got - want))
    print(
        f"match: the 2-worker training equals the one-process training to rounding (max difference {diff:.1e})"
    )
    assert np.allclose(got, want, rtol=1e-10, atol=1e-14), (got, want)
    assert losses[-1] < losses[0]


if __name__ == "__main__":
    main()
