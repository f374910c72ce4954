//! Each optimizer's steps against values computed by hand on a one-weight network, a
//! user-written optimizer through the `Optimizer` trait, and the gradient semantics the
//! optimizers rely on (gradients are overwritten by each backward, not accumulated).

use crate::common;

use common::nets::TwoLayer;

use miniflow::ndarray::{array, ArrayD};
use miniflow::{Adam, Momentum, Network, Optimizer, ParamMut, Scalar, Sgd};

miniflow::network! {
    /// `o = x·w + b`, `c = (y - o)²`: with x = 2, y = 1 the gradients are
    /// `dc/dw = 2·x·(o - y) = 4(o - y)` and `dc/db = 2(o - y)`.
    struct Tiny {
        input x: [1, 1];
        input y: [1];
        param w: [1, 1];
        param b: [1];
        o = linear(x, w, b);
        loss c = mse(y, o);
    }
}

/// A `Tiny` with x = 2, y = 1, w = 0.5, b = 0.25: o = 1.25, so the first gradients are
/// dw = 4 · 0.25 = 1 and db = 2 · 0.25 = 0.5.
fn tiny() -> Tiny {
    let mut net = Tiny::new();
    net.feed("x", &array![[2.0]]).unwrap();
    net.feed("y", &array![1.0]).unwrap();
    net.set_param("w", array![[0.5]].view().into_dyn()).unwrap();
    net.set_param("b", array![0.25].view().into_dyn()).unwrap();
    net
}

fn wb(net: &Tiny) -> (f64, f64) {
    (
        net.value("w").unwrap()[[0, 0]],
        net.value("b").unwrap()[[0]],
    )
}

