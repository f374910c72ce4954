"""The bench's training step in numpy and in JAX (jit), single thread, for the side-by-side
numbers in the README.

One SGD step of linear -> sigmoid -> linear -> mse (lr 1e-3), the same shapes and the same
deterministic data as `benches/step.rs`, batch fed each step. Median of repeated runs per
shape, in microseconds. Usage (numpy single-threaded, on its own OpenBLAS kernel):

    pip install numpy jax threadpoolctl
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        taskset -c 0 python benches/peers.py [--sweeps]

It prints which BLAS numpy runs (threadpoolctl) and a table of medians.
"""

import sys
import time

import numpy as np

SHAPES = [(2, 2, 1, 1), (11, 13, 10, 1), (64, 784, 256, 1), (256, 1024, 1024, 1)]


def fill(seed, rows, cols, dtype):
    """The xorshift fill of benches/step.rs: values in [-0.5, 0.5)."""
    s = (seed * 0x9E3779B97F4A7C15 | 1) & 0xFFFFFFFFFFFFFFFF
    out = np.empty(rows * cols)
    for i in range(rows * cols):
        s ^= (s << 13) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 7
        s ^= (s << 17) & 0xFFFFFFFFFFFFFFFF
        out[i] = (s >> 11) / float(1 << 53) - 0.5
    return out.reshape(rows, cols).astype(dtype)


def data(shape, dtype):
    m, i, h, o = shape
    if m * i > 200_000:  # the pure-Python fill is slow; any fixed data does for timing
        rng = np.random.default_rng(1)
        mk = lambda r, c: (rng.random((r, c)) - 0.5).astype(dtype)
        return mk(m, i), mk(m, o), mk(i, h), mk(1, h)[0], mk(h, o), mk(1, o)[0]
    return (
        fill(1, m, i, dtype),
        fill(2, m, o, dtype),
        fill(3, i, h, dtype),
        fill(4, 1, h, dtype)[0],
        fill(5, h, o, dtype),
        fill(6, 1, o, dtype)[0],
    )


def numpy_step(params, x, y, lr):
    w1, b1, w2, b2 = params
    l1 = x @ w1 + b1
    s1 = 1.0 / (1.0 + np.exp(-l1))
    l2 = s1 @ w2 + b2
    diff = y - l2
    m = diff.size
    loss = (diff * diff).sum() / m
    g2 = diff * (-2.0 / m)
    dw2 = s1.T @ g2
    db2 = g2.sum(axis=0)
    dl1 = (g2 @ w2.T) * (s1 * (1.0 - s1))
    dw1 = x.T @ dl1
    db1 = dl1.sum(axis=0)
    w1 -= lr * dw1
    b1 -= lr * db1
    w2 -= lr * dw2
    b2 -= lr * db2
    return loss


def median_us(step, reps_hint):
    times = []
    # Enough repetitions for ~0.5 s, at least 5 samples.
    for _ in range(max(5, min(200, reps_hint))):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e6


def bench_numpy(shape, dtype):
    x, y, w1, b1, w2, b2 = data(shape, dtype)
    params = [w1.copy(), b1.copy(), w2.copy(), b2.copy()]
    lr = dtype(1e-3)
    for _ in range(3):
        numpy_step(params, x, y, lr)
    # Time many steps per sample for the small shapes (timer resolution).
    m, i, h, o = shape
    inner = max(1, 20_000 // (m * i * h + 1))
    def many():
        for _ in range(inner):
            numpy_step(params, x, y, lr)
    return median_us(many, 200) / inner


def bench_jax(shape, dtype):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    x, y, w1, b1, w2, b2 = data(shape, dtype)

    @jax.jit
    def step(params, x, y):
        def loss_fn(p):
            w1, b1, w2, b2 = p
            s1 = jax.nn.sigmoid(x @ w1 + b1)
            l2 = s1 @ w2 + b2
            return jnp.mean((y - l2) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        return [p - 1e-3 * g for p, g in zip(params, grads)], loss

    params = [jnp.asarray(a) for a in (w1, b1, w2, b2)]
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    for _ in range(3):
        params, loss = step(params, xs, ys)
    loss.block_until_ready()
    m, i, h, o = shape
    inner = max(1, 20_000 // (m * i * h + 1))
    state = {"p": params}

    def many():
        p = state["p"]
        for _ in range(inner):
            # The batch is handed to the step each time, as in the other columns.
            p, loss = step(p, jnp.asarray(x), jnp.asarray(y))
        loss.block_until_ready()
        state["p"] = p

    return median_us(many, 200) / inner


def main():
    try:
        import threadpoolctl

        for info in threadpoolctl.threadpool_info():
            print(
                f"# numpy BLAS: {info['internal_api']} {info.get('version')} "
                f"kernel {info.get('architecture')} threads {info['num_threads']}"
            )
    except ImportError:
        print("# threadpoolctl not installed: BLAS unknown")
    shapes = list(SHAPES)
    if "--sweeps" in sys.argv:
        shapes = []
        shapes += [(b, 13, 10, 1) for b in (1, 16, 256, 4096, 16384)]
        shapes += [(64, 256, h, 1) for h in (16, 64, 256, 1024, 2048)]
    print("| dtype | shape | numpy µs | JAX jit µs |")
    print("|---|---|---:|---:|")
    for dtype in (np.float64, np.float32):
        for shape in shapes:
            n = bench_numpy(shape, dtype)
            try:
                j = f"{bench_jax(shape, dtype):.2f}"
            except ImportError:
                j = "n/a"
            name = "x".join(map(str, shape))
            print(f"| {dtype.__name__} | {name} | {n:.2f} | {j} |", flush=True)


if __name__ == "__main__":
    main()
