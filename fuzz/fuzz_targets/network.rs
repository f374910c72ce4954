//! Any text that lexes as Rust tokens, given to the `network!` compiler: it must not panic,
//! and must return either code or only non-empty `compile_error!`s.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proc_macro2::{TokenStream, TokenTree};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tokens) = text.parse::<TokenStream>() else {
        return;
    };
    let out = miniflow_codegen::network(tokens);
    let s = out.to_string();
    if s.contains("compile_error") {
        // Only `:: core :: compile_error ! { "message" }`s, each message non-empty.
        let tts: Vec<TokenTree> = out.into_iter().collect();
        assert!(
            tts.len().is_multiple_of(8),
            "compile_error! mixed with code: {s}"
        );
        for chunk in tts.chunks(8) {
            assert!(
                matches!(&chunk[5], TokenTree::Ident(i) if i == "compile_error"),
                "{s}"
            );
            let TokenTree::Group(g) = &chunk[7] else {
                panic!("compile_error! without a message: {s}");
            };
            assert!(
                !g.stream().to_string().trim_matches('"').trim().is_empty(),
                "empty message: {s}"
            );
        }
    } else {
        assert!(
            s.contains("struct") && s.contains("impl"),
            "neither code nor errors: {s}"
        );
    }
});
