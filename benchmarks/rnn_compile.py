"""Compile time of a plain-NumPy RNN's gradient against its trip count (issue 11).

    python benchmarks/rnn_compile.py          # 20 and 1,000 steps, cold and warm

Each measurement runs in a fresh process: the first call of
`td.jit(td.grad(rnn, argnums=(0, 1, 2)))` (trace + optimize + compile + run),
with an empty cache folder (cold) and then with that folder again (warm). A
loop of more than 8 iterations is one compiled loop, so the time should not
grow with the trip count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import tracediff as td
sys.path.insert(0, {here!r})
from rnn_compile import rnn, data
t1 = time.perf_counter()
args = data({steps})
g = td.jit(td.grad(rnn, argnums=(0, 1, 2)))
out = g(*args)
t2 = time.perf_counter()
g(*args)
t3 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, first_s=t2 - t1, second_s=t3 - t2)))
"""


def rnn(W, U, b, xs):
    h = np.zeros(W.shape[0])
    for t in range(xs.shape[0]):  # a plain Python loop over time steps
        h = np.tanh(W @ h + U @ xs[t] + b)
    return np.sum(h * h)


def data(steps: int, hidden: int = 32, inputs: int = 8):
    rng = np.random.default_rng(11)
    W = rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)
    U = rng.standard_normal((hidden, inputs)) / np.sqrt(inputs)
    b = rng.standard_normal(hidden) * 0.1
    xs = rng.standard_normal((steps, inputs))
    return W, U, b, xs


def measure(steps: int, cache: str) -> dict:
    env = dict(os.environ, TRACEDIFF_CACHE_DIR=cache)
    code = CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), steps=steps)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    for steps in (20, 1000):
        with tempfile.TemporaryDirectory() as cache:
            cold = measure(steps, cache)
            warm = measure(steps, cache)
        print(
            f"RNN {steps:5d} steps: first call {cold['first_s']:.2f} s cold, {warm['first_s']:.2f} s warm "
            f"(import {cold['import_s']:.2f} s); next call {cold['second_s'] * 1e3:.3f} ms"
        )


if __name__ == "__main__":
    main()
