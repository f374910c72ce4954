//! A handwritten-digit classifier: the 8x8 digits (1797 images, 10 classes), a
//! 64 -> 32 -> 10 network with a tanh hidden layer, softmax cross-entropy and Adam.
//!
//! Trains on 80% of the images (a seeded split), then prints the held-out accuracy and the
//! confusion matrix.
//!
//! ```text
//! cargo run --release --example digits -- [--epochs N] [--seed S] [--save model.safetensors]
//! cargo run --release --example digits -- --predict model.safetensors
//! ```
//!
//! `--save` writes the trained params and the feature scaler (and the seed of the split) to
//! one safetensors checkpoint and prints the held-out predictions; `--predict` loads them in a
//! fresh process, scales the same held-out images with the saved scaler and prints the same
//! predictions (`tests/suite/digits_predict.rs` checks this across two processes).
//!
//! The data (`data/digits.csv.gz`, see `data/README.md`) is UCI's Optical Recognition of
//! Handwritten Digits test set, as shipped with scikit-learn.

use miniflow::data::{CsvOptions, Dataset, Header, Shuffled, Standardizer};
use miniflow::metrics::{self, ConfusionMatrix};
use miniflow::ndarray::{Array1, ArrayView2};
use miniflow::persist::Checkpoint;
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
    /// Counts of (true digit, predicted digit) over the held-out images.
    pub confusion: ConfusionMatrix,
}

/// The feature scaling: pixels are 0..16, scaled to [0, 1] (a [`Standardizer`] of mean 0
/// and divisor 16, so that it is saved with the model like any fitted scaler).
pub fn pixel_scaler() -> Standardizer<f64> {
    Standardizer {
        mean: Array1::zeros(64),
        std: Array1::from_elem(64, 16.0),
    }
}

/// The images and labels, unscaled, split into (train, held out) by `seed`.
pub fn split(seed: u64) -> miniflow::Result<(Dataset<f64>, Dataset<f64>)> {
    let data = Dataset::<f64>::read_csv(DATA, &CsvOptions::new(Header::None))?;
    data.split(0.2, seed)
}

/// A trained network with what inference needs besides it.
pub struct Trained {
    /// The network.
    pub net: Digits,
    /// The feature scaling it was trained with.
    pub scaler: Standardizer<f64>,
    /// The seed of the train/held-out split.
    pub seed: u64,
    /// What the run measured.
    pub report: Report,
}

/// Trains for `epochs` epochs from `seed` (which fixes the split, the initial weights and
/// the batches) and evaluates on the held-out 20%.
pub fn train(epochs: usize, seed: u64) -> miniflow::Result<Trained> {
    let (mut train_set, mut test_set) = split(seed)?;
    let scaler = pixel_scaler();
    scaler.transform(&mut train_set.features_mut())?;
    scaler.transform(&mut test_set.features_mut())?;

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

    let predicted = predict(&mut net, test_set.features().view())?;
    let report = Report {
        losses: history.losses,
        accuracy: metrics::accuracy(&predicted, test_set.targets())?,
        confusion: ConfusionMatrix::new(&predicted, test_set.targets(), CLASSES)?,
    };
    Ok(Trained {
        net,
        scaler,
        seed,
        report,
    })
}

/// [`train`]'s report.
pub fn run(epochs: usize, seed: u64) -> miniflow::Result<Report> {
    Ok(train(epochs, seed)?.report)
}

/// The predicted class of each row of `x` (scaled features): the largest logit.
pub fn predict(net: &mut Digits, x: ArrayView2<'_, f64>) -> miniflow::Result<Vec<usize>> {
    net.feed(Digits::X, &x)?;
    Ok(metrics::argmax(&net.evaluate(Digits::logits)?)?.to_vec())
}

/// Saves the params, the scaler and the split's seed to one checkpoint file (atomically).
pub fn save(t: &Trained, path: &str) -> miniflow::Result<()> {
    let mut ck = Checkpoint::new();
    ck.put_params("model", &t.net)?
        .put("scaler", &t.scaler)
        .put_u64("seed", t.seed);
    ck.save(path)
}

/// Loads a file written by [`save`] into a fresh network and scaler, and predicts the
/// held-out images of its split.
pub fn predict_saved(path: &str) -> miniflow::Result<Vec<usize>> {
    let ck = Checkpoint::load(path)?;
    let mut net = Digits::new();
    ck.load_params("model", &mut net)?;
    let mut scaler = Standardizer::default();
    ck.restore("scaler", &mut scaler)?;
    let (_, mut test_set) = split(ck.u64("seed")?)?;
    scaler.transform(&mut test_set.features_mut())?;
    predict(&mut net, test_set.features().view())
}

/// One line: `predictions: 6 9 3 ...`.
pub fn predictions_line(p: &[usize]) -> String {
    let digits: Vec<String> = p.iter().map(|d| d.to_string()).collect();
    format!("predictions: {}", digits.join(" "))
}

fn main() -> ExitCode {
    let (mut epochs, mut seed) = (DEFAULT_EPOCHS, DEFAULT_SEED);
    let (mut save_to, mut predict_from) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        let number = value.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), number, value) {
            ("--epochs", Some(v), _) => epochs = v as usize,
            ("--seed", Some(v), _) => seed = v,
            ("--save", _, Some(path)) => save_to = Some(path),
            ("--predict", _, Some(path)) => predict_from = Some(path),
            _ => {
                eprintln!("usage: digits [--epochs N] [--seed S] [--save PATH] | --predict PATH");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = predict_from {
        return match predict_saved(&path) {
            Ok(p) => {
                println!("{}", predictions_line(&p));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let trained = match train(epochs, seed) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = &trained.report;
    for (i, loss) in report.losses.iter().enumerate() {
        println!("Epoch: {}, Loss: {loss:.4}", i + 1);
    }
    println!(
        "\nheld-out accuracy: {:.2}% (seed {seed})",
        100.0 * report.accuracy
    );
    println!("\n{}", report.confusion);
    if let Some(path) = save_to {
        let mut trained = trained;
        let saved = save(&trained, &path).and_then(|()| {
            let (_, mut test_set) = split(trained.seed)?;
            trained.scaler.transform(&mut test_set.features_mut())?;
            predict(&mut trained.net, test_set.features().view())
        });
        match saved {
            Ok(p) => {
                println!("\nmodel and scaler saved to {path}");
                println!("{}", predictions_line(&p));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
