"""The bench's training step in numpy, in JAX (jit) and in PyTorch (eager), single thread, for
the side-by-side numbers in the README.

One SGD step of linear -> sigmoid -> linear -> mse (lr 1e-3), the same shapes and the same
deterministic data as `benches/step.rs`, batch fed each step. Median of repeated runs per
shape, in microseconds.

The PyTorch column is the plain eager loop a user writes: parameters are tensors with
`requires_grad`, forward, `loss.backward()`, then an in-place SGD update `p -= lr * p.grad`
under `torch.no_grad()` (not `torch.optim.SGD`), grads cleared each step (`p.grad = None`,
what `zero_grad()` does by default). It runs on one intra-op and one inter-op thread
(`torch.set_num_threads(1)`, `torch.set_num_interop_threads(1)`). Before timing, one f64
step from the same start is checked against the numpy step: loss and updated parameters
agree to 1e-9 (f32 to float32 rounding). torch is optional: without it the column is left out.

Usage (numpy single-threaded, on its own OpenBLAS kernel):

    pip install numpy jax threadpoolctl [torch]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        taskset -c 0 python benches/peers.py [--sweeps | width=256 ...]

It prints which BLAS numpy runs (threadpoolctl) and a table of medians.
"""

import functools
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
    """The main table's shapes: (batch, in, hidden, out) as in benches/step.rs."""
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
    """params = [w0, b0, w1, b1, ...]; sigmoid after every layer but the last."""
    ws, bs = params[0::2], params[1::2]
    hs = [x]
    for i, (w, b) in enumerate(zip(ws, bs)):
        l = hs[-1] @ w + b
        hs.append(1.0 / (1.0 + np.exp(-l)) if i + 1 < len(ws) else l)
    diff = y - hs[-1]
    m = diff.size
    loss = (diff * diff).sum() / m
    g = diff * (-2.0 / m)
    for i in reversed(range(len(ws))):
        dw = hs[i].T @ g
        db = g.sum(axis=0)
        if i > 0:
            s = hs[i]
            g = (g @ ws[i].T) * (s * (1.0 - s))
        ws[i] -= lr * dw
        bs[i] -= lr * db
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


def net(batch, sizes, dtype):
    """Random data for a sweep point: x, y and [w0, b0, ...]."""
    rng = np.random.default_rng(1)
    mk = lambda *s: (rng.random(s) - 0.5).astype(dtype)
    params = []
    for a, b in zip(sizes, sizes[1:]):
        params += [mk(a, b), mk(b)]
    return mk(batch, sizes[0]), mk(batch, sizes[-1]), params


def point(shape, dtype):
    """x, y, params and a work estimate for a main shape or a sweep point (batch, sizes)."""
    if len(shape) == 4:
        x, y, w1, b1, w2, b2 = data(shape, dtype)
        return x, y, [w1, b1, w2, b2]
    return net(shape[0], shape[1], dtype)


def work(x, params):
    return x.shape[0] * sum(w.size for w in params[0::2])


