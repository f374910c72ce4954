//! The training loop: it equals the loop written by hand (same batches, same losses, bit for
//! bit), reports the mean of the pre-update batch losses, stops when the callback says so,
//! and reports errors.

use miniflow::data::{Batch, Dataset, Sampler, Shuffled, WithReplacement};
use miniflow::ndarray::{Array1, Array2};
use miniflow::train::{self, Fit, Progress};
use miniflow::{init, Adam, Network, Sgd};
use std::ops::ControlFlow;

miniflow::network! {
    /// A small regression network.
    struct Reg {
        input X: [batch, 3];
        input y: [batch];
        param W1: [3, 8];
        param b1: [8];
        param W2: [8, 1];
        param b2: [1];
        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        loss cost = mse(y, l2);
    }
}

/// y = 2·x0 - x1 + 0.5·x2·x0 + 1 on 60 rows.
fn data() -> Dataset<f64> {
    let x = Array2::from_shape_fn((60, 3), |(i, j)| ((i * 3 + j) as f64 * 0.61).sin());
    let y = Array1::from_shape_fn(60, |i| {
        2.0 * x[[i, 0]] - x[[i, 1]] + 0.5 * x[[i, 2]] * x[[i, 0]] + 1.0
    });
    Dataset::new(x, y).unwrap()
}

fn net() -> Reg {
    let mut net = Reg::new();
    init::xavier_uniform(&mut net, 11);
    net
}

