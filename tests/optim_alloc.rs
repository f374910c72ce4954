//! After the first step, a training loop over a `Dataset` with the course's sampler, batch
//! gathering into preallocated buffers and the stateful optimizers (`Momentum`, `Adam`)
//! allocates nothing: counted with a counting global allocator, per thread.

mod common;

use common::nets::TwoLayer;

use common::alloc::allocations_during;
use miniflow::data::{Dataset, Sampler, WithReplacement};
use miniflow::ndarray::{Array1, Array2};
use miniflow::train::{self, Fit, Progress};
use miniflow::{Adam, Momentum, Network, Optimizer};
use std::ops::ControlFlow;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

fn data() -> Dataset<f64> {
    let x = Array2::from_shape_fn((100, 13), |(i, j)| ((i * 13 + j) as f64 * 0.1).sin());
    let y = Array1::from_shape_fn(100, |i| i as f64 * 0.05);
    Dataset::new(x, y).unwrap()
}

fn loop_allocates_nothing_after_the_first_step<O: Optimizer<f64>>(mut opt: O) {
    let d = data();
    let mut net = TwoLayer::new();
    miniflow::init::randn(&mut net, 1);
    let mut sampler = WithReplacement::new(d.len(), 11, 2).unwrap();
    let mut batch = d.batch(11);
    let mut epoch = |net: &mut TwoLayer, opt: &mut O| {
        sampler.start_epoch();
        while let Some(rows) = sampler.next_batch() {
            d.gather(rows, &mut batch).unwrap();
            net.feed("X", &batch.x()).unwrap();
            net.feed("y", &batch.y()).unwrap();
            net.forward_backward().unwrap();
            opt.step(net).unwrap();
        }
    };
    let first = allocations_during(|| epoch(&mut net, &mut opt));
    assert!(
        first > 0,
        "the first step sizes buffers and optimizer state"
    );
    let steady = allocations_during(|| {
        for _ in 0..5 {
            epoch(&mut net, &mut opt)
        }
    });
    assert_eq!(steady, 0, "5 epochs of 9 steps allocated {steady} times");
}

#[test]
fn momentum_loop_allocates_nothing() {
    loop_allocates_nothing_after_the_first_step(Momentum::new(0.01, 0.9));
}

#[test]
fn adam_loop_allocates_nothing() {
    loop_allocates_nothing_after_the_first_step(Adam::new(0.01));
}

#[test]
fn fit_allocates_per_run_not_per_step() {
    let d = data();
    let mut net = TwoLayer::new();
    miniflow::init::randn(&mut net, 1);
    let mut sampler = WithReplacement::new(d.len(), 11, 2).unwrap();
    let mut adam = Adam::new(0.01);
    let mut run = |epochs: usize| {
        allocations_during(|| {
            Fit::new(epochs)
                .progress(Progress::Never)
                .run(
                    &mut net,
                    &d,
                    &mut sampler,
                    train::optimizer_step(&mut adam),
                    |_| ControlFlow::Continue(()),
                )
                .unwrap();
        })
    };
    run(1);
    // A run allocates its batch buffers and history only: the same few allocations for 1
    // epoch as for 20 (180 steps).
    let (short, long) = (run(1), run(20));
    assert_eq!(
        short, long,
        "1 epoch: {short} allocations, 20 epochs: {long}"
    );
    assert!(long <= 4, "{long} allocations per run");
}