fn close(got: (f64, f64), want: (f64, f64), step: usize) {
    assert!(
        (got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12,
        "after step {step}: (w, b) = {got:?}, expected {want:?}"
    );
}

/// Runs `steps` forward/backward/optimizer steps and checks (w, b) after each.
fn run<O: Optimizer<f64>>(opt: &mut O, want: &[(f64, f64)]) {
    let mut net = tiny();
    for (k, &w) in want.iter().enumerate() {
        net.forward_backward().unwrap();
        opt.step(&mut net).unwrap();
        close(wb(&net), w, k + 1);
    }
}

#[test]
fn sgd_steps_by_hand() {
    // Step 1: w = 0.5 - 0.1·1 = 0.4, b = 0.25 - 0.1·0.5 = 0.2. Then o = 2·0.4 + 0.2 = 1 = y:
    // the gradient is 0 and step 2 changes nothing.
    run(&mut Sgd::new(0.1), &[(0.4, 0.2), (0.4, 0.2)]);
}

#[test]
fn momentum_steps_by_hand() {
    // v = 0.9 v + g, value -= 0.1 v.
    // 1: g = (1, 0.5), v = (1, 0.5): (0.4, 0.2), as SGD.
    // 2: o = 1, g = 0, v = (0.9, 0.45): (0.31, 0.155). SGD would have stopped here.
    // 3: o = 0.775, g = (4, 2)·(-0.225) = (-0.9, -0.45), v = (0.81 - 0.9, 0.405 - 0.45)
    //    = (-0.09, -0.045): (0.319, 0.1595).
    let mut m = Momentum::new(0.1, 0.9);
    run(&mut m, &[(0.4, 0.2), (0.31, 0.155), (0.319, 0.1595)]);
    let v = m.velocity(0).unwrap();
    assert!((v[[0, 0]] + 0.09).abs() < 1e-12, "velocity of w: {v}");
    assert!((m.velocity(1).unwrap()[[0]] + 0.045).abs() < 1e-12);
    assert!(m.velocity(2).is_none());

    // After a reset the next step is a plain SGD step again.
    m.reset();
    assert!(m.velocity(0).is_none());
    run(&mut m, &[(0.4, 0.2)]);
}

#[test]
fn nesterov_steps_by_hand() {
    // v = 0.9 v + g, value -= 0.1 (g + 0.9 v).
    // 1: g = (1, 0.5), v = (1, 0.5), d = (1.9, 0.95): (0.31, 0.155).
    // 2: o = 0.775, g = (-0.9, -0.45), v = (0.9 - 0.9, 0.45 - 0.45) = 0, d = g: (0.4, 0.2).
    // 3: o = 1, g = 0, v = 0: unchanged.
    run(
        &mut Momentum::nesterov(0.1, 0.9),
        &[(0.31, 0.155), (0.4, 0.2), (0.4, 0.2)],
    );
}

#[test]
fn adam_steps_by_hand() {
    // lr 0.1, β1 0.9, β2 0.999, ε 1e-8; t counts from 1.
    // 1: m = 0.1 g, v = 0.001 g², m̂ = g, v̂ = g²: each param moves by 0.1 · g / (|g| + ε):
    //    w = 0.5 - 0.1 / (1 + 1e-8) = 0.400000001, b = 0.25 - 0.05 / (0.5 + 1e-8).
    // 2: o = 0.95 (to 1e-8), g ≈ (-0.2, -0.1); m_w = 0.09 - 0.02 = 0.07,
    //    v_w = 0.000999 + 0.00004 = 0.001039; m̂ = 0.07 / 0.19, v̂ = 0.001039 / 0.001999:
    //    w = 0.400000001 - 0.1 · 0.368421 / 0.720944 = 0.348897...
    // 3: likewise. The values below are those formulas evaluated in f64.
    let mut adam = Adam::new(0.1);
    run(
        &mut adam,
        &[
            (0.400000001, 0.15000000199999997),
            (0.3488973926650449, 0.09889739437387417),
            (0.3578765983900192, 0.10787659997960197),
        ],
    );
    assert_eq!(adam.steps(), 3);

    // Configurable betas and eps: with β1 = 0 and β2 = 0, Adam is sign descent,
    // lr · g / (|g| + ε).
    let mut sign = Adam::new(0.1).with_betas(0.0, 0.0).with_eps(0.0);
    run(&mut sign, &[(0.4, 0.15)]);
    adam.reset();
    assert_eq!(adam.steps(), 0);
}

#[test]
fn learning_rate_is_explicit() {
    let mut s = Sgd::new(0.1);
    s.set_lr(0.5);
    assert_eq!(s.lr(), 0.5);
    // w = 0.5 - 0.5 · 1 = 0, b = 0.25 - 0.5 · 0.5 = 0.
    run(&mut s, &[(0.0, 0.0)]);
    let mut m = Momentum::new(0.1, 0.9);
    m.set_lr(0.2);
    assert_eq!(m.lr(), 0.2);
    run(&mut m, &[(0.3, 0.15)]);
    let mut a = Adam::new(0.1);
    a.set_lr(0.2);
    assert_eq!(a.lr, 0.2);
}

/// Sign descent, written by a user of the crate: `value -= lr · sign(grad)`.
struct SignSgd {
    lr: f64,
    steps: usize,
}

impl Optimizer<f64> for SignSgd {
    fn step<N: Network<Elem = f64> + ?Sized>(&mut self, net: &mut N) -> miniflow::Result<()> {
        self.steps += 1;
        net.visit_params(&mut |p: ParamMut<'_, f64>| {
            let mut value = p.value;
            value.zip_mut_with(&p.grad, |v, &g| {
                if g != 0.0 {
                    *v -= self.lr * g.signum();
                }
            });
        });
        Ok(())
    }
}

#[test]
fn a_user_written_optimizer_works_through_the_trait() {
    let mut opt = SignSgd {
        lr: 0.125,
        steps: 0,
    };
    // 1: g = (1, 0.5) > 0: (0.375, 0.125). 2: o = 0.875, g < 0: (0.5, 0.25).
    run(&mut opt, &[(0.375, 0.125), (0.5, 0.25)]);
    assert_eq!(opt.steps, 2);

    // Generic code over the trait accepts it like the built-in ones.
    fn steps<O: Optimizer<f64>>(opt: &mut O, net: &mut Tiny, n: usize) -> f64 {
        let mut loss = 0.0;
        for _ in 0..n {
            loss = net.forward_backward().unwrap();
            opt.step(net).unwrap();
        }
        loss
    }
    let mut net = tiny();
    let first = net.forward().unwrap();
    let last = steps(&mut opt, &mut net, 3);
    assert!(last <= first);
    steps(&mut Adam::new(0.01), &mut net, 2);

    // Optimizers take unsized networks too: a trait object.
    let dyn_net: &mut dyn Network<Elem = f64> = &mut net;
    dyn_net.forward_backward().unwrap();
    opt.step(dyn_net).unwrap();
    Momentum::new(0.01, 0.9).step(dyn_net).unwrap();
    assert_eq!(opt.steps, 6);
}

