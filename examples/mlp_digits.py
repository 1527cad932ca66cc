"""Train a two-layer MLP on scikit-learn's bundled handwritten digits.

The model and its loss are plain NumPy. td.value_and_grad differentiates the
loss, td.jit compiles loss and gradient into one Numba function on the first
call (later calls reuse it), and tracediff.optim.adam updates the parameters.
The digits data (8x8 images, 10 classes) ships inside scikit-learn: no download.

    python -m pip install -e '.[examples]' && python examples/mlp_digits.py
"""

import time

import numpy as np

import tracediff as td
from tracediff import optim

try:
    from tqdm import tqdm
except ImportError:  # tqdm is in the `examples` extra; plain prints without it
    tqdm = None

HIDDEN = 64
BATCH = 64
EPOCHS = 30


def predict(params, x):
    h = np.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]  # logits


def loss(params, x, y_onehot):
    logits = predict(params, x)
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(y_onehot * log_probs, axis=1))


def init_params(rng, n_in, n_hidden, n_out):
    def glorot(shape):
        scale = np.sqrt(2.0 / (shape[0] + shape[1]))
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    return {
        "w1": glorot((n_in, n_hidden)),
        "b1": np.zeros(n_hidden, np.float32),
        "w2": glorot((n_hidden, n_out)),
        "b2": np.zeros(n_out, np.float32),
    }


def main():
    # (imported here: the model and its loss import without scikit-learn)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6  # standardize with train stats
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    onehot_train = np.eye(10, dtype=np.float32)[y_train]
    print(f"digits: {len(x_train)} train / {len(x_test)} test images, {x.shape[1]} pixels, 10 classes")

    rng = np.random.default_rng(0)
    params = init_params(rng, x.shape[1], HIDDEN, 10)
    opt = optim.adam(3e-3)
    state = opt.init(params)
    value_and_grad = td.jit(td.value_and_grad(loss))

    n_batches = len(x_train) // BATCH  # drop the ragged last batch: one shape, one compile
    steps = EPOCHS * n_batches
    bar = tqdm(total=steps, desc="training", unit="step") if tqdm else None
    step_times = []
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x_train))
        epoch_loss = 0.0
        for i in range(n_batches):
            idx = order[i * BATCH : (i + 1) * BATCH]
            t0 = time.perf_counter()
            value, grads = value_and_grad(params, x_train[idx], onehot_train[idx])
            params, state = opt.update(grads, state, params)
            step_times.append(time.perf_counter() - t0)
            epoch_loss += float(value) / n_batches
            if bar:
                bar.update(1)
        if bar:
            bar.set_postfix(loss=f"{epoch_loss:.4f}")
        elif epoch % 5 == 0 or epoch == EPOCHS - 1:
            print(f"epoch {epoch:2d}  loss {epoch_loss:.4f}")
    if bar:
        bar.close()

    assert all(p.dtype == np.float32 for p in params.values())
    print(f"final training loss: {epoch_loss:.4f}")
    print(f"first step (traces and compiles): {step_times[0]:.2f} s")
    print(f"later steps: {1e3 * np.mean(step_times[1:]):.3f} ms per step ({len(step_times) - 1} steps)")
    accuracy = np.mean(np.argmax(predict(params, x_test), axis=1) == y_test)
    print(f"test accuracy: {accuracy:.3f}")
    assert accuracy >= 0.95, accuracy


if __name__ == "__main__":
    main()
