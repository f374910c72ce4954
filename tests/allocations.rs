//! A steady-state training step allocates nothing: counted with a counting global allocator
//! (a test of counts, not of time). Each test runs alone in this binary's allocator, so the
//! counters are read inside one thread with nothing else running.

mod common;

use common::nets::TwoLayer;

use common::alloc::allocations_during;
use miniflow::ndarray::{Array1, Array2};
use miniflow::{Network, Optimizer, Sgd};

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

miniflow::network! {
    /// The seed's network.
    struct Course {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

miniflow::network! {
    /// The same in f32.
    #[elem(f32)]
    struct TwoLayer32 {
        input X: [batch, 13];
        input y: [batch];
        param W1: [13, 10];
        param b1: [10];
        param W2: [10, 1];
        param b2: [1];
        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        loss cost = mse(y, l2);
    }
}

fn batch<T: miniflow::Scalar>(rows: usize, cols: usize) -> (Array2<T>, Array1<T>) {
    let x = Array2::from_shape_fn((rows, cols), |(i, j)| {
        T::from_f64(((i * cols + j) as f64 * 0.1).sin())
    });
    let y = Array1::from_shape_fn(rows, |i| T::from_f64(i as f64 * 0.5));
    (x, y)
}

/// Steps at one batch size allocate only on the first step; a new batch size reallocates on
/// its first step only.
fn steady_state_is_allocation_free<N: Network + Default>(cols: usize) {
    let mut net = N::default();
    let lr = <N::Elem as miniflow::Scalar>::from_f64(1e-2);
    let (x, y) = batch::<N::Elem>(11, cols);
    let (x5, y5) = batch::<N::Elem>(5, cols);
    let step = |net: &mut N, x: &Array2<N::Elem>, y: &Array1<N::Elem>| {
        net.feed("X", x).unwrap();
        net.feed("y", y).unwrap();
        net.sgd_step(lr).unwrap();
    };

    let first = allocations_during(|| step(&mut net, &x, &y));
    assert!(first > 0, "the first step sizes the buffers");
    let steady = allocations_during(|| (0..50).for_each(|_| step(&mut net, &x, &y)));
    assert_eq!(
        steady, 0,
        "50 steady-state fused steps allocated {steady} times"
    );

    // The generic path (forward, backward, any optimizer) is allocation-free too.
    let mut sgd = Sgd::new(lr);
    let generic = allocations_during(|| {
        for _ in 0..50 {
            net.feed("X", &x).unwrap();
            net.feed("y", &y).unwrap();
            net.forward_backward().unwrap();
            sgd.step(&mut net).unwrap();
        }
    });
    assert_eq!(
        generic, 0,
        "50 forward/backward/Sgd steps allocated {generic} times"
    );

    // A smaller batch (an epoch's short last batch) runs in the buffers already there, and
    // so does the full batch after it (issue 9: before, both reallocated every epoch).
    let epochs = allocations_during(|| {
        for _ in 0..10 {
            (0..4).for_each(|_| step(&mut net, &x, &y));
            step(&mut net, &x5, &y5);
        }
    });
    assert_eq!(
        epochs, 0,
        "10 epochs with a short last batch allocated {epochs} times"
    );
    // A larger batch than ever grows the buffers once.
    let (x20, y20) = batch::<N::Elem>(20, cols);
    let grown = allocations_during(|| step(&mut net, &x20, &y20));
    assert!(grown > 0, "a larger batch grows the buffers");
    let steady = allocations_during(|| (0..50).for_each(|_| step(&mut net, &x20, &y20)));
    assert_eq!(
        steady, 0,
        "after growing, 50 steps allocated {steady} times"
    );
}

#[test]
fn course_net_step_allocates_nothing() {
    steady_state_is_allocation_free::<Course>(2);
}

#[test]
fn two_layer_net_step_allocates_nothing() {
    steady_state_is_allocation_free::<TwoLayer>(13);
}

#[test]
fn two_layer_f32_net_step_allocates_nothing() {
    steady_state_is_allocation_free::<TwoLayer32>(13);
}

#[test]
fn the_counter_counts() {
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(n, 1);
}

/// Issue 9: an epoch whose last batch is short (`Shuffled` keeps it) allocates nothing once
/// the buffers have seen a full batch: `Fit` over 10 epochs allocates as often as over 2.
#[test]
fn epochs_with_a_short_last_batch_allocate_nothing() {
    use miniflow::data::{Dataset, Shuffled};
    use miniflow::train::{self, Fit, Progress};
    use std::ops::ControlFlow;
    let (x, y) = batch::<f64>(23, 13); // batches of 5: 4 full, then 3 rows
    let data = Dataset::new(x, y).unwrap();
    let mut net = TwoLayer::new();
    let mut sampler = Shuffled::new(data.len(), 5, 1).unwrap();
    let fit = |epochs: usize, net: &mut TwoLayer, sampler: &mut Shuffled| {
        allocations_during(|| {
            Fit::new(epochs)
                .progress(Progress::Never)
                .run(net, &data, sampler, train::sgd_step(1e-2), |_| {
                    ControlFlow::Continue(())
                })
                .unwrap();
        })
    };
    fit(1, &mut net, &mut sampler);
    let two = fit(2, &mut net, &mut sampler);
    let ten = fit(10, &mut net, &mut sampler);
    assert_eq!(
        two, ten,
        "allocations grew with the epochs: {two} for 2, {ten} for 10"
    );
}

/// Issue 11: a step on a borrowed batch allocates nothing either, a short last batch included.
#[test]
fn a_step_on_a_borrowed_batch_allocates_nothing() {
    use common::nets::TwoLayerBatch;
    let mut net = TwoLayer::new();
    let (x, y) = batch::<f64>(11, 13);
    let (x5, y5) = batch::<f64>(5, 13);
    let step = |net: &mut TwoLayer, x: &Array2<f64>, y: &Array1<f64>| {
        net.sgd_step_on(
            TwoLayerBatch {
                X: x.view(),
                y: y.view(),
            },
            1e-2,
        )
        .unwrap();
    };
    step(&mut net, &x, &y);
    let steady = allocations_during(|| {
        for _ in 0..10 {
            (0..4).for_each(|_| step(&mut net, &x, &y));
            step(&mut net, &x5, &y5);
        }
    });
    assert_eq!(
        steady, 0,
        "50 borrowed-batch steps allocated {steady} times"
    );
}

/// The runtime graph run as a `Network` (the plan executor) allocates nothing in a steady
/// step either, at a batch size it has seen (a new one sizes its buffers anew).
#[test]
fn graph_step_allocates_nothing() {
    let net = Course::default();
    let (mut g, _) = miniflow::Graph::<f64>::from_spec(net.spec()).unwrap();
    for p in ["W", "b"] {
        g.set_param(p, net.value_dyn(p).unwrap()).unwrap();
    }
    let (x, y) = batch::<f64>(11, 2);
    let step = |g: &mut miniflow::Graph<f64>| {
        g.feed("X", &x).unwrap();
        g.feed("y", &y).unwrap();
        g.sgd_step(1e-2).unwrap();
    };
    assert!(
        allocations_during(|| step(&mut g)) > 0,
        "the first step sizes the buffers"
    );
    let steady = allocations_during(|| (0..50).for_each(|_| step(&mut g)));
    assert_eq!(steady, 0, "50 steady graph steps allocated {steady} times");
    let mut sgd = Sgd::new(1e-2);
    let generic = allocations_during(|| {
        for _ in 0..50 {
            g.feed("X", &x).unwrap();
            g.feed("y", &y).unwrap();
            g.forward_backward().unwrap();
            sgd.step(&mut g).unwrap();
        }
    });
    assert_eq!(
        generic, 0,
        "50 graph forward/backward/Sgd steps allocated {generic} times"
    );
}
