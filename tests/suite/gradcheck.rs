//! The public gradient check: it passes on correct networks, finds a corrupted gradient
//! (naming the param and the element), samples big params, and restores every param.

use crate::common;

use common::nets::TwoLayer;

use miniflow::gradcheck::{self, GradCheck};
use miniflow::ndarray::{ArrayD, ArrayViewD, IxDyn};
use miniflow::{init, Network, NetworkSpec, ParamMut, Result, Rng};

miniflow::network! {
    /// A param used twice and an add: gradients summed over consumers.
    struct Shared {
        input x: [n, 3];
        input y: [n, 3];
        param w: [3, 3];
        param b: [3];
        h = linear(x, w, b);
        s = sigmoid(h);
        t = add(s, h);
        o = linear(t, w, b);
        loss c = mse(y, o);
    }
}

fn random(rng: &mut Rng, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.normal())
}

fn two_layer() -> TwoLayer {
    let mut net = TwoLayer::new();
    init::xavier_normal(&mut net, 1);
    // Non-zero biases, so their gradients are not all trivially alike.
    let mut rng = Rng::new(2);
    net.set_param("b1", random(&mut rng, &[10]).view()).unwrap();
    net.set_input("X", random(&mut rng, &[7, 13]).view())
        .unwrap();
    net.set_input("y", random(&mut rng, &[7]).view()).unwrap();
    net
}

fn all_params(net: &mut impl Network<Elem = f64>) -> Vec<ArrayD<f64>> {
    let mut out = Vec::new();
    net.visit_params(&mut |p| out.push(p.value.to_owned()));
    out
}

#[test]
fn passes_on_correct_networks() {
    let mut net = two_layer();
    let before = all_params(&mut net);
    let report = gradcheck::check(&mut net, &GradCheck::default()).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.checked, 13 * 10 + 10 + 10 + 1);
    assert!(report.max_error() < 1e-6, "{report}");
    // Params are restored bit for bit.
    let after = all_params(&mut net);
    for (a, b) in before.iter().zip(&after) {
        let bits = |x: &ArrayD<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a), bits(b));
    }

    let mut net = Shared::new();
    let mut rng = Rng::new(5);
    net.set_param("w", random(&mut rng, &[3, 3]).view())
        .unwrap();
    net.set_param("b", random(&mut rng, &[3]).view()).unwrap();
    net.set_input("x", random(&mut rng, &[4, 3]).view())
        .unwrap();
    net.set_input("y", random(&mut rng, &[4, 3]).view())
        .unwrap();
    let report = gradcheck::check(&mut net, &GradCheck::default()).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.checked, 12);
}

/// A network whose reported gradient of one param element is off by `delta`: what a bug in
/// a backward kernel would look like from outside.
struct Corrupt<N> {
    inner: N,
    param: &'static str,
    flat: usize,
    delta: f64,
    grads: Vec<ArrayD<f64>>,
}

impl<N: Network<Elem = f64>> Network for Corrupt<N> {
    type Elem = f64;

    fn spec(&self) -> &NetworkSpec {
        self.inner.spec()
    }
    fn set_input(&mut self, name: &str, value: ArrayViewD<'_, f64>) -> Result<()> {
        self.inner.set_input(name, value)
    }
    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f64>) -> Result<()> {
        self.inner.set_param(name, value)
    }
    fn forward(&mut self) -> Result<f64> {
        self.inner.forward()
    }
    fn backward(&mut self) -> Result<()> {
        self.inner.backward()?;
        let (param, flat, delta) = (self.param, self.flat, self.delta);
        let mut grads = Vec::new();
        self.inner.visit_params(&mut |p| {
            let mut g = p.grad.to_owned();
            if p.name == param {
                if let Some(x) = g.iter_mut().nth(flat) {
                    *x += delta;
                }
            }
            grads.push(g);
        });
        self.grads = grads;
        Ok(())
    }
    fn evaluate_dyn(&mut self, name: &str) -> Result<ArrayViewD<'_, f64>> {
        self.inner.evaluate_dyn(name)
    }
    fn value_dyn(&self, name: &str) -> Result<ArrayViewD<'_, f64>> {
        self.inner.value_dyn(name)
    }
    fn grad_dyn(&self, name: &str) -> Result<ArrayViewD<'_, f64>> {
        self.inner.grad_dyn(name)
    }
    fn set_check_finite(&mut self, on: bool) {
        self.inner.set_check_finite(on);
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(ParamMut<'_, f64>)) {
        let grads = &self.grads;
        self.inner.visit_params(&mut |p| {
            let grad = match grads.get(p.index) {
                Some(g) => g.view(),
                None => p.grad,
            };
            f(ParamMut {
                index: p.index,
                name: p.name,
                value: p.value,
                grad,
            })
        });
    }
}