def bench_numpy(shape, dtype):
    x, y, params = point(shape, dtype)
    params = [p.copy() for p in params]
    lr = dtype(1e-3)
    for _ in range(3):
        numpy_step(params, x, y, lr)
    # Time many steps per sample for the small shapes (timer resolution).
    inner = max(1, 20_000 // (work(x, params) + 1))
    def many():
        for _ in range(inner):
            numpy_step(params, x, y, lr)
    return median_us(many, 200) / inner


def bench_jax(shape, dtype):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    x, y, host_params = point(shape, dtype)

    @jax.jit
    def step(params, x, y):
        def loss_fn(p):
            h = x
            n = len(p) // 2
            for i in range(n):
                h = h @ p[2 * i] + p[2 * i + 1]
                if i + 1 < n:
                    h = jax.nn.sigmoid(h)
            return jnp.mean((y - h) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        return [p - 1e-3 * g for p, g in zip(params, grads)], loss

    params = [jnp.asarray(a) for a in host_params]
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    for _ in range(3):
        params, loss = step(params, xs, ys)
    loss.block_until_ready()
    inner = max(1, 20_000 // (work(x, host_params) + 1))
    state = {"p": params}

    def many():
        p = state["p"]
        for _ in range(inner):
            # The batch is handed to the step each time, as in the other columns.
            p, loss = step(p, jnp.asarray(x), jnp.asarray(y))
        loss.block_until_ready()
        state["p"] = p

    return median_us(many, 200) / inner


@functools.lru_cache(maxsize=None)
def torch_one_thread():
    """torch, held to one thread; the inter-op count can only be set once per process."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    return torch


def bench_torch(shape, dtype):
    torch = torch_one_thread()
    x, y, host_params = point(shape, dtype)
    lr = 1e-3

    def step(params, x, y):
        h = x
        n = len(params) // 2
        for i in range(n):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i + 1 < n:
                h = torch.sigmoid(h)
        loss = torch.nn.functional.mse_loss(h, y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad = None
        return loss

    params = [torch.tensor(a, requires_grad=True) for a in host_params]
    # Same computation as numpy_step: one step from the same start, same loss and parameters.
    ref = [a.copy() for a in host_params]
    want = numpy_step(ref, x, y, dtype(lr))
    got = step(params, torch.from_numpy(x), torch.from_numpy(y)).item()
    # f64: to 1e-9; f32 (rounding, different kernels): loss relative 1e-4, parameters 1e-5.
    f64 = dtype is np.float64
    tol = 1e-9 if f64 else 1e-4 * max(1.0, abs(float(want)))
    assert abs(got - want) <= tol, f"torch loss {got} != numpy {want}"
    for i, (p, r) in enumerate(zip(params, ref)):
        err = np.abs(p.detach().numpy() - r).max()
        assert err <= (1e-9 if f64 else 1e-5), f"torch param {i} off numpy by {err}"
    for _ in range(3):
        step(params, torch.from_numpy(x), torch.from_numpy(y))
    inner = max(1, 20_000 // (work(x, host_params) + 1))

    def many():
        for _ in range(inner):
            # The batch is handed to the step each time, as in the other columns.
            step(params, torch.from_numpy(x), torch.from_numpy(y))

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
    try:
        torch = torch_one_thread()
        print(
            f"# torch {torch.__version__} threads {torch.get_num_threads()} "
            f"interop {torch.get_num_interop_threads()}"
        )
    except ImportError as e:
        torch = None
        print(f"# torch not importable ({e}): PyTorch column skipped")
    shapes = list(SHAPES)
    dtypes = (np.float64, np.float32)
    points = {}
    for b in (1, 16, 256, 4096, 16384):
        points[f"batch={b}"] = (b, (13, 10, 1))
    for h in (16, 64, 256, 1024, 2048):
        points[f"width={h}"] = (64, (256, h, 1))
    for d in (1, 4, 8, 16):
        points[f"depth={d}"] = (64, (64,) * (d + 1) + (1,))
    picked = [a for a in sys.argv[1:] if a in points]
    if picked:
        # One sweep point (as `cargo bench --bench sweep -- width=256`).
        dtypes = (np.float64,)
        shapes = [points[a] for a in picked]
    elif "--sweeps" in sys.argv:
        # The points of benches/sweep.rs (f64): batch, width, depth.
        dtypes = (np.float64,)
        shapes = list(points.values())
    head, rule = "| dtype | shape | numpy µs | JAX jit µs |", "|---|---|---:|---:|"
    if torch is not None:
        head, rule = head + " PyTorch µs |", rule + "---:|"
    print(head)
    print(rule)
    for dtype in dtypes:
        for shape in shapes:
            n = bench_numpy(shape, dtype)
            try:
                j = f"{bench_jax(shape, dtype):.2f}"
            except ImportError:
                j = "n/a"
            t = f" {bench_torch(shape, dtype):.2f} |" if torch is not None else ""
            name = "x".join(map(str, shape)) if len(shape) == 4 else f"{shape[0]} x {shape[1]}"
            print(f"| {dtype.__name__} | {name} | {n:.2f} | {j} |{t}", flush=True)


if __name__ == "__main__":
    main()
