//! Nothing depends on hash ordering or other hidden state: compiling the same `network!`
//! source twice gives identical tokens, for every random network of `build.rs`. (Training
//! runs are compared bit for bit in `miniflow_randnets::check_network`.)

include!(concat!(env!("OUT_DIR"), "/sources.rs"));

use proc_macro2::TokenStream;

#[test]
fn expanding_the_same_source_twice_gives_identical_tokens() {
    assert!(SOURCES.len() >= 10);
    for (name, body) in SOURCES {
        let tokens = |s: &str| -> TokenStream { s.parse().expect("generated source lexes") };
        let first = miniflow_codegen::network(tokens(body)).to_string();
        assert!(
            !first.contains("compile_error"),
            "{name} does not compile: {first}"
        );
        for _ in 0..3 {
            let again = miniflow_codegen::network(tokens(body)).to_string();
            assert!(
                first == again,
                "{name}: two expansions of one source differ"
            );
        }
        // Also from one token stream cloned (spans shared).
        let t = tokens(body);
        assert_eq!(
            miniflow_codegen::network(t.clone()).to_string(),
            miniflow_codegen::network(t).to_string(),
            "{name}"
        );
    }
}
