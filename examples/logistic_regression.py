"""Binary logistic regression on synthetic 2-D data.

The loss is written in plain NumPy; td.jit(td.value_and_grad(loss)) compiles
the loss and its gradient into one Numba function.
"""

import numpy as np

import tracediff as td


def loss(params, x, y):
    logits = x @ params["w"] + params["b"]
    # log(1 + exp(-z)) written stably: logaddexp(0, -z)
    return np.mean(np.logaddexp(0.0, logits) - y * logits)


def make_data(rng, n):
    # two Gaussian blobs, labels 0 and 1
    y = (rng.random(n) < 0.5).astype(np.float64)
    centers = np.where(y[:, None] > 0, np.array([1.5, 1.0]), np.array([-1.0, -1.5]))
    x = centers + rng.standard_normal((n, 2))
    return x, y


def main():
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 1000)
    x_test, y_test = make_data(rng, 1000)

    params = {"w": np.zeros(2), "b": np.zeros(())}
    value_and_grad = td.jit(td.value_and_grad(loss))
    lr = 0.5
    losses = []
    for epoch in range(200):
        value, grads = value_and_grad(params, x_train, y_train)
        params = {k: params[k] - lr * grads[k] for k in params}
        losses.append(float(value))
        if epoch % 25 == 0 or epoch == 199:
            print(f"epoch {epoch:3d}  training loss {value:.4f}")

    def accuracy(x, y):
        pred = (x @ params["w"] + params["b"]) > 0
        return np.mean(pred == (y > 0))

    print(f"w = {params['w']}, b = {float(params['b']):.3f}")
    print(f"train accuracy: {accuracy(x_train, y_train):.3f}")
    print(f"test accuracy: {accuracy(x_test, y_test):.3f}")
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy(x_test, y_test) > 0.9


if __name__ == "__main__":
    main()
