//! The smallest nonlinear problem: XOR, which no linear model can fit, learned by a
//! 2 -> 4 -> 1 network with sigmoid activations and an MSE loss, trained with Adam on the
//! four points. Prints the predictions before and after training.
//!
//! ```text
//! cargo run --release --example xor -- [--seed S]
//! ```

use miniflow::ndarray::{array, Array1, Array2};
use miniflow::{init, Adam, Network, Optimizer};
use std::process::ExitCode;

miniflow::network! {
    /// `p = sigmoid(linear(sigmoid(linear(X, W1, b1)), W2, b2))`, the probability that
    /// `x0 XOR x1` is 1.
    pub struct Xor {
        input X: [batch, 2];
        input y: [batch];
        param W1: [2, 4];
        param b1: [4];
        param W2: [4, 1];
        param b2: [1];

        l1 = linear(X, W1, b1);
        h = sigmoid(l1);
        l2 = linear(h, W2, b2);
        output p = sigmoid(l2);
        loss cost = mse(y, p);
    }
}

/// The seed used when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 1;

/// Training steps (full batch: all four points).
pub const STEPS: usize = 2000;

/// The four inputs.
pub fn inputs() -> Array2<f64> {
    array![[0., 0.], [0., 1.], [1., 0.], [1., 1.]]
}

/// Their XOR.
pub fn targets() -> Array1<f64> {
    array![0., 1., 1., 0.]
}

/// What a run gives: predictions for the four inputs before and after, and the final loss.
#[derive(Debug)]
pub struct Outcome {
    /// Predictions of the initial network.
    pub before: Vec<f64>,
    /// Predictions after training.
    pub after: Vec<f64>,
    /// The loss of the last step.
    pub loss: f64,
}

/// Initialises with Xavier uniform weights from `seed` and trains for `steps` Adam steps
/// (lr 0.05).
pub fn train(seed: u64, steps: usize) -> miniflow::Result<Outcome> {
    let mut net = Xor::new();
    init::xavier_uniform(&mut net, seed);
    net.feed(Xor::X, &inputs())?;
    net.feed(Xor::y, &targets())?;
    let predict = |net: &mut Xor| -> miniflow::Result<Vec<f64>> {
        Ok(net.evaluate(Xor::p)?.iter().copied().collect())
    };
    let before = predict(&mut net)?;
    let mut adam = Adam::new(0.05);
    let mut loss = f64::NAN;
    for _ in 0..steps {
        loss = net.forward_backward()?;
        adam.step(&mut net)?;
    }
    let after = predict(&mut net)?;
    Ok(Outcome {
        before,
        after,
        loss,
    })
}

fn main() -> ExitCode {
    let mut seed = DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().map(|v| v.parse::<u64>())) {
            ("--seed", Some(Ok(s))) => seed = s,
            _ => {
                eprintln!("usage: xor [--seed S]");
                return ExitCode::from(2);
            }
        }
    }
    let out = match train(seed, STEPS) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("XOR, 2 -> 4 -> 1, sigmoid, MSE, Adam lr 0.05, {STEPS} steps, seed {seed}");
    println!("  x0 x1  target  before  after");
    let x = inputs();
    let y = targets();
    let mut right = 0;
    for i in 0..4 {
        let ok = (out.after[i] > 0.5) == (y[i] > 0.5);
        right += usize::from(ok);
        println!(
            "  {:>2} {:>2}  {:>6}  {:.4}  {:.4}{}",
            x[[i, 0]],
            x[[i, 1]],
            y[i],
            out.before[i],
            out.after[i],
            if ok { "" } else { "  wrong" }
        );
    }
    println!("final loss {:.6}; {right}/4 right", out.loss);
    if right == 4 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