#[test]
fn detects_a_wrong_gradient_and_names_it() {
    for (param, flat, delta) in [("W1", 37, 1e-3), ("b2", 0, -0.05), ("W2", 9, 1e-4)] {
        let mut net = Corrupt {
            inner: two_layer(),
            param,
            flat,
            delta,
            grads: Vec::new(),
        };
        let report = gradcheck::check(&mut net, &GradCheck::default()).unwrap();
        assert!(!report.passed(), "{param}[{flat}] off by {delta}: {report}");
        let worst = report.worst.clone().unwrap();
        assert_eq!(
            (worst.param.as_str(), worst.index),
            (param, flat),
            "{report}"
        );
        assert!(
            ((worst.analytic - worst.numeric) - delta).abs() < 1e-7,
            "{report}"
        );
        assert!(report.to_string().contains("FAILED"));
        assert!(report.to_string().contains(&format!("`{param}`[{flat}]")));
    }
    // A zero corruption passes: the wrapper itself is faithful.
    let mut net = Corrupt {
        inner: two_layer(),
        param: "W1",
        flat: 0,
        delta: 0.0,
        grads: Vec::new(),
    };
    assert!(gradcheck::check(&mut net, &GradCheck::default())
        .unwrap()
        .passed());
}

#[test]
fn sampled_mode_checks_a_subset_and_still_finds_errors() {
    let mut net = two_layer();
    let report = gradcheck::check(&mut net, &GradCheck::sampled(5, 9)).unwrap();
    // 5 of W1, 5 of b1, 5 of W2, the single b2.
    assert_eq!(report.checked, 16);
    assert!(report.passed(), "{report}");

    // Sampling everything of a small param finds its error.
    let mut net = Corrupt {
        inner: two_layer(),
        param: "b2",
        flat: 0,
        delta: 0.1,
        grads: Vec::new(),
    };
    let report = gradcheck::check(&mut net, &GradCheck::sampled(3, 1)).unwrap();
    assert!(!report.passed());
    assert_eq!(report.worst.unwrap().param, "b2");
}

#[test]
fn unfed_inputs_are_an_error() {
    let mut net = TwoLayer::new();
    assert!(matches!(
        gradcheck::check(&mut net, &GradCheck::default()),
        Err(miniflow::Error::MissingFeed { .. })
    ));
}

/// Old code: `GradCheck { step: 0.0 }` returned `Ok` with a NaN error (0 / 0).
#[test]
fn nonsensical_settings_are_errors_before_anything_runs() {
    let mut net = two_layer();
    let before = all_params(&mut net);
    let d = GradCheck::default();
    for bad in [
        GradCheck { step: 0.0, ..d },
        GradCheck { step: -1e-5, ..d },
        GradCheck {
            step: f64::NAN,
            ..d
        },
        GradCheck {
            step: f64::INFINITY,
            ..d
        },
        GradCheck {
            min_scale: 0.0,
            ..d
        },
        GradCheck {
            min_scale: f64::NAN,
            ..d
        },
        GradCheck {
            tolerance: -1.0,
            ..d
        },
        GradCheck {
            tolerance: f64::NAN,
            ..d
        },
        GradCheck {
            sample: Some(0),
            ..d
        },
    ] {
        let err = gradcheck::check(&mut net, &bad).unwrap_err();
        assert!(
            matches!(
                &err,
                miniflow::Error::InvalidArgument {
                    function: "gradcheck::check",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
        assert_eq!(bad.validate(), Err(err));
    }
    assert_eq!(
        gradcheck::check(&mut net, &GradCheck { step: 0.0, ..d })
            .unwrap_err()
            .to_string(),
        "gradcheck::check: the finite-difference step must be a finite number above 0, not 0; \
         the default is 1e-5"
    );
    let after = all_params(&mut net);
    assert_eq!(before, after);
    assert!(gradcheck::check(&mut net, &d).unwrap().passed());
}
