//! Prints the seed's test network as Graphviz DOT, or writes it to a file.
//!
//! ```text
//! cargo run --example dot | dot -Tsvg -o docs/course.svg
//! cargo run --example dot -- course.dot
//! ```

use miniflow::Network;
use std::process::ExitCode;

miniflow::network! {
    /// The seed's test network: `cost = MSE(y, Sigmoid(Linear(X, W, b)))`.
    pub struct Course {
        /// The data, one row per sample.
        input X: [batch, 2];
        /// The targets.
        input y: [batch];
        /// The weights.
        param W: [2, 1];
        /// The bias.
        param b: [1];

        f = linear(X, W, b);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

fn main() -> ExitCode {
    let net = Course::new();
    match std::env::args().nth(1) {
        None => {
            print!("{}", net.to_dot());
            ExitCode::SUCCESS
        }
        Some(path) => match miniflow::dot::write_dot(net.spec(), &path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
