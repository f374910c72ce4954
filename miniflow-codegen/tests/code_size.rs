//! The compiler's cost grows linearly with the network (issue 8, section 6): the expansion of a
//! chain of outputs, and the time to compile a variadic op with thousands of arguments.
//!
//! These measure nothing against a clock: a quadratic expansion would fail the size ratios,
//! and a quadratic pass over 8,000 arguments would take minutes instead of well under a
//! second. `cargo test -p miniflow-codegen --test code_size -- --nocapture` prints the sizes.

use std::fmt::Write as _;
use std::time::Instant;

fn expansion(src: &str) -> String {
    let tokens: proc_macro2::TokenStream = src.parse().expect("valid tokens");
    let out = miniflow_codegen::pipeline(tokens).unwrap_or_else(|e| panic!("{e}"));
    out.to_string()
}

/// `n` tanh layers, every one an `output`, then the loss.
fn chain(n: usize) -> String {
    let mut s = String::from("struct Chain { input x: [batch, 2]; output h0 = tanh(x);");
    for k in 1..n {
        let _ = write!(s, " output h{k} = tanh(h{});", k - 1);
    }
    let _ = write!(s, " loss l = mean(h{}); }}", n - 1);
    s
}

const COURSE: &str = "pub struct Course { #[grad] input X: [batch, 2]; #[grad] input y: [batch];
    param W: [2, 1]; param b: [1]; f = linear(X, W, b); output a = sigmoid(f);
    loss cost = mse(y, a); }";

#[test]
fn the_expansion_grows_linearly_with_the_outputs() {
    let course = expansion(COURSE);
    println!(
        "course network: {} bytes of tokens, {} per node",
        course.len(),
        course.len() / 7
    );
    let sizes: Vec<(usize, usize)> = [100, 200, 400]
        .into_iter()
        .map(|n| (n, expansion(&chain(n)).len()))
        .collect();
    for &(n, size) in &sizes {
        println!(
            "chain of {n} outputs: {size} bytes, {} per node",
            size / (n + 2)
        );
    }
    // Doubling the outputs at most (a little over) doubles the code.
    for w in sizes.windows(2) {
        let ratio = w[1].1 as f64 / w[0].1 as f64;
        assert!(
            ratio < 2.3,
            "{} -> {} outputs grew the code {ratio:.2}x",
            w[0].0,
            w[1].0
        );
    }
}

#[test]
fn a_variadic_op_with_thousands_of_arguments_compiles_in_linear_time() {
    let n: usize = std::env::var("MINIFLOW_WIDE_ARGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8_000);
    let mut s = String::from("struct Wide {");
    for k in 0..n {
        let _ = write!(s, " param p{k}: [2];");
    }
    s.push_str(" input y: [2]; a = add(");
    let args: Vec<String> = (0..n).map(|k| format!("p{k}")).collect();
    s.push_str(&args.join(", "));
    s.push_str("); loss l = mse(y, a); }");
    let start = Instant::now();
    let out = expansion(&s);
    println!(
        "add with {n} arguments: {} bytes, compiled in {:.2?}",
        out.len(),
        start.elapsed()
    );
    assert!(
        out.len() < 3_000 * n,
        "{} bytes for {n} arguments",
        out.len()
    );
}
