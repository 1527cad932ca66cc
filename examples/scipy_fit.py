"""Exact gradients for scipy.optimize.minimize from td.jit(td.value_and_grad(f)).

scipy calls fun(x, *args) with a float64 ndarray and, with jac=True, expects
(value, gradient) back: exactly what a jitted value_and_grad returns.
"""

import time

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der

import tracediff as td


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def curve_loss(theta, t, y):
    a, b, c = theta[0], theta[1], theta[2]
    return np.sum((a * np.exp(-b * t) + c - y) ** 2)


def fit_rosenbrock():
    print("(a) Rosenbrock in 10 dimensions, minimum at x = 1")
    fun = td.jit(td.value_and_grad(rosenbrock))
    x0 = np.tile([-1.2, 1.0], 5)
    value, grad = fun(x0)
    print(
        f"    fun(x0) returns ({type(value).__name__}, {type(grad).__name__} {grad.dtype}{list(grad.shape)})"
    )
    assert np.isclose(value, rosen(x0)) and np.allclose(grad, rosen_der(x0))  # scipy's hand-written ones
    calls = []

    def timed(x):
        t = time.perf_counter()
        out = fun(x)
        calls.append(time.perf_counter() - t)
        return out

    t0 = time.perf_counter()
    res = minimize(timed, x0, jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-10})
    print(f"    {res.message}")
    print(
        f"    f = {res.fun:.3e}, {res.nfev} function evaluations, {res.nit} iterations, "
        f"{time.perf_counter() - t0:.3f} s total, {sum(calls) * 1e3:.3f} ms of it in fun"
    )
    print(f"    x = {np.array2string(res.x, precision=6)}")
    assert res.success and np.allclose(res.x, 1.0, atol=1e-4), res


def fit_curve():
    print("(b) fit a * exp(-b * t) + c to noisy data (true a=2.5, b=1.3, c=0.5)")
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 4.0, 50)
    y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.02 * rng.standard_normal(t.size)
    fun = td.jit(td.value_and_grad(curve_loss))
    res = minimize(fun, np.array([1.0, 1.0, 0.0]), args=(t, y), jac=True, method="L-BFGS-B")
    a, b, c = res.x
    print(f"    {res.message}")
    print(
        f"    a = {a:.4f}, b = {b:.4f}, c = {c:.4f}; residual sum of squares {res.fun:.4e}; "
        f"{res.nfev} function evaluations"
    )
    assert res.success
    assert abs(a - 2.5) < 0.05 and abs(b - 1.3) < 0.05 and abs(c - 0.5) < 0.02, res.x
    # the exact gradient at the optimum is ~0
    _, g = fun(res.x, t, y)
    print(f"    |gradient| at the optimum: {np.linalg.norm(g):.2e}")


if __name__ == "__main__":
    fit_rosenbrock()
    fit_curve()
