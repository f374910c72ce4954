//! The other half of the random `network!` definitions written by `build.rs` (see
//! `randnets_0.rs`; two test crates so the halves compile in parallel).

include!(concat!(env!("OUT_DIR"), "/randnets_1.rs"));
