"""What tracediff builds from a NumPy function: the IR at each stage.

1. traced:    the forward equations and, for td.grad, the adjoint equations
2. optimized: after dead-code elimination, CSE, simplification and fusion
3. source:    the Python/Numba source generated for target="cpu"
"""

import numpy as np

import tracediff as td


def logistic_loss(w, x, y):
    p = 1 / (1 + np.exp(-(x @ w)))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (rng.random(32) > 0.5).astype(np.float32)
    w = np.zeros(3, np.float32)
    grad_fn = td.grad(logistic_loss)

    for stage, heading in [
        ("traced", "traced IR of grad(logistic_loss): forward, then adjoint"),
        ("optimized", "optimized IR: after DCE, CSE, simplification and fusion"),
        ("source", "generated Numba source (target='cpu')"),
    ]:
        print(f"==== {heading} ====")
        print(td.dump(grad_fn, w, x, y, stage=stage))
        print()

    traced = td.make_ir(grad_fn, w, x, y, stage="traced")
    optimized = td.make_ir(grad_fn, w, x, y, stage="optimized")
    print(f"{len(traced.eqns)} traced equations -> {len(optimized.eqns)} after optimization")
    g = grad_fn(w, x, y)
    print(f"gradient at w = 0: {g} ({g.dtype})")


if __name__ == "__main__":
    main()
