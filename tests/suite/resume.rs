//! Issue 10, section 2: a run resumes exactly. 10 epochs straight equal 5 epochs, a
//! checkpoint (params, optimizer, sampler, scaler, epoch) saved to a file, everything
//! restored into **fresh** objects, and 5 more epochs: the same losses and params, bit for
//! bit. For Adam with the shuffling sampler and for Nesterov momentum with the course's
//! sampler (with replacement), in f64 and f32.

// Saving and loading need the `safetensors` feature (on by default).
#![cfg(feature = "safetensors")]

use miniflow::data::{Dataset, Sampler, Shuffled, Standardizer, WithReplacement};
use miniflow::ndarray::{Array1, Array2};
use miniflow::persist::{Checkpoint, Stateful};
use miniflow::train::{self, Fit, Progress};
use miniflow::{init, Adam, Error, Momentum, Network, Optimizer, Scalar};
use std::ops::ControlFlow;
use std::path::PathBuf;

miniflow::network! {
    /// 3 -> 6 (tanh) -> 1.
    pub struct Reg {
        input X: [batch, 3];
        input y: [batch];
        param W1: [3, 6];
        param b1: [6];
        param W2: [6, 1];
        param b2: [1];
        l1 = linear(X, W1, b1);
        h = tanh(l1);
        l2 = linear(h, W2, b2);
        loss cost = mse(y, l2);
    }
}

miniflow::network! {
    /// The same in f32.
    #[elem(f32)]
    pub struct Reg32 {
        input X: [batch, 3];
        input y: [batch];
        param W1: [3, 6];
        param b1: [6];
        param W2: [6, 1];
        param b2: [1];
        l1 = linear(X, W1, b1);
        h = tanh(l1);
        l2 = linear(h, W2, b2);
        loss cost = mse(y, l2);
    }
}

/// 53 raw rows (not a multiple of the batch size: the last batch is partial), on scales
/// that need standardizing.
fn raw<T: Scalar>() -> Dataset<T> {
    let x = Array2::from_shape_fn((53, 3), |(i, j)| {
        T::from_f64(((i * 3 + j) as f64 * 0.37).sin() * 10f64.powi(j as i32) + j as f64)
    });
    let y = Array1::from_shape_fn(53, |i| {
        let r = x.row(i);
        T::from_f64(r[0].to_f64() - 0.02 * r[1].to_f64() + 0.001 * r[2].to_f64())
    });
    Dataset::new(x, y).unwrap()
}

