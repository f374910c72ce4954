//! A training step that fails changes nothing, and a gradient is only read when one was
//! computed for the current state (issue 8, sections 2 and 4). Each test here failed on the
//! code before the fix.

use crate::common;

use common::nets::TwoLayer;
use common::{feed_net, params_of, random_inputs};
use miniflow::ndarray::array;
use miniflow::{Error, Network};

fn bits(params: &[(String, miniflow::ndarray::ArrayD<f64>)]) -> Vec<(String, Vec<u64>)> {
    params
        .iter()
        .map(|(n, v)| (n.clone(), v.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

fn two_layer() -> TwoLayer {
    let mut net = TwoLayer::new();
    miniflow::init::xavier_uniform(&mut net, 3);
    feed_net(
        &mut net,
        &random_inputs(&[("X", &[11, 13]), ("y", &[11])])(1),
    );
    net
}

/// Before: the fused step updated params in place, then check mode found the non-finite
/// value and returned `NonFinite` with the params already overwritten (`-inf`).
#[test]
fn a_check_mode_step_that_overflows_leaves_every_param_as_it_was() {
    let mut net = two_layer();
    net.set_check_finite(true);
    let before = bits(&params_of(&net));
    let err = net.sgd_step(1e308).unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { pass: "update", .. }),
        "{err}"
    );
    assert_eq!(bits(&params_of(&net)), before, "a failed step wrote params");
    // The network still trains.
    assert!(net.sgd_step(1e-2).is_ok());
    assert_ne!(bits(&params_of(&net)), before);
}

/// Before: `sgd_step(NaN)` made every param NaN and returned `Ok`.
#[test]
fn a_non_finite_learning_rate_is_an_error_and_changes_nothing() {
    for lr in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut net = two_layer();
        let before = bits(&params_of(&net));
        let err = net.sgd_step(lr).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::BadHyperparameter {
                    name: "learning rate",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(bits(&params_of(&net)), before);
    }
}

/// Before: `grad` returned zeros nobody computed, or the previous backward's gradient after
/// `sgd_step`, as `Ok`.
#[test]
fn grad_is_an_error_unless_a_backward_computed_it_for_the_current_state() {
    let mut net = two_layer();
    let stale = |net: &TwoLayer| matches!(net.grad("W1"), Err(Error::NoGradient { .. }));
    assert!(stale(&net), "before any backward");
    net.forward_backward().unwrap();
    assert!(net.grad("W1").is_ok());
    net.sgd_step(1e-2).unwrap();
    assert!(stale(&net), "after sgd_step");
    net.forward_backward().unwrap();
    net.feed("y", &array![0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10.])
        .unwrap();
    assert!(stale(&net), "after a feed");
    net.forward_backward().unwrap();
    net.forward().unwrap();
    assert!(stale(&net), "after a forward without backward");
    // The message says what to do.
    let msg = net.grad("W1").unwrap_err().to_string();
    assert!(msg.contains("forward_backward"), "{msg}");
    // An optimizer reads the gradients of the last backward.
    net.backward().unwrap();
    let mut adam = miniflow::Adam::new(1e-3);
    miniflow::Optimizer::step(&mut adam, &mut net).unwrap();
    assert!(net.grad("W1").is_ok());
}
