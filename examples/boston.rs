//! The course's final program, `nn.py`, in miniflow: a 13 -> 10 -> 1 network with a sigmoid
//! hidden layer and an MSE loss, trained on the Boston housing data.
//!
//! As in `nn.py`: features z-scored with the population std (ddof 0); weights drawn from
//! N(0, 1) and biases zero; each step a batch of 11 rows drawn **with replacement**;
//! 506 // 11 = 46 steps per epoch; SGD with learning rate 1e-2; after each epoch it prints
//! `Epoch: i, Loss: x`, the mean of that epoch's batch losses, each taken before its update.
//! Unlike `nn.py`, the run is seeded, so it is reproducible.
//!
//! ```text
//! cargo run --release --example boston -- [--epochs N] [--seed S] [--plot loss.svg]
//! ```
//!
//! The data (`data/boston_house_prices.csv`, see `data/README.md`) is the course's. Its `B`
//! column encodes a racial proportion, which is why scikit-learn removed the data set in 1.2;
//! it is used here only to reproduce the course.

use miniflow::data::{Dataset, WithReplacement};
use miniflow::train::{self, Fit};
use miniflow::{init, Rng};
use std::ops::ControlFlow;
use std::process::ExitCode;

miniflow::network! {
    /// nn.py's network: `cost = MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2))`.
    pub struct Boston {
        input X: [batch, 13];
        input y: [batch];
        param W1: [13, 10];
        param b1: [10];
        param W2: [10, 1];
        param b2: [1];

        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        loss cost = mse(y, l2);
    }
}

/// The data file, found from the package root wherever the example is run.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/boston_house_prices.csv");

/// nn.py's batch size.
pub const BATCH: usize = 11;

/// nn.py's learning rate.
pub const LEARNING_RATE: f64 = 1e-2;

/// The seed used when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 42;

/// Trains as nn.py does for `epochs` epochs from `seed` (which fixes the initial weights and
/// the batches), calling `on_epoch(i, mean loss)` after each epoch (`i` from 1, as nn.py
/// prints it). Returns the mean loss of each epoch.
pub fn train(
    epochs: usize,
    seed: u64,
    mut on_epoch: impl FnMut(usize, f64),
) -> miniflow::Result<Vec<f64>> {
    let mut data = Dataset::<f64>::read_boston(DATA)?;
    data.standardize();

    let mut rng = Rng::new(seed);
    let mut net = Boston::new();
    init::Init::Randn.apply(&mut net, &mut rng);
    let mut sampler = WithReplacement::new(data.len(), BATCH, rng.next_u64())?;

    let history = Fit::new(epochs).run(
        &mut net,
        &data,
        &mut sampler,
        train::sgd_step(LEARNING_RATE),
        |e| {
            on_epoch(e.epoch + 1, e.mean_loss);
            ControlFlow::Continue(())
        },
    )?;
    Ok(history.losses)
}

/// A loss curve as a standalone SVG: a polyline over labelled axes.
pub fn loss_svg(losses: &[f64], title: &str) -> String {
    let (w, h) = (720.0, 440.0);
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let finite = losses.iter().copied().filter(|l| l.is_finite());
    let max = finite.fold(0.0f64, f64::max);
    let y_max = nice_ceiling(max);
    let n = losses.len().max(2);
    let x_of = |i: usize| left + pw * i as f64 / (n - 1) as f64;
    let y_of = |v: f64| top + ph * (1.0 - (v / y_max).clamp(0.0, 1.0));

    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        w / 2.0,
        escape(title)
    );
    // Horizontal grid lines and y labels.
    for k in 0..=5 {
        let v = y_max * k as f64 / 5.0;
        let y = y_of(v);
        svg += &format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            left + pw,
            left - 6.0,
            y + 4.0,
            trim(v)
        );
    }
    // x ticks: at most ~10, at epochs 1, ..., len.
    let step = losses.len().div_ceil(10).max(1);
    for i in (0..losses.len()).step_by(step) {
        let x = x_of(i);
        svg += &format!(
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            top + ph,
            top + ph + 5.0,
            top + ph + 18.0,
            i + 1
        );
    }
    // Axes and their labels.
    svg += &format!(
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.1}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">epoch</text>\n\
         <text x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">mean training loss (MSE)</text>\n",
        top + ph,
        top + ph,
        left + pw,
        top + ph,
        left + pw / 2.0,
        h - 12.0,
        top + ph / 2.0,
        top + ph / 2.0
    );
    let points: Vec<String> = losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| format!("{:.1},{:.1}", x_of(i), y_of(l)))
        .collect();
    svg += &format!(
        "<polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\" points=\"{}\"/>\n</svg>\n",
        points.join(" ")
    );
    svg
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `x` (1 for `x <= 0`).
fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= x)
        .unwrap_or(10.0 * p)
}

/// A tick label without needless decimals.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The command line.
struct Args {
    epochs: usize,
    seed: u64,
    plot: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        epochs: 10,
        seed: DEFAULT_SEED,
        plot: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--epochs" => {
                let v = value()?;
                args.epochs = v
                    .parse()
                    .map_err(|_| format!("--epochs takes a whole number, found `{v}`"))?;
            }
            "--seed" => {
                let v = value()?;
                args.seed = v
                    .parse()
                    .map_err(|_| format!("--seed takes a whole number, found `{v}`"))?;
            }
            "--plot" => args.plot = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("usage: boston [--epochs N] [--seed S] [--plot PATH.svg]");
            return if msg.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    println!(
        "Boston housing, 13 -> 10 -> 1, batch {BATCH} with replacement, SGD lr {LEARNING_RATE}, seed {}",
        args.seed
    );
    let losses = match train(args.epochs, args.seed, |i, loss| {
        println!("Epoch: {i}, Loss: {loss:.3}");
    }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = args.plot {
        let title = format!(
            "Boston housing (nn.py): mean batch loss per epoch, seed {}",
            args.seed
        );
        if let Err(e) = std::fs::write(&path, loss_svg(&losses, &title)) {
            eprintln!("error: cannot write `{path}`: {e}");
            return ExitCode::FAILURE;
        }
        println!("loss curve written to {path}");
    }
    ExitCode::SUCCESS
}
