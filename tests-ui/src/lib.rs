//! No code: this package holds the compile-fail suite of `network!` (`tests/ui.rs`, cases in
//! `tests/ui/`), kept apart from the root package so trybuild builds the cases against
//! `miniflow` alone rather than also against the root's dev-dependencies.