#[test]
fn fit_equals_the_hand_written_loop() {
    let d = data();
    let fit = Fit::new(5).progress(Progress::Never);

    let mut a = net();
    let mut sampler = WithReplacement::new(d.len(), 6, 3).unwrap();
    let mut seen = Vec::new();
    let history = fit
        .run(&mut a, &d, &mut sampler, train::sgd_step(0.1), |e| {
            seen.push((e.epoch, e.epochs, e.batches, e.mean_loss));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(!history.stopped_early);
    assert_eq!(history.losses.len(), 5);

    // The same by hand.
    let mut b = net();
    let mut sampler = WithReplacement::new(d.len(), 6, 3).unwrap();
    let mut batch: Batch<f64> = d.batch(6);
    let mut means = Vec::new();
    for _ in 0..5 {
        sampler.start_epoch();
        let mut losses = Vec::new();
        while let Some(rows) = sampler.next_batch() {
            d.gather(rows, &mut batch).unwrap();
            b.feed("X", &batch.x()).unwrap();
            b.feed("y", &batch.y()).unwrap();
            losses.push(b.sgd_step(0.1).unwrap());
        }
        assert_eq!(losses.len(), 10);
        means.push(losses.iter().sum::<f64>() / losses.len() as f64);
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&history.losses), bits(&means));
    for (k, s) in seen.iter().enumerate() {
        assert_eq!((s.0, s.1, s.2), (k, 5, 10));
        assert_eq!(s.3.to_bits(), means[k].to_bits());
    }
    assert_eq!(a.value("W1").unwrap(), b.value("W1").unwrap());
    assert!(means[4] < means[0], "{means:?}");
}

#[test]
fn optimizers_and_shuffled_batches_train() {
    let d = data();
    let mut n = net();
    let mut adam = Adam::new(0.02);
    let mut sampler = Shuffled::new(d.len(), 8, 1).unwrap();
    assert_eq!(sampler.batches_per_epoch(), 8);
    let h = Fit::new(60)
        .progress(Progress::Never)
        .run(
            &mut n,
            &d,
            &mut sampler,
            train::optimizer_step(&mut adam),
            |_| ControlFlow::Continue(()),
        )
        .unwrap();
    assert!(
        h.losses[59] < h.losses[0] / 10.0,
        "{} -> {}",
        h.losses[0],
        h.losses[59]
    );
    assert_eq!(adam.steps(), 60 * 8);

    // Plain Sgd through the generic path gives the fused path's losses (to rounding).
    let (mut p, mut q) = (net(), net());
    let mut s1 = Shuffled::new(d.len(), 8, 2).unwrap().drop_last(true);
    let mut s2 = Shuffled::new(d.len(), 8, 2).unwrap().drop_last(true);
    let fit = Fit::new(3).progress(Progress::Never);
    let mut sgd = Sgd::new(0.1);
    let hp = fit
        .run(&mut p, &d, &mut s1, train::optimizer_step(&mut sgd), |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let hq = fit
        .run(&mut q, &d, &mut s2, train::sgd_step(0.1), |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    for (a, b) in hp.losses.iter().zip(&hq.losses) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn the_callback_can_stop_the_run() {
    let d = data();
    let mut n = net();
    let mut sampler = Shuffled::new(d.len(), 10, 0).unwrap();
    let mut calls = 0;
    let h = Fit::new(100)
        .progress(Progress::Never)
        .run(&mut n, &d, &mut sampler, train::sgd_step(0.1), |e| {
            calls += 1;
            if e.epoch == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(calls, 3);
    assert_eq!(h.losses.len(), 3);
    assert!(h.stopped_early);

    // Breaking after the last epoch is not "early".
    let h = Fit::new(1)
        .progress(Progress::Never)
        .run(&mut n, &d, &mut sampler, train::sgd_step(0.1), |_| {
            ControlFlow::Break(())
        })
        .unwrap();
    assert!(!h.stopped_early);
}

#[test]
fn errors_are_reported() {
    let d = data();
    let mut n = net();
    let mut sampler = Shuffled::new(d.len(), 10, 0).unwrap();
    let e = Fit::new(1)
        .inputs("X", "target")
        .progress(Progress::Never)
        .run(&mut n, &d, &mut sampler, train::sgd_step(0.1), |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(matches!(e, miniflow::Error::InvalidArgument { .. }), "{e}");
    assert!(
        e.to_string().contains("Reg has no node named `target`"),
        "{e}"
    );

    /// A sampler with nothing to give.
    struct Empty;
    impl Sampler for Empty {
        fn batches_per_epoch(&self) -> usize {
            0
        }
        fn start_epoch(&mut self) {}
        fn next_batch(&mut self) -> Option<&[usize]> {
            None
        }
    }
    let e = Fit::new(1)
        .progress(Progress::Never)
        .run(&mut n, &d, &mut Empty, train::sgd_step(0.1), |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(matches!(e, miniflow::Error::InvalidArgument { .. }), "{e}");

    // A step's error stops the run.
    let e = Fit::new(1)
        .progress(Progress::Never)
        .run(
            &mut n,
            &d,
            &mut sampler,
            |_: &mut Reg| Err(miniflow::Error::BackwardBeforeForward),
            |_| ControlFlow::Continue(()),
        )
        .unwrap_err();
    assert_eq!(e, miniflow::Error::BackwardBeforeForward);
}

miniflow::network! {
    /// Inputs named otherwise than `X` and `y`.
    struct Named {
        input pixels: [batch, 3];
        input label: [batch];
        param W: [3, 1];
        param b: [1];
        o = linear(pixels, W, b);
        loss cost = mse(label, o);
    }
}

/// Issue 9: with inputs not called `X` and `y`, Fit said "no node named `X`; did you mean
/// `y`?" after the first batch was gathered. It checks first and says how to name them
/// (fails on the old code: the error was `UnknownNode`).
#[test]
fn fit_checks_the_input_names_up_front_and_says_how_to_name_them() {
    let d = data();
    let mut net = Named::new();
    let mut sampler = Shuffled::new(d.len(), 10, 0).unwrap();
    let run = |fit: Fit, net: &mut Named, sampler: &mut Shuffled| {
        fit.progress(Progress::Never)
            .run(net, &d, sampler, train::sgd_step(0.1), |_| {
                ControlFlow::Continue(())
            })
    };
    let e = run(Fit::new(1), &mut net, &mut sampler).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, miniflow::Error::InvalidArgument { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("Named has no node named `X`")
            && msg.contains("`pixels`, `label`")
            && msg.contains(".inputs(\"pixels\", \"label\")"),
        "{msg}"
    );
    // Nothing was fed or trained: the sampler did not start an epoch.
    assert_eq!(sampler.next_batch(), None);
    // A param where an input is expected is named as such.
    let e = run(Fit::new(1).inputs("W", "label"), &mut net, &mut sampler).unwrap_err();
    assert!(e.to_string().contains("`W` is a param"), "{e}");
    // Named right, it trains.
    let h = run(
        Fit::new(2).inputs("pixels", "label"),
        &mut net,
        &mut sampler,
    )
    .unwrap();
    assert_eq!(h.losses.len(), 2);
}

/// An update is `sgd_step`, `optimizer_step` or any closure; a closure doing what
/// `sgd_step` does gives the same run, bit for bit.
#[test]
fn a_closure_is_an_update() {
    let d = data();
    let fit = Fit::new(3).progress(Progress::Never);
    let run = |update: &mut dyn FnMut(&mut Reg) -> miniflow::Result<f64>| {
        let mut n = net();
        let mut sampler = Shuffled::new(d.len(), 8, 5).unwrap();
        fit.run(&mut n, &d, &mut sampler, update, |_| {
            ControlFlow::Continue(())
        })
        .unwrap()
        .losses
    };
    let mut step = train::sgd_step(0.1);
    let by_struct = run(&mut |n: &mut Reg| train::Update::update(&mut step, n));
    let by_closure = run(&mut |n: &mut Reg| n.sgd_step(0.1));
    assert_eq!(by_struct, by_closure);
    assert_eq!(step, train::SgdStep { lr: 0.1 });
}
