//! Sweeps of the training step (feed a batch, fused SGD step), single thread, f64: batch
//! (the course's 13-10-1 network, batch 1 to 16,384), width (batch 64, 256 inputs, hidden 16
//! to 2,048) and depth (batch 64, 1 to 16 sigmoid layers of 64). Prints one table of median
//! microseconds per step; `benches/peers.py --sweeps` times the same points in numpy and JAX.
//!
//! ```text
//! cargo bench --bench sweep                  # every point
//! cargo bench --bench sweep -- width=256     # one point (batch=N, width=H or depth=D)
//! ```

use miniflow::ndarray::{Array2, ArrayD, IxDyn};
use miniflow::{Network, Scalar};
use std::hint::black_box;
use std::time::Instant;

miniflow::network! {
    #[elem(f64)]
    struct Boston {
        input X: [batch, 13];
        input y: [batch, 1];
        param W0: [13, 10];
        param b0: [10];
        param W1: [10, 1];
        param b1: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        loss cost = mse(y, l1);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Width16 {
        input X: [batch, 256];
        input y: [batch, 1];
        param W0: [256, 16];
        param b0: [16];
        param W1: [16, 1];
        param b1: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        loss cost = mse(y, l1);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Width64 {
        input X: [batch, 256];
        input y: [batch, 1];
        param W0: [256, 64];
        param b0: [64];
        param W1: [64, 1];
        param b1: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        loss cost = mse(y, l1);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Width256 {
        input X: [batch, 256];
        input y: [batch, 1];
        param W0: [256, 256];
        param b0: [256];
        param W1: [256, 1];
        param b1: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        loss cost = mse(y, l1);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Width1024 {
        input X: [batch, 256];
        input y: [batch, 1];
        param W0: [256, 1024];
        param b0: [1024];
        param W1: [1024, 1];
        param b1: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        loss cost = mse(y, l1);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Width2048 {
        input X: [batch, 256];
        input y: [batch, 1];
        param W0: [256, 2048];
        param b0: [2048];
        param W1: [2048, 1];
        param b1: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        loss cost = mse(y, l1);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Depth1 {
        input X: [batch, 64];
        input y: [batch, 1];
        param W0: [64, 64];
        param b0: [64];
        param W1: [64, 1];
        param b1: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        loss cost = mse(y, l1);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Depth4 {
        input X: [batch, 64];
        input y: [batch, 1];
        param W0: [64, 64];
        param b0: [64];
        param W1: [64, 64];
        param b1: [64];
        param W2: [64, 64];
        param b2: [64];
        param W3: [64, 64];
        param b3: [64];
        param W4: [64, 1];
        param b4: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        s2 = sigmoid(l2);
        l3 = linear(s2, W3, b3);
        s3 = sigmoid(l3);
        l4 = linear(s3, W4, b4);
        loss cost = mse(y, l4);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Depth8 {
        input X: [batch, 64];
        input y: [batch, 1];
        param W0: [64, 64];
        param b0: [64];
        param W1: [64, 64];
        param b1: [64];
        param W2: [64, 64];
        param b2: [64];
        param W3: [64, 64];
        param b3: [64];
        param W4: [64, 64];
        param b4: [64];
        param W5: [64, 64];
        param b5: [64];
        param W6: [64, 64];
        param b6: [64];
        param W7: [64, 64];
        param b7: [64];
        param W8: [64, 1];
        param b8: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        s2 = sigmoid(l2);
        l3 = linear(s2, W3, b3);
        s3 = sigmoid(l3);
        l4 = linear(s3, W4, b4);
        s4 = sigmoid(l4);
        l5 = linear(s4, W5, b5);
        s5 = sigmoid(l5);
        l6 = linear(s5, W6, b6);
        s6 = sigmoid(l6);
        l7 = linear(s6, W7, b7);
        s7 = sigmoid(l7);
        l8 = linear(s7, W8, b8);
        loss cost = mse(y, l8);
    }
}

miniflow::network! {
    #[elem(f64)]
    struct Depth16 {
        input X: [batch, 64];
        input y: [batch, 1];
        param W0: [64, 64];
        param b0: [64];
        param W1: [64, 64];
        param b1: [64];
        param W2: [64, 64];
        param b2: [64];
        param W3: [64, 64];
        param b3: [64];
        param W4: [64, 64];
        param b4: [64];
        param W5: [64, 64];
        param b5: [64];
        param W6: [64, 64];
        param b6: [64];
        param W7: [64, 64];
        param b7: [64];
        param W8: [64, 64];
        param b8: [64];
        param W9: [64, 64];
        param b9: [64];
        param W10: [64, 64];
        param b10: [64];
        param W11: [64, 64];
        param b11: [64];
        param W12: [64, 64];
        param b12: [64];
        param W13: [64, 64];
        param b13: [64];
        param W14: [64, 64];
        param b14: [64];
        param W15: [64, 64];
        param b15: [64];
        param W16: [64, 1];
        param b16: [1];
        l0 = linear(X, W0, b0);
        s0 = sigmoid(l0);
        l1 = linear(s0, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        s2 = sigmoid(l2);
        l3 = linear(s2, W3, b3);
        s3 = sigmoid(l3);
        l4 = linear(s3, W4, b4);
        s4 = sigmoid(l4);
        l5 = linear(s4, W5, b5);
        s5 = sigmoid(l5);
        l6 = linear(s5, W6, b6);
        s6 = sigmoid(l6);
        l7 = linear(s6, W7, b7);
        s7 = sigmoid(l7);
        l8 = linear(s7, W8, b8);
        s8 = sigmoid(l8);
        l9 = linear(s8, W9, b9);
        s9 = sigmoid(l9);
        l10 = linear(s9, W10, b10);
        s10 = sigmoid(l10);
        l11 = linear(s10, W11, b11);
        s11 = sigmoid(l11);
        l12 = linear(s11, W12, b12);
        s12 = sigmoid(l12);
        l13 = linear(s12, W13, b13);
        s13 = sigmoid(l13);
        l14 = linear(s13, W14, b14);
        s14 = sigmoid(l14);
        l15 = linear(s14, W15, b15);
        s15 = sigmoid(l15);
        l16 = linear(s15, W16, b16);
        loss cost = mse(y, l16);
    }
}

/// Deterministic values in [-0.5, 0.5).
fn fill(seed: u64, len: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// The median time of one step, in microseconds, at this batch.
fn time_step<N: Network<Elem = f64> + Default>(batch: usize) -> f64 {
    let mut net = N::default();
    let mut shapes = Vec::new();
    net.visit_params(&mut |p| shapes.push((p.name.to_string(), p.value.shape().to_vec())));
    for (i, (name, shape)) in shapes.iter().enumerate() {
        let len = shape.iter().product();
        let v = ArrayD::from_shape_vec(IxDyn(shape), fill(i as u64 + 3, len)).expect("shape");
        net.set_param(name, v.view()).expect("param");
    }
    let spec = net.spec();
    let width = |name: &str| -> usize {
        let node = spec.nodes.iter().find(|n| n.name == name).expect("input");
        match node.shape.as_deref().and_then(|s| s.last()) {
            Some(miniflow::DimSpec::Fixed(n)) => *n,
            _ => 1,
        }
    };
    let (i, o) = (width("X"), width("y"));
    let x = Array2::from_shape_vec((batch, i), fill(1, batch * i)).expect("x");
    let y = Array2::from_shape_vec((batch, o), fill(2, batch * o)).expect("y");
    let lr = f64::from_f64(1e-3);
    let mut step = || {
        net.feed("X", black_box(&x)).expect("X");
        net.feed("y", black_box(&y)).expect("y");
        black_box(net.sgd_step(lr).expect("step"));
    };
    // About 0.3 s per point, in 15 samples.
    let t = Instant::now();
    step();
    let one = t.elapsed().as_secs_f64();
    let inner = ((0.02 / one.max(1e-9)) as usize).clamp(1, 100_000);
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..inner {
                step();
            }
            t.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2] * 1e6
}

/// A network's step timer, by batch.
type Timer = fn(usize) -> f64;

fn main() {
    // `cargo bench` passes `--bench`; a `sweep=point` argument picks one point.
    let only: Option<String> = std::env::args().skip(1).find(|a| a.contains('='));
    let want = |sweep: &str, point: usize| {
        only.as_deref()
            .is_none_or(|o| o == format!("{sweep}={point}"))
    };
    println!("| sweep | point | miniflow µs |");
    println!("|---|---|---:|");
    for b in [1, 16, 256, 4096, 16384] {
        if want("batch", b) {
            println!("| batch (13-10-1) | {b} | {:.2} |", time_step::<Boston>(b));
        }
    }
    let widths: [(usize, Timer); 5] = [
        (16, time_step::<Width16>),
        (64, time_step::<Width64>),
        (256, time_step::<Width256>),
        (1024, time_step::<Width1024>),
        (2048, time_step::<Width2048>),
    ];
    for (h, f) in widths {
        if want("width", h) {
            println!("| width (64 x 256 x h x 1) | {h} | {:.2} |", f(64));
        }
    }
    let depths: [(usize, Timer); 4] = [
        (1, time_step::<Depth1>),
        (4, time_step::<Depth4>),
        (8, time_step::<Depth8>),
        (16, time_step::<Depth16>),
    ];
    for (d, f) in depths {
        if want("depth", d) {
            println!("| depth (64 x 64 x d·64 x 1) | {d} | {:.2} |", f(64));
        }
    }
}
