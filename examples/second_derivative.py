"""First and second derivatives of z = x * x * y by nesting td.grad.

dz/dx = 2xy, dz/dy = x^2, d2z/dx2 = 2y, d2z/dy2 = 0, d2z/dxdy = d2z/dydx = 2x.
"""

import numpy as np

import tracediff as td


def z(x, y):
    return x * x * y


dz_dx = td.grad(z, argnums=0)
dz_dy = td.grad(z, argnums=1)
d2z_dx2 = td.grad(dz_dx, argnums=0)
d2z_dy2 = td.grad(dz_dy, argnums=1)
d2z_dxdy = td.grad(dz_dx, argnums=1)  # d/dy (dz/dx)
d2z_dydx = td.grad(dz_dy, argnums=0)  # d/dx (dz/dy)


def main():
    x, y = 3.0, -2.0
    checks = [
        ("z", z(x, y), x * x * y),
        ("dz/dx", dz_dx(x, y), 2 * x * y),
        ("dz/dy", dz_dy(x, y), x * x),
        ("d2z/dx2", d2z_dx2(x, y), 2 * y),
        ("d2z/dy2", d2z_dy2(x, y), 0.0),
        ("d2z/dxdy", d2z_dxdy(x, y), 2 * x),
        ("d2z/dydx", d2z_dydx(x, y), 2 * x),
    ]
    print(f"z = x*x*y at x = {x}, y = {y}")
    print(f"{'':10s} {'tracediff':>10s} {'closed form':>12s}")
    for name, got, want in checks:
        print(f"{name:10s} {float(got):10.4f} {want:12.4f}")
        assert np.isclose(got, want), (name, got, want)

    # the same on arrays: elementwise z, so grad of the sum gives per-element derivatives
    xs = np.linspace(-1.0, 1.0, 5)
    ys = np.linspace(2.0, 3.0, 5)
    hxx = td.grad(lambda a, b: np.sum(td.grad(lambda a, b: np.sum(z(a, b)))(a, b)))(xs, ys)
    print("d2z/dx2 on arrays:", hxx, " closed form 2y:", 2 * ys)
    assert np.allclose(hxx, 2 * ys)
    print("all derivatives match the closed forms")


if __name__ == "__main__":
    main()
