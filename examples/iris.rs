//! An iris classifier: 4 measurements (cm) -> 8 tanh units -> 3 species, softmax
//! cross-entropy and Adam, trained on 80% of Fisher's 150 flowers. Prints the held-out
//! accuracy and confusion matrix, then names the species of a new flower.
//!
//! ```text
//! cargo run --release --example iris                         # predicts 5.0 3.4 1.5 0.2
//! cargo run --release --example iris -- 6.3 2.9 5.6 1.8      # sepal length, sepal width,
//!                                                            # petal length, petal width (cm)
//! ```
//!
//! The typed API throughout: nodes are named by handles (`Iris::X`, `Iris::probs`), so a
//! typo is a compile error; `Iris::new()` draws the weights by `init::Init::Default` (fixed
//! seed), so a fresh network trains; the class names come from the data file's first line
//! (`150,4,setosa,versicolor,virginica`). The data (`data/iris.csv`, see `data/README.md`) is
//! scikit-learn's copy of UCI's.

use miniflow::data::{CsvOptions, Dataset, Header, Shuffled, Standardizer};
use miniflow::metrics::{self, ConfusionMatrix};
use miniflow::ndarray::arr2;
use miniflow::train::{self, Fit, Progress};
use miniflow::{Adam, Error, Network};
use std::ops::ControlFlow;

miniflow::network! {
    /// 4 measurements -> 8 tanh units -> 3 class scores.
    pub struct Iris {
        /// Sepal length, sepal width, petal length, petal width: standardized.
        input X: [batch, 4];
        /// Class indices 0, 1, 2 (as floats).
        input y: [batch];
        param W1: [4, 8];
        param b1: [8];
        param W2: [8, 3];
        param b2: [3];

        h = tanh(linear(X, W1, b1));
        /// Class scores; the prediction is the largest.
        output logits = linear(h, W2, b2);
        /// Class probabilities.
        output probs = softmax(logits);
        loss cost = softmax_cross_entropy(logits, y);
    }
}

/// The data file, found from the package root wherever the example is run.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv");

/// Epochs of training.
pub const EPOCHS: usize = 100;

/// The seed of the train/held-out split and of the batch order.
pub const SEED: u64 = 1;

/// The flower predicted when none is given: a short, narrow petal, clearly a setosa.
pub const NEW_FLOWER: [f64; 4] = [5.0, 3.4, 1.5, 0.2];

/// A trained classifier and what it measured.
pub struct Trained {
    /// The network.
    pub net: Iris,
    /// The feature scaling it was trained with, for new flowers.
    pub scaler: Standardizer<f64>,
    /// The species, by class index.
    pub species: Vec<String>,
    /// The mean training loss of each epoch.
    pub losses: Vec<f64>,
    /// The fraction of held-out flowers classified right.
    pub accuracy: f64,
    /// Held-out counts, rows the true species, columns the predicted one.
    pub confusion: ConfusionMatrix,
}

/// Trains for `epochs` epochs on 80% of the flowers (split and batches fixed by `seed`) and
/// evaluates on the other 20%.
pub fn train(epochs: usize, seed: u64) -> miniflow::Result<Trained> {
    let data = Dataset::<f64>::read_csv(DATA, &CsvOptions::new(Header::Counts))?;
    let species = data.class_names().to_vec();
    let (mut train_set, mut test_set) = data.split(0.2, seed)?;
    let scaler = train_set.standardize();
    scaler.transform(&mut test_set.features_mut())?;

    let mut net = Iris::new();
    let mut adam = Adam::new(1e-2);
    let mut batches = Shuffled::new(train_set.len(), 16, seed)?;
    let history = Fit::new(epochs).progress(Progress::Never).run(
        &mut net,
        &train_set,
        &mut batches,
        train::optimizer_step(&mut adam),
        |_| ControlFlow::Continue(()),
    )?;

    net.feed(Iris::X, test_set.features())?;
    let predicted = metrics::argmax(&net.evaluate(Iris::logits)?)?;
    let accuracy = metrics::accuracy(&predicted, test_set.targets())?;
    let confusion = ConfusionMatrix::new(&predicted, test_set.targets(), species.len())?
        .with_class_names(&species)?;
    Ok(Trained {
        net,
        scaler,
        species,
        losses: history.losses,
        accuracy,
        confusion,
    })
}

/// The species of each flower (measurements in cm) with the network's probability for it.
pub fn predict(t: &mut Trained, flowers: &[[f64; 4]]) -> miniflow::Result<Vec<(String, f64)>> {
    let mut x = arr2(flowers);
    t.scaler.transform(&mut x)?;
    t.net.feed(Iris::X, &x)?;
    let probs = t.net.evaluate(Iris::probs)?;
    let class = metrics::argmax(&probs)?;
    let names = metrics::class_names(&class, &t.species)?;
    Ok(names
        .into_iter()
        .zip(class.iter().zip(probs.rows()))
        .map(|(name, (&k, p))| (name.to_string(), p[k]))
        .collect())
}

/// The flower given on the command line (4 numbers), or [`NEW_FLOWER`].
fn flower_from_args() -> miniflow::Result<[f64; 4]> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return Ok(NEW_FLOWER);
    }
    let bad = |what: String| {
        Error::InvalidArgument {
        function: "iris",
        what: format!(
            "{what}; give 4 measurements in cm: sepal length, sepal width, petal length, petal width"
        ),
    }
    };
    let numbers = args
        .iter()
        .map(|a| {
            a.parse::<f64>()
                .map_err(|_| bad(format!("`{a}` is not a number")))
        })
        .collect::<miniflow::Result<Vec<f64>>>()?;
    numbers
        .try_into()
        .map_err(|v: Vec<f64>| bad(format!("{} number(s) given", v.len())))
}

fn main() -> miniflow::Result<()> {
    let flower = flower_from_args()?;
    let mut trained = train(EPOCHS, SEED)?;
    for (i, loss) in trained.losses.iter().enumerate() {
        if i == 0 || (i + 1) % 20 == 0 {
            println!("Epoch: {}, Loss: {loss:.4}", i + 1);
        }
    }
    println!(
        "\nheld-out accuracy: {:.1}% of {} flowers\n\n{}",
        100.0 * trained.accuracy,
        trained.confusion.total(),
        trained.confusion
    );
    for (species, p) in predict(&mut trained, &[flower])? {
        println!("\n{flower:?} cm: {species} (p = {p:.3})");
    }
    Ok(())
}
