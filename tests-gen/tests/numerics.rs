//! Numerical care: networks fed ±1000 stay finite, forward and backward, generated (`f64` and
//! `f32`) and in the runtime graph. `build.rs` writes one network per op that must stay
//! finite there (sigmoid, tanh, softmax, relu, leaky_relu, bce, bce_logits,
//! softmax_cross_entropy), for the ops the table has.

include!(concat!(env!("OUT_DIR"), "/numerics.rs"));

#[test]
fn numerics_cover_sigmoid() {
    assert!(NUMERICS.contains(&"sigmoid_of_input") && NUMERICS.contains(&"sigmoid_after_linear"));
    for op in ["softmax", "tanh", "bce_logits", "softmax_cross_entropy"] {
        if miniflow::Op::from_name(op).is_some() {
            assert!(
                NUMERICS.iter().any(|n| n.starts_with(op)),
                "`{op}` exists but has no numerics network"
            );
        }
    }
}
