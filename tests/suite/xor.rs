//! The `xor` example learns XOR: with its fixed seed, all four predictions end on the right
//! side of 0.5 (and the untrained network's do not).

use crate::example_xor as xor;

#[test]
fn xor_is_learned() {
    let out = xor::train(xor::DEFAULT_SEED, xor::STEPS).unwrap();
    let y = xor::targets();
    for i in 0..4 {
        assert_eq!(
            out.after[i] > 0.5,
            y[i] > 0.5,
            "point {i}: predicted {}, target {}",
            out.after[i],
            y[i]
        );
    }
    assert!(out.loss < 0.01, "final loss {}", out.loss);
    let right_before = (0..4)
        .filter(|&i| (out.before[i] > 0.5) == (y[i] > 0.5))
        .count();
    assert!(
        right_before < 4,
        "the untrained network already fits XOR: {:?}",
        out.before
    );
}
