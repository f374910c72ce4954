//! A handwritten-digit classifier: the 8x8 digits (1797 images, 10 classes), a
//! 64 -> 32 -> 10 network with a tanh hidden layer, softmax cross-entropy and Adam.
//!
//! Trains on 80% of the images (a seeded split), then prints the held-out accuracy and the
//! confusion matrix.
//!
//! ```text
//! cargo run --release --example digits -- [--epochs N] [--seed S]
//! ```
//!
//! The data (`data/digits.csv.gz`, see `data/README.md`) is UCI's Optical Recognition of
//! Handwritten Digits test set, as shipped with scikit-learn.

use miniflow::data::{CsvOptions, Dataset, Header, Shuffled};
use miniflow::ndarray::{Array2, Axis};
use miniflow::train::{self, Fit, Progress};
use miniflow::{init, Adam, Network, Rng};
use std::ops::ControlFlow;
use std::process::ExitCode;

miniflow::network! {
    /// 64 pixels -> 32 tanh units -> 10 class scores.
    pub struct Digits {
        input X: [batch, 64];
        /// Class indices 0..9, as floats.
        input y: [batch];
        param W1: [64, 32];
        param b1: [32];
        param W2: [32, 10];
        param b2: [10];

        l1 = linear(X, W1, b1);
        h1 = tanh(l1);
        /// Class scores; the prediction is the largest.
        output logits = linear(h1, W2, b2);
        /// Class probabilities, for inference.
        output probs = softmax(logits);
        loss cost = softmax_cross_entropy(logits, y);
    }
}

/// The data file, found from the package root wherever the example is run.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");

/// The seed used when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 7;

/// Epochs when `--epochs` is not given.
pub const DEFAULT_EPOCHS: usize = 30;

const CLASSES: usize = 10;
const BATCH: usize = 32;
const LEARNING_RATE: f64 = 1e-2;

/// What a run measured.
pub struct Report {
    /// The mean training loss of each epoch.
    pub losses: Vec<f64>,
    /// The fraction of held-out images classified correctly.
    pub accuracy: f64,
    /// `confusion[[true, predicted]]` counts over the held-out images.
    pub confusion: Array2<usize>,
}

/// Trains for `epochs` epochs from `seed` (which fixes the split, the initial weights and
/// the batches) and evaluates on the held-out 20%.
pub fn run(epochs: usize, seed: u64) -> miniflow::Result<Report> {
    let mut data = Dataset::<f64>::read_csv(DATA, &CsvOptions::new(Header::None))?;
    // Pixels are 0..16; scale to [0, 1].
    data.features_mut().mapv_inplace(|p| p / 16.0);
    let (train_set, test_set) = data.split(0.2, seed)?;

    let mut rng = Rng::new(seed);
    let mut net = Digits::new();
    init::Init::XavierUniform.apply(&mut net, &mut rng);
    let mut adam = Adam::new(LEARNING_RATE);
    let mut sampler = Shuffled::new(train_set.len(), BATCH, rng.next_u64())?;
    let history = Fit::new(epochs).progress(Progress::Auto).run(
        &mut net,
        &train_set,
        &mut sampler,
        train::optimizer_step(&mut adam),
        |_| ControlFlow::Continue(()),
    )?;

    net.feed("X", test_set.features())?;
    let logits = net.evaluate("logits")?;
    let mut confusion = Array2::<usize>::zeros((CLASSES, CLASSES));
    let mut correct = 0;
    for (row, &label) in logits.axis_iter(Axis(0)).zip(test_set.targets().iter()) {
        let predicted = row
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (k, &v)| {
                if v > best.1 {
                    (k, v)
                } else {
                    best
                }
            })
            .0;
        let truth = label as usize;
        if let Some(cell) = confusion.get_mut([truth, predicted]) {
            *cell += 1;
        }
        correct += usize::from(truth == predicted);
    }
    Ok(Report {
        losses: history.losses,
        accuracy: correct as f64 / test_set.len() as f64,
        confusion,
    })
}

fn main() -> ExitCode {
    let (mut epochs, mut seed) = (DEFAULT_EPOCHS, DEFAULT_SEED);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--epochs", Some(v)) => epochs = v as usize,
            ("--seed", Some(v)) => seed = v,
            _ => {
                eprintln!("usage: digits [--epochs N] [--seed S]");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(epochs, seed) {
        Ok(report) => {
            for (i, loss) in report.losses.iter().enumerate() {
                println!("Epoch: {}, Loss: {loss:.4}", i + 1);
            }
            println!(
                "\nheld-out accuracy: {:.2}% (seed {seed})",
                100.0 * report.accuracy
            );
            println!("\nconfusion matrix (rows: true digit, columns: predicted)");
            print!("     ");
            for k in 0..CLASSES {
                print!("{k:>4}");
            }
            println!();
            for (t, row) in report.confusion.axis_iter(Axis(0)).enumerate() {
                print!("  {t:>2} ");
                for &n in row {
                    print!("{n:>4}");
                }
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
