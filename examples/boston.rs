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
    let mut net = Boston::zeroed();
    init::Init::Randn.apply(&mut net, &mut rng); // nn.py's np.random.randn weights
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

/// A loss curve as a standalone SVG, drawn with `plotters` (its SVG backend): the mean
/// training loss of each epoch over labelled axes.
pub fn loss_svg(losses: &[f64], title: &str) -> Result<String, String> {
    use plotters::prelude::*;
    let max = losses
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(0.0f64, f64::max);
    let y_max = nice_ceiling(max);
    let x_max = losses.len().max(2);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(1..x_max, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("mean training loss (MSE)")
            .x_labels(10)
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v}"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(|e| e.to_string())?;
        let points = losses
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i + 1, l));
        chart
            .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
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
        let written = loss_svg(&losses, &title)
            .and_then(|svg| std::fs::write(&path, svg).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write `{path}`: {e}");
            return ExitCode::FAILURE;
        }
        println!("loss curve written to {path}");
    }
    ExitCode::SUCCESS
}
