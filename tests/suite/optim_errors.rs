//! Issue 8: an optimizer given a param whose gradient has another shape (possible for a
//! hand-written `Network`) panicked (`Sgd`) or skipped it (`Adam`, `Momentum`). Now every
//! optimizer checks first and fails with `Error::GradShape`, changing no param and no state;
//! a non-finite hyperparameter is refused the same way.

use miniflow::ndarray::{ArrayD, ArrayViewD, IxDyn};
use miniflow::{Adam, Error, Momentum, Network, NetworkSpec, Optimizer, ParamMut, Sgd};
use std::borrow::Cow;

/// A hand-written network with two params; `b`'s gradient can be given a wrong shape.
struct Hand {
    w: ArrayD<f64>,
    gw: ArrayD<f64>,
    b: ArrayD<f64>,
    gb: ArrayD<f64>,
}

static SPEC: NetworkSpec = NetworkSpec {
    name: Cow::Borrowed("Hand"),
    nodes: Cow::Borrowed(&[]),
    loss: Cow::Borrowed(""),
    outputs: Cow::Borrowed(&[]),
};

impl Hand {
    fn new(b_grad_len: usize) -> Self {
        Hand {
            w: ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1., 2., 3., 4.]).unwrap(),
            gw: ArrayD::from_elem(IxDyn(&[2, 2]), 0.5),
            b: ArrayD::from_elem(IxDyn(&[2]), 1.0),
            gb: ArrayD::from_elem(IxDyn(&[b_grad_len]), 0.25),
        }
    }

    fn bits(&self) -> Vec<u64> {
        self.w.iter().chain(&self.b).map(|v| v.to_bits()).collect()
    }
}

impl Network for Hand {
    type Elem = f64;
    fn spec(&self) -> &NetworkSpec {
        &SPEC
    }
    fn set_input(&mut self, _: &str, _: ArrayViewD<'_, f64>) -> miniflow::Result<()> {
        Ok(())
    }
    fn set_param(&mut self, _: &str, _: ArrayViewD<'_, f64>) -> miniflow::Result<()> {
        Ok(())
    }
    fn forward(&mut self) -> miniflow::Result<f64> {
        Ok(0.0)
    }
    fn backward(&mut self) -> miniflow::Result<()> {
        Ok(())
    }
    fn evaluate_dyn(&mut self, _: &str) -> miniflow::Result<ArrayViewD<'_, f64>> {
        Ok(self.w.view())
    }
    fn value_dyn(&self, _: &str) -> miniflow::Result<ArrayViewD<'_, f64>> {
        Ok(self.w.view())
    }
    fn grad_dyn(&self, _: &str) -> miniflow::Result<ArrayViewD<'_, f64>> {
        Ok(self.gw.view())
    }
    fn set_check_finite(&mut self, _: bool) {}
    fn visit_params(&mut self, f: &mut dyn FnMut(ParamMut<'_, f64>)) {
        f(ParamMut {
            index: 0,
            name: "w",
            value: self.w.view_mut(),
            grad: self.gw.view(),
        });
        f(ParamMut {
            index: 1,
            name: "b",
            value: self.b.view_mut(),
            grad: self.gb.view(),
        });
    }
}

fn expect_grad_shape(e: Error) {
    assert_eq!(
        e,
        Error::GradShape {
            param: "b".into(),
            value: vec![2],
            grad: vec![3],
        }
    );
    assert!(e.to_string().contains("nothing was updated"), "{e}");
}

/// Fails on the old code: `Sgd::step` panicked in a `Zip` (and returned no `Result`).
#[test]
fn a_gradient_of_another_shape_fails_every_optimizer_and_changes_nothing() {
    let mut net = Hand::new(3);
    let before = net.bits();

    expect_grad_shape(Sgd::new(0.1).step(&mut net).unwrap_err());
    assert_eq!(net.bits(), before, "w is before b, yet it was not updated");

    // The free function reports the same, and does nothing.
    expect_grad_shape(miniflow::sgd(&mut net, 0.1).unwrap_err());
    assert_eq!(net.bits(), before);

    let mut m = Momentum::new(0.1, 0.9);
    expect_grad_shape(m.step(&mut net).unwrap_err());
    assert_eq!(net.bits(), before);
    assert!(m.velocity(0).is_none(), "no velocity was allocated");

    let mut adam = Adam::new(0.1);
    expect_grad_shape(adam.step(&mut net).unwrap_err());
    assert_eq!(net.bits(), before);
    assert_eq!(adam.steps(), 0, "the step count did not move");
}

#[test]
fn a_failed_step_leaves_optimizer_state_bit_identical() {
    // Two good steps build state, then a failing one must not touch it.
    let mut good = Hand::new(2);
    let mut adam = Adam::new(0.1);
    let mut momentum = Momentum::new(0.1, 0.9);
    adam.step(&mut good).unwrap();
    adam.step(&mut good).unwrap();
    momentum.step(&mut good).unwrap();
    let (adam_before, momentum_before) = (format!("{adam:?}"), format!("{momentum:?}"));
    let mut bad = Hand::new(3);
    let before = bad.bits();
    assert!(adam.step(&mut bad).is_err());
    assert!(momentum.step(&mut bad).is_err());
    assert_eq!(format!("{adam:?}"), adam_before);
    assert_eq!(format!("{momentum:?}"), momentum_before);
    assert_eq!(bad.bits(), before);
    assert_eq!(adam.steps(), 2);
}

#[test]
fn a_non_finite_hyperparameter_is_refused_before_any_update() {
    let mut net = Hand::new(2);
    let before = net.bits();
    let e = Sgd::new(f64::NAN).step(&mut net).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                function: "Sgd::step",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("the learning rate is NaN"), "{e}");
    assert!(Momentum::new(0.1, f64::INFINITY).step(&mut net).is_err());
    let mut adam = Adam::new(0.1).with_eps(f64::NAN);
    assert!(adam.step(&mut net).is_err());
    assert_eq!((net.bits(), adam.steps()), (before, 0));
    // And good settings update.
    Sgd::new(0.5).step(&mut net).unwrap();
    assert_eq!(net.w[[0, 0]], 1.0 - 0.25);
}