fn file(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("miniflow-resume-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn bits<N: Network>(net: &mut N) -> Vec<u64> {
    let mut out = Vec::new();
    net.visit_params(&mut |p| out.extend(p.value.iter().map(|v| v.to_f64().to_bits())));
    out
}

fn run<N, S, O>(
    net: &mut N,
    data: &Dataset<N::Elem>,
    sampler: &mut S,
    opt: &mut O,
    first: usize,
    epochs: usize,
) -> Vec<u64>
where
    N: Network,
    S: Sampler,
    O: Optimizer<N::Elem>,
{
    Fit::new(epochs)
        .first_epoch(first)
        .progress(Progress::Never)
        .run(net, data, sampler, train::optimizer_step(opt), |_| {
            ControlFlow::Continue(())
        })
        .unwrap()
        .losses
        .iter()
        .map(|l| l.to_bits())
        .collect()
}

/// The whole experiment, for one network type, optimizer and sampler. `make` builds the
/// objects of a fresh process from a seed (deliberately another seed for the resumed one, so
/// that only the checkpoint can make them agree).
fn resume_is_exact<N, S, O>(name: &str, make: impl Fn(u64, usize) -> (N, S, O))
where
    N: Network,
    S: Sampler + Stateful,
    O: Optimizer<N::Elem> + Stateful,
{
    // 10 epochs straight.
    let mut data = raw::<N::Elem>();
    data.standardize();
    let (mut net, mut sampler, mut opt) = make(1, data.len());
    let straight = run(&mut net, &data, &mut sampler, &mut opt, 0, 10);
    let straight_params = bits(&mut net);

    // 5 epochs, then save everything.
    let path = file(&format!("{name}.safetensors"));
    let mut data = raw::<N::Elem>();
    let scaler = data.standardize();
    let (mut net, mut sampler, mut opt) = make(1, data.len());
    let mut losses = run(&mut net, &data, &mut sampler, &mut opt, 0, 5);
    let mut ck = Checkpoint::new();
    ck.put_params("model", &net)
        .unwrap()
        .put("optimizer", &opt)
        .put("sampler", &sampler)
        .put("scaler", &scaler)
        .put_u64("epoch", 5);
    ck.save(&path).unwrap();
    drop((net, sampler, opt, scaler, data));

    // A fresh process: raw data, other seeds, zero params; everything comes from the file.
    let ck = Checkpoint::load(&path).unwrap();
    let mut data = raw::<N::Elem>();
    let mut scaler = Standardizer::default();
    ck.restore("scaler", &mut scaler).unwrap();
    scaler.transform(&mut data.features_mut()).unwrap();
    let (mut net, mut sampler, mut opt) = make(99, data.len());
    miniflow::init::zeros(&mut net);
    ck.load_params("model", &mut net).unwrap();
    ck.restore("optimizer", &mut opt).unwrap();
    ck.restore("sampler", &mut sampler).unwrap();
    let epoch = ck.u64("epoch").unwrap() as usize;
    losses.extend(run(&mut net, &data, &mut sampler, &mut opt, epoch, 10));

    assert_eq!(losses.len(), 10);
    assert_eq!(losses, straight, "{name}: the losses differ");
    assert_eq!(bits(&mut net), straight_params, "{name}: the params differ");
}

#[test]
fn adam_with_shuffled_batches_resumes_bit_for_bit() {
    resume_is_exact("adam", |seed, n| {
        let mut net = Reg::new();
        init::xavier_uniform(&mut net, seed);
        (
            net,
            Shuffled::new(n, 8, seed).unwrap(),
            Adam::new(0.01 * seed as f64),
        )
    });
}

#[test]
fn nesterov_momentum_with_the_course_sampler_resumes_bit_for_bit() {
    resume_is_exact("momentum", |seed, n| {
        let mut net = Reg::new();
        init::randn(&mut net, seed);
        (
            net,
            WithReplacement::new(n, 5, seed).unwrap(),
            Momentum::nesterov(0.01, 0.9),
        )
    });
}

#[test]
fn f32_adam_with_dropped_last_batches_resumes_bit_for_bit() {
    resume_is_exact("adam32", |seed, n| {
        let mut net = Reg32::new();
        init::he_normal(&mut net, seed);
        (
            net,
            Shuffled::new(n, 8, seed).unwrap().drop_last(true),
            Adam::new(0.02f32),
        )
    });
}

/// Restoring state saved for something else fails and changes nothing.
#[test]
fn restoring_mismatched_state_fails_and_changes_nothing() {
    let mut ck = Checkpoint::new();
    let mut s = Shuffled::new(10, 4, 1).unwrap();
    s.start_epoch();
    ck.put("s", &s)
        .put("w", &WithReplacement::new(10, 2, 3).unwrap());

    let mut other = Shuffled::new(12, 4, 5).unwrap();
    other.start_epoch();
    let before = format!("{other:?}");
    let e = ck.restore("s", &mut other).unwrap_err();
    assert!(matches!(e, Error::BadState { .. }), "{e:?}");
    assert!(e.to_string().contains("another data set"), "{e}");
    assert_eq!(format!("{other:?}"), before);

    let mut w = WithReplacement::new(10, 5, 3).unwrap();
    let before = format!("{w:?}");
    assert!(ck.restore("w", &mut w).is_err());
    assert_eq!(format!("{w:?}"), before);

    // A missing key names what is there.
    let mut adam = Adam::<f64>::new(0.1);
    let e = ck.restore("adam", &mut adam).unwrap_err();
    assert!(e.to_string().contains("no entry `adam.settings`"), "{e}");
    // Another element type is a typed error.
    let mut ck = Checkpoint::new();
    ck.put("adam", &Adam::<f32>::new(0.1));
    let e = ck.restore("adam", &mut adam).unwrap_err();
    assert!(matches!(e, Error::TensorDtype { .. }), "{e:?}");
    assert_eq!(adam.steps(), 0);
}