#[test]
fn gradients_are_overwritten_not_accumulated() {
    let mut net = tiny();
    net.forward_backward().unwrap();
    let g1 = net.grad("w").unwrap().to_owned();
    net.backward().unwrap();
    net.forward_backward().unwrap();
    assert_eq!(
        net.grad("w").unwrap(),
        g1,
        "a second backward does not add up"
    );
    assert_eq!(g1, array![[1.0]].into_dyn());
}

fn regression() -> (ArrayD<f64>, ArrayD<f64>) {
    let x = ArrayD::from_shape_fn(vec![32, 13], |d| ((d[0] * 13 + d[1]) as f64 * 0.37).sin());
    let y = ArrayD::from_shape_fn(vec![32], |d| 3.0 + (d[0] as f64 * 0.3).cos());
    (x, y)
}

fn train<O: Optimizer<f64>>(opt: &mut O, steps: usize) -> (f64, f64) {
    let mut net = TwoLayer::new();
    miniflow::init::xavier_uniform(&mut net, 3);
    let (x, y) = regression();
    net.set_input("X", x.view()).unwrap();
    net.set_input("y", y.view()).unwrap();
    let first = net.forward().unwrap();
    let mut last = first;
    for _ in 0..steps {
        last = net.forward_backward().unwrap();
        opt.step(&mut net).unwrap();
    }
    (first, last)
}

#[test]
fn every_optimizer_trains_the_two_layer_network() {
    let (first, sgd) = train(&mut Sgd::new(0.05), 200);
    let (_, momentum) = train(&mut Momentum::new(0.05, 0.9), 200);
    let (_, adam) = train(&mut Adam::new(0.05), 200);
    assert!(sgd < first / 2.0, "sgd {first} -> {sgd}");
    assert!(momentum < sgd, "momentum {momentum} vs sgd {sgd}");
    assert!(adam < first / 10.0, "adam {first} -> {adam}");
}

#[test]
fn state_follows_the_param_shapes_when_the_network_changes() {
    // The same Adam on two networks: params of another shape get fresh state, no panic.
    let mut adam = Adam::new(0.01);
    let mut a = tiny();
    a.forward_backward().unwrap();
    adam.step(&mut a).unwrap();
    let mut b = TwoLayer::new();
    let (x, y) = regression();
    b.set_input("X", x.view()).unwrap();
    b.set_input("y", y.view()).unwrap();
    b.forward_backward().unwrap();
    adam.step(&mut b).unwrap();
    assert!(b.value("W1").unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn optimizers_work_in_f32() {
    miniflow::network! {
        #[elem(f32)]
        struct Tiny32 {
            input x: [1, 1];
            input y: [1];
            param w: [1, 1];
            param b: [1];
            o = linear(x, w, b);
            loss c = mse(y, o);
        }
    }
    let mut net = Tiny32::new();
    net.feed("x", &array![[2.0f32]]).unwrap();
    net.feed("y", &array![1.0f32]).unwrap();
    net.set_param("w", array![[0.5f32]].view().into_dyn())
        .unwrap();
    net.set_param("b", array![0.25f32].view().into_dyn())
        .unwrap();
    let mut m = Momentum::new(0.1f32, 0.9);
    for _ in 0..3 {
        net.forward_backward().unwrap();
        m.step(&mut net).unwrap();
    }
    let w = net.value("w").unwrap()[[0, 0]];
    assert!((w.to_f64() - 0.319).abs() < 1e-6, "{w}");
    let mut a = Adam::<f32>::new(0.1);
    net.forward_backward().unwrap();
    a.step(&mut net).unwrap();
}
