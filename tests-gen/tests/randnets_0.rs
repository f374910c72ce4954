//! Half of the random `network!` definitions written by `build.rs` (from fixed seeds, over every op of the
//! table), each tested against the runtime graph rebuilt from its spec: loss, every value,
//! every gradient, three training steps fused and unfused and on the graph, and determinism.
//! See `miniflow_randnets::check_network`.

include!(concat!(env!("OUT_DIR"), "/randnets_0.rs"));

#[test]
fn random_networks_use_every_op() {
    assert!(
        UNUSED_OPS.is_empty(),
        "no generated network uses {UNUSED_OPS:?}; give the op an entry in tests-gen/src/netgen.rs \
         or raise the count in build.rs"
    );
}
