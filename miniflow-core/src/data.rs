//! Data sets: reading CSV (plain, with a header, or scikit-learn's layout; gzipped or not),
//! z-scoring, train/test splits, mini-batch samplers, and batch extraction into preallocated
//! buffers so that a training loop allocates nothing.
//!
//! ```no_run
//! use miniflow_core::data::{Dataset, Sampler, WithReplacement};
//!
//! // The course's nn.py: Boston housing, features z-scored with the population std.
//! let mut data = Dataset::<f64>::read_boston("data/boston_house_prices.csv")?;
//! let scaling = data.standardize(); // keep it to transform a test set the same way
//!
//! // Batches of 11 rows drawn with replacement, 506 / 11 = 46 per epoch.
//! let mut sampler = WithReplacement::new(data.len(), 11, 42)?;
//! let mut batch = data.batch(11);
//! sampler.start_epoch();
//! while let Some(rows) = sampler.next_batch() {
//!     data.gather(rows, &mut batch)?; // no allocation
//!     // net.feed("X", &batch.x())?; net.feed("y", &batch.y())?; ...
//! }
//! # let _ = scaling;
//! # Ok::<(), miniflow_core::Error>(())
//! ```
//!
//! # File layouts ([`Header`])
//!
//! - [`Header::None`]: every line is a row of numbers.
//! - [`Header::Names`]: the first line holds the column names.
//! - [`Header::Counts`]: scikit-learn's layout (`boston_house_prices.csv`, `iris.csv`): the
//!   first line starts with the sample and feature counts (`506,13,,,...`), optionally followed
//!   by a line of column names; the counts are checked against the rows read.
//! - [`Header::Auto`]: names if any field of the first line is not a number, else data.
//!
//! Fields are separated by [`CsvOptions::delimiter`] and trimmed; one pair of surrounding
//! double quotes is removed (quoted fields cannot contain the delimiter). Lines may end in
//! `\n` or `\r\n`; blank lines are skipped. Every number must be finite. A file whose name
//! ends in `.gz`, or which starts with the gzip magic bytes, is decompressed first.
//!
//! Errors name the file, the 1-based line and, when one field is at fault, the 1-based column
//! ([`Error::Parse`]); nothing a file contains makes the reader panic.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::Scalar;
use ndarray::{
    s, Array, Array1, Array2, ArrayBase, ArrayView, ArrayView2, Axis, DataMut, Dimension, Ix1, Ix2,
    RemoveAxis, Slice,
};
use std::io::Read;
use std::path::Path;

/// What the first line(s) of a CSV file hold. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Header {
    /// No header: every line is data.
    None,
    /// The first line holds column names.
    Names,
    /// scikit-learn's layout: a line of counts (`n_samples,n_features,...`), then optionally a
    /// line of names. The rows must number `n_samples`, and the columns `n_features + 1` (the
    /// target last).
    Counts,
    /// A line of names if any of its fields is not a number, else no header.
    #[default]
    Auto,
}

/// How to read a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// What the first line(s) hold.
    pub header: Header,
    /// The field separator (default `,`).
    pub delimiter: char,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: Header::Auto,
            delimiter: ',',
        }
    }
}

impl CsvOptions {
    /// Options for the given header layout and a `,` delimiter.
    pub fn new(header: Header) -> Self {
        CsvOptions {
            header,
            ..CsvOptions::default()
        }
    }
}

/// A CSV file read into memory: a matrix of numbers and the column names, if the file had
/// them (else `column0`, `column1`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Table<T = f64> {
    /// The column names.
    pub names: Vec<String>,
    /// One row per data line, one column per field.
    pub data: Array2<T>,
}

impl<T: Scalar> Table<T> {
    /// Splits the table into features (all columns but the last) and a target (the last).
    pub fn into_dataset(self) -> Result<Dataset<T>> {
        let d = self.into_dataset_with_targets(1)?;
        let targets = d.targets.index_axis_move(Axis(1), 0);
        Ok(Dataset {
            features: d.features,
            targets,
            feature_names: d.feature_names,
            target_names: d.target_names,
        })
    }

    /// Splits the table into features and `n_targets` target columns (the last ones).
    pub fn into_dataset_with_targets(self, n_targets: usize) -> Result<Dataset<T, Ix2>> {
        let cols = self.data.ncols();
        if n_targets == 0 || n_targets > cols {
            return Err(Error::InvalidArgument {
                function: "Table::into_dataset_with_targets",
                what: format!(
                    "cannot take {n_targets} target column(s) from a table of {cols} column(s)"
                ),
            });
        }
        let split = cols - n_targets;
        let features = self.data.slice(s![.., ..split]).to_owned();
        let targets = self.data.slice(s![.., split..]).to_owned();
        let mut feature_names = self.names;
        let target_names = feature_names.split_off(split.min(feature_names.len()));
        Ok(Dataset {
            features,
            targets,
            feature_names,
            target_names,
        })
    }
}

/// Reads a CSV file into a [`Table`] (gzipped if its name ends in `.gz` or it starts with the
/// gzip magic bytes).
pub fn read_csv<T: Scalar>(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Table<T>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    parse_csv(&text, &path.display().to_string(), options)
}

/// Reads a whole file as UTF-8 text, decompressing gzip.
fn read_text(path: &Path) -> Result<String> {
    let file = path.display().to_string();
    let io_err = |e: std::io::Error| Error::Io {
        file: file.clone(),
        kind: e.kind(),
        what: e.to_string(),
    };
    let raw = std::fs::read(path).map_err(io_err)?;
    let gz_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let bytes = if gz_name || raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::Gzip {
                file: file.clone(),
                what: e.to_string(),
            })?;
        out
    } else {
        raw
    };
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes.iter().take(at).filter(|&&b| b == b'\n').count();
        Error::Parse {
            file: file.clone(),
            line,
            column: None,
            what: format!("not valid UTF-8 text (byte {at})"),
        }
    })
}

/// Removes surrounding whitespace and one pair of surrounding double quotes.
fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|g| g.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

/// A field as a finite number, or why not.
fn number(field: &str) -> std::result::Result<f64, String> {
    let f = unquote(field);
    if f.is_empty() {
        return Err("empty field where a number was expected".to_string());
    }
    match f.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("`{f}` is not a finite number")),
        Err(_) => Err(format!("`{f}` is not a number")),
    }
}

/// Parses CSV `text` (the contents of a file called `file`, for messages) into a [`Table`].
pub fn parse_csv<T: Scalar>(text: &str, file: &str, options: &CsvOptions) -> Result<Table<T>> {
    let parse_err = |line: usize, column: Option<usize>, what: String| Error::Parse {
        file: file.to_string(),
        line,
        column,
        what,
    };
    let delim = options.delimiter;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let Some(&(first_no, first)) = lines.peek() else {
        return Err(parse_err(1, None, "the file is empty".to_string()));
    };

    let all_numbers = |line: &str| line.split(delim).all(|f| number(f).is_ok());
    let mut names: Option<(usize, Vec<String>)> = None;
    let mut counts: Option<(usize, usize, usize)> = None;
    match options.header {
        Header::None => {}
        Header::Names => {
            lines.next();
            names = Some((first_no, split_names(first, delim)));
        }
        Header::Auto => {
            if !all_numbers(first) {
                lines.next();
                names = Some((first_no, split_names(first, delim)));
            }
        }
        Header::Counts => {
            lines.next();
            let mut fields = first.split(delim);
            let mut count = |k: usize, what: &str| {
                let f = fields.next().map(unquote).unwrap_or("");
                f.parse::<usize>().map_err(|_| {
                    parse_err(
                        first_no,
                        Some(k),
                        format!("expected the number of {what} (a count line such as `506,13`), found `{f}`"),
                    )
                })
            };
            let n_samples = count(1, "samples")?;
            let n_features = count(2, "features")?;
            counts = Some((first_no, n_samples, n_features));
            if let Some(&(no, line)) = lines.peek() {
                if !all_numbers(line) {
                    lines.next();
                    names = Some((no, split_names(line, delim)));
                }
            }
        }
    }

    let mut values: Vec<T> = Vec::new();
    let mut width: Option<(usize, usize)> = None; // (fields per row, line that set it)
    let mut rows = 0usize;
    let mut last_line = first_no;
    for (no, line) in lines {
        last_line = no;
        let start = values.len();
        for (k, field) in line.split(delim).enumerate() {
            let x = number(field).map_err(|what| parse_err(no, Some(k + 1), what))?;
            values.push(T::from_f64(x));
        }
        let found = values.len() - start;
        match width {
            None => width = Some((found, no)),
            Some((w, at)) if w != found => {
                return Err(parse_err(
                    no,
                    Some(w.min(found) + 1),
                    format!(
                        "ragged row: {found} field(s), but line {at} has {w}; every row needs the same number of fields"
                    ),
                ));
            }
            Some(_) => {}
        }
        rows += 1;
    }
    let Some((cols, _)) = width else {
        return Err(parse_err(
            last_line,
            None,
            "no data rows after the header".to_string(),
        ));
    };

    if let Some((no, n)) = &names {
        if n.len() != cols {
            return Err(parse_err(
                *no,
                None,
                format!(
                    "the header names {} column(s), but the rows have {cols}",
                    n.len()
                ),
            ));
        }
    }
    if let Some((no, n_samples, n_features)) = counts {
        if n_samples != rows {
            return Err(parse_err(
                last_line,
                None,
                format!("line {no} announces {n_samples} row(s), but the file has {rows}"),
            ));
        }
        if n_features + 1 != cols {
            return Err(parse_err(
                no,
                Some(2),
                format!(
                    "line {no} announces {n_features} feature(s), so {} column(s) with the target, but the rows have {cols}",
                    n_features + 1
                ),
            ));
        }
    }

    let data = Array2::from_shape_vec((rows, cols), values)
        .map_err(|e| parse_err(last_line, None, format!("internal shape error: {e}")))?;
    let names = match names {
        Some((_, n)) => n,
        None => (0..cols).map(|k| format!("column{k}")).collect(),
    };
    Ok(Table { names, data })
}

fn split_names(line: &str, delim: char) -> Vec<String> {
    line.split(delim).map(|f| unquote(f).to_string()).collect()
}

/// Rows of features with their targets: `targets` is an `Array1` (one target per row, the
/// default) or an `Array2` (several).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T = f64, D: Dimension = Ix1> {
    /// One row per sample.
    pub features: Array2<T>,
    /// The targets; axis 0 runs over the samples.
    pub targets: Array<T, D>,
    /// A name per feature column.
    pub feature_names: Vec<String>,
    /// A name per target column.
    pub target_names: Vec<String>,
}

impl<T: Scalar> Dataset<T, Ix1> {
    /// Reads a CSV file whose last column is the target. See the [module docs](self) for the
    /// layouts and [`CsvOptions`].
    pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        read_csv(path, options)?.into_dataset()
    }

    /// Reads scikit-learn's `boston_house_prices.csv` layout (a count line, a line of
    /// names, then rows of 13 features and the MEDV target), the course's data set.
    pub fn read_boston(path: impl AsRef<Path>) -> Result<Self> {
        Self::read_csv(path, &CsvOptions::new(Header::Counts))
    }
}

impl<T: Scalar, D: RemoveAxis> Dataset<T, D> {
    /// A dataset from features and targets with as many rows; names are `x0, x1, ...` and
    /// `y0, ...`.
    pub fn new(features: Array2<T>, targets: Array<T, D>) -> Result<Self> {
        if targets.ndim() == 0 || targets.len_of(Axis(0)) != features.nrows() {
            return Err(Error::InvalidArgument {
                function: "Dataset::new",
                what: format!(
                    "{} feature row(s) but targets of shape {:?}",
                    features.nrows(),
                    targets.shape()
                ),
            });
        }
        let n_targets = targets.shape().iter().skip(1).product();
        Ok(Dataset {
            feature_names: (0..features.ncols()).map(|k| format!("x{k}")).collect(),
            target_names: (0..n_targets).map(|k| format!("y{k}")).collect(),
            features,
            targets,
        })
    }

    /// The number of samples (rows).
    pub fn len(&self) -> usize {
        self.features.nrows()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of feature columns.
    pub fn n_features(&self) -> usize {
        self.features.ncols()
    }

    /// Z-scores every feature column in place with its mean and population standard deviation
    /// (ddof 0, as `np.std`), and returns them so a test set can be scaled the same way. A
    /// constant column (std 0) is centred and divided by 1, so it becomes all zeros rather
    /// than NaN; see [`Standardizer`]. The targets are left alone.
    pub fn standardize(&mut self) -> Standardizer<T> {
        let s = Standardizer::fit(self.features.view());
        s.apply(&mut self.features);
        s
    }

    /// The samples at `rows` (in that order, repeats allowed), as a new dataset.
    pub fn select(&self, rows: &[usize]) -> Result<Self> {
        self.check_rows("Dataset::select", rows)?;
        Ok(Dataset {
            features: self.features.select(Axis(0), rows),
            targets: self.targets.select(Axis(0), rows),
            feature_names: self.feature_names.clone(),
            target_names: self.target_names.clone(),
        })
    }

    /// Splits the samples at random into `(train, test)`, with `round(test_fraction · len)`
    /// samples in `test`; the seed fixes the split. `test_fraction` must be in `[0, 1]`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(0.0..=1.0).contains(&test_fraction) {
            return Err(Error::InvalidArgument {
                function: "Dataset::split",
                what: format!("test_fraction must be in [0, 1], found {test_fraction}"),
            });
        }
        let n = self.len();
        let n_test = ((n as f64) * test_fraction).round() as usize;
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(seed).shuffle(&mut order);
        let (test, train) = order.split_at(n_test.min(n));
        Ok((self.select(train)?, self.select(test)?))
    }

    /// Buffers for batches of up to `capacity` rows, to fill with [`gather`](Dataset::gather).
    pub fn batch(&self, capacity: usize) -> Batch<T, D> {
        let mut ydim = self.targets.raw_dim();
        ydim[0] = capacity;
        Batch {
            x: Array2::zeros((capacity, self.n_features())),
            y: Array::zeros(ydim),
            len: 0,
        }
    }

    /// Copies the samples at `rows` into `batch` (its first `rows.len()` rows). Allocates only
    /// if `rows` is longer than the batch's capacity, which then grows to fit.
    pub fn gather(&self, rows: &[usize], batch: &mut Batch<T, D>) -> Result<()> {
        if rows.len() > batch.capacity() || batch.x.ncols() != self.n_features() {
            *batch = self.batch(rows.len().max(batch.capacity()));
        }
        let k = rows.len();
        let mut x = batch.x.slice_mut(s![..k, ..]);
        let mut y = batch.y.slice_axis_mut(Axis(0), Slice::from(..k));
        self.gather_into(rows, &mut x, &mut y)?;
        batch.len = k;
        Ok(())
    }

    /// Copies the samples at `rows` into `x` (`[rows.len(), n_features]`) and `y` (the
    /// targets' shape with `rows.len()` rows), which must have exactly those shapes. Never
    /// allocates.
    pub fn gather_into<S1, S2>(
        &self,
        rows: &[usize],
        x: &mut ArrayBase<S1, Ix2>,
        y: &mut ArrayBase<S2, D>,
    ) -> Result<()>
    where
        S1: DataMut<Elem = T>,
        S2: DataMut<Elem = T>,
    {
        self.check_rows("Dataset::gather_into", rows)?;
        let x_ok = x.nrows() == rows.len() && x.ncols() == self.n_features();
        let y_ok = y.ndim() == self.targets.ndim()
            && y.len_of(Axis(0)) == rows.len()
            && y.shape().get(1..) == self.targets.shape().get(1..);
        if !x_ok || !y_ok {
            let mut y_want = self.targets.shape().to_vec();
            if let Some(n) = y_want.first_mut() {
                *n = rows.len();
            }
            return Err(Error::InvalidArgument {
                function: "Dataset::gather_into",
                what: format!(
                    "for {} row(s) the buffers must be x {:?} and y {:?}, found x {:?} and y {:?}",
                    rows.len(),
                    [rows.len(), self.n_features()],
                    y_want,
                    x.shape(),
                    y.shape()
                ),
            });
        }
        for (i, &r) in rows.iter().enumerate() {
            x.row_mut(i).assign(&self.features.row(r));
            y.index_axis_mut(Axis(0), i)
                .assign(&self.targets.index_axis(Axis(0), r));
        }
        Ok(())
    }

    fn check_rows(&self, function: &'static str, rows: &[usize]) -> Result<()> {
        match rows.iter().find(|&&r| r >= self.len()) {
            Some(r) => Err(Error::InvalidArgument {
                function,
                what: format!("row {r} is out of range for {} sample(s)", self.len()),
            }),
            None => Ok(()),
        }
    }
}

/// The mean and the divisor used for each column by [`Dataset::standardize`]: `x' = (x -
/// mean) / std`. `std` is the population standard deviation (ddof 0), except that a column
/// whose std is 0 (constant) or not finite gets 1, so it maps to zeros instead of NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<T> {
    /// Each column's mean.
    pub mean: Array1<T>,
    /// Each column's divisor (its population std, or 1 for a constant column).
    pub std: Array1<T>,
}

impl<T: Scalar> Standardizer<T> {
    /// Computes each column's mean and population std (two passes, for accuracy). For no
    /// rows, the mean is 0 and the divisor 1.
    pub fn fit(x: ArrayView2<'_, T>) -> Self {
        let n = x.nrows();
        let nt = T::from_f64(n as f64);
        let mut mean = Array1::zeros(x.ncols());
        let mut std = Array1::from_elem(x.ncols(), T::one());
        if n == 0 {
            return Standardizer { mean, std };
        }
        for (j, col) in x.axis_iter(Axis(1)).enumerate() {
            let m = col.iter().fold(T::zero(), |a, &v| a + v) / nt;
            let var = col.iter().fold(T::zero(), |a, &v| a + (v - m) * (v - m)) / nt;
            let sd = var.sqrt();
            mean[j] = m;
            std[j] = if sd > T::zero() && sd.is_finite() {
                sd
            } else {
                T::one()
            };
        }
        Standardizer { mean, std }
    }

    /// Scales `x` in place with these means and divisors (e.g. a test set with the training
    /// set's statistics). `x` must have as many columns as the data they were fitted on.
    pub fn transform<S: DataMut<Elem = T>>(&self, x: &mut ArrayBase<S, Ix2>) -> Result<()> {
        if x.ncols() != self.mean.len() {
            return Err(Error::InvalidArgument {
                function: "Standardizer::transform",
                what: format!(
                    "fitted on {} column(s), given {}",
                    self.mean.len(),
                    x.ncols()
                ),
            });
        }
        self.apply(x);
        Ok(())
    }

    /// The inverse: `x = x' · std + mean`, in place. Same column rule as `transform`.
    pub fn inverse_transform<S: DataMut<Elem = T>>(&self, x: &mut ArrayBase<S, Ix2>) -> Result<()> {
        if x.ncols() != self.mean.len() {
            return Err(Error::InvalidArgument {
                function: "Standardizer::inverse_transform",
                what: format!(
                    "fitted on {} column(s), given {}",
                    self.mean.len(),
                    x.ncols()
                ),
            });
        }
        for mut row in x.rows_mut() {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
        Ok(())
    }

    fn apply<S: DataMut<Elem = T>>(&self, x: &mut ArrayBase<S, Ix2>) {
        for mut row in x.rows_mut() {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

/// Preallocated buffers for one mini-batch, filled by [`Dataset::gather`]: `x()` and `y()`
/// are views of the first [`len`](Batch::len) rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T, D: Dimension = Ix1> {
    x: Array2<T>,
    y: Array<T, D>,
    len: usize,
}

impl<T: Scalar, D: RemoveAxis> Batch<T, D> {
    /// The features of the rows gathered last (`[len, n_features]`).
    pub fn x(&self) -> ArrayView2<'_, T> {
        self.x.slice(s![..self.len, ..])
    }

    /// The targets of the rows gathered last (`len` rows).
    pub fn y(&self) -> ArrayView<'_, T, D> {
        self.y.slice_axis(Axis(0), Slice::from(..self.len))
    }

    /// How many rows the last gather filled.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no rows have been gathered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many rows fit without reallocating.
    pub fn capacity(&self) -> usize {
        self.x.nrows()
    }
}

/// Yields the row indices of each mini-batch of an epoch. The slices are borrowed from the
/// sampler and reused, so sampling allocates nothing after construction.
///
/// ```
/// use miniflow_core::data::{Sampler, Shuffled};
///
/// let mut s = Shuffled::new(10, 4, 7)?.drop_last(true);
/// assert_eq!(s.batches_per_epoch(), 2);
/// s.start_epoch();
/// while let Some(rows) = s.next_batch() {
///     assert_eq!(rows.len(), 4);
/// }
/// # Ok::<(), miniflow_core::Error>(())
/// ```
pub trait Sampler {
    /// How many batches each epoch yields.
    fn batches_per_epoch(&self) -> usize;

    /// Starts an epoch (reshuffling, if the sampler shuffles).
    fn start_epoch(&mut self);

    /// The next batch of this epoch, or `None` when the epoch is over.
    fn next_batch(&mut self) -> Option<&[usize]>;
}

fn check_batch(function: &'static str, n: usize, batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::InvalidArgument {
            function,
            what: "the batch size must be at least 1".to_string(),
        });
    }
    if n == 0 {
        return Err(Error::InvalidArgument {
            function,
            what: "there are no samples to draw batches from".to_string(),
        });
    }
    Ok(())
}

/// Each epoch visits every sample once, in a new random order (or in order, for
/// [`Shuffled::sequential`]), in batches of `batch_size`. The last, partial batch is kept
/// unless [`drop_last`](Shuffled::drop_last) is set.
#[derive(Clone, Debug)]
pub struct Shuffled {
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    shuffle: bool,
    pos: usize,
    rng: Rng,
}

impl Shuffled {
    /// Batches of `batch_size` over `n` samples, reshuffled each epoch from `seed`.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Result<Self> {
        check_batch("Shuffled::new", n, batch_size)?;
        Ok(Shuffled {
            order: (0..n).collect(),
            batch_size,
            drop_last: false,
            shuffle: true,
            pos: n,
            rng: Rng::new(seed),
        })
    }

    /// Batches of `batch_size` over `n` samples, in order, the same every epoch (for
    /// evaluation).
    pub fn sequential(n: usize, batch_size: usize) -> Result<Self> {
        check_batch("Shuffled::sequential", n, batch_size)?;
        Ok(Shuffled {
            shuffle: false,
            ..Shuffled::new(n, batch_size, 0)?
        })
    }

    /// Whether to drop the last batch of an epoch when it is smaller than `batch_size`
    /// (keeping every batch the same size lets a network keep its buffers).
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }
}

impl Sampler for Shuffled {
    fn batches_per_epoch(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    fn start_epoch(&mut self) {
        if self.shuffle {
            self.rng.shuffle(&mut self.order);
        }
        self.pos = 0;
    }

    fn next_batch(&mut self) -> Option<&[usize]> {
        let start = self.pos;
        let end = start.saturating_add(self.batch_size).min(self.order.len());
        if start >= end || (self.drop_last && end - start < self.batch_size) {
            return None;
        }
        self.pos = end;
        self.order.get(start..end)
    }
}

/// The course's sampler: each batch is `batch_size` rows drawn uniformly **with
/// replacement** (sklearn's `resample`), and an epoch is `n / batch_size` batches (integer
/// division: 506 / 11 = 46), so an epoch need not visit every sample.
#[derive(Clone, Debug)]
pub struct WithReplacement {
    n: usize,
    steps: usize,
    step: usize,
    buf: Vec<usize>,
    rng: Rng,
}

impl WithReplacement {
    /// Batches of `batch_size` drawn from `n` samples, `n / batch_size` per epoch, from
    /// `seed`. Fails if that is 0 batches.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Result<Self> {
        check_batch("WithReplacement::new", n, batch_size)?;
        if n < batch_size {
            return Err(Error::InvalidArgument {
                function: "WithReplacement::new",
                what: format!(
                    "{n} sample(s) / batch size {batch_size} gives 0 batches per epoch; use with_steps"
                ),
            });
        }
        Ok(WithReplacement {
            n,
            steps: n / batch_size,
            step: n / batch_size,
            buf: vec![0; batch_size],
            rng: Rng::new(seed),
        })
    }

    /// Sets the number of batches per epoch (at least 1).
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps.max(1);
        self.step = self.steps;
        self
    }
}

impl Sampler for WithReplacement {
    fn batches_per_epoch(&self) -> usize {
        self.steps
    }

    fn start_epoch(&mut self) {
        self.step = 0;
    }

    fn next_batch(&mut self) -> Option<&[usize]> {
        if self.step >= self.steps {
            return None;
        }
        self.step += 1;
        self.rng.indices_with_replacement(self.n, &mut self.buf);
        Some(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use std::io::Write;

    fn parse(text: &str, header: Header) -> Result<Table<f64>> {
        parse_csv(text, "t.csv", &CsvOptions::new(header))
    }

    fn parse_error(text: &str, header: Header) -> (usize, Option<usize>, String) {
        match parse(text, header) {
            Err(Error::Parse {
                file,
                line,
                column,
                what,
            }) => {
                assert_eq!(file, "t.csv");
                (line, column, what)
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn plain_and_header_and_counts_layouts() {
        let t = parse("1,2,3\n4,5,6\n", Header::None).unwrap();
        assert_eq!(t.data, array![[1., 2., 3.], [4., 5., 6.]]);
        assert_eq!(t.names, ["column0", "column1", "column2"]);

        let t = parse("a, \"b\" ,c\r\n1,2,3\r\n\r\n4,5,6", Header::Auto).unwrap();
        assert_eq!(t.names, ["a", "b", "c"]);
        assert_eq!(t.data.nrows(), 2);
        let t = parse("1,2,3\n4,5,6\n", Header::Auto).unwrap();
        assert_eq!(t.data.nrows(), 2);

        let text = "2,2,,\n\"p\",\"q\",\"t\"\n1.5,-2e-1,3\n4,5,\"6\"\n";
        let t = parse(text, Header::Counts).unwrap();
        assert_eq!(t.names, ["p", "q", "t"]);
        assert_eq!(t.data, array![[1.5, -0.2, 3.], [4., 5., 6.]]);
        let d = t.into_dataset().unwrap();
        assert_eq!(d.features, array![[1.5, -0.2], [4., 5.]]);
        assert_eq!(d.targets, array![3., 6.]);
        assert_eq!(d.feature_names, ["p", "q"]);
        assert_eq!(d.target_names, ["t"]);

        // iris's layout: counts, then data straight away.
        let t = parse("2,1,setosa,versicolor\n1,0\n2,1\n", Header::Counts).unwrap();
        assert_eq!(t.data, array![[1., 0.], [2., 1.]]);

        let semi = CsvOptions {
            header: Header::None,
            delimiter: ';',
        };
        let t: Table<f32> = parse_csv("1;2\n3;4", "s", &semi).unwrap();
        assert_eq!(t.data, array![[1f32, 2.], [3., 4.]]);
    }

    #[test]
    fn bad_number_names_line_and_column() {
        let (line, col, what) = parse_error("1,2,3\n4,x5,6\n", Header::None);
        assert_eq!((line, col), (2, Some(2)));
        assert!(what.contains("`x5` is not a number"), "{what}");
        let (line, col, what) = parse_error("a,b\n1,\n", Header::Names);
        assert_eq!((line, col), (2, Some(2)));
        assert!(what.contains("empty field"), "{what}");
        let (_, _, what) = parse_error("1,nan\n", Header::None);
        assert!(what.contains("not a finite number"), "{what}");
        let e = parse("1,2\n3,inf\n", Header::None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv, line 2, column 2: `inf` is not a finite number"
        );
    }

    #[test]
    fn ragged_row_is_an_error() {
        let (line, col, what) = parse_error("1,2,3\n4,5,6\n7,8\n", Header::None);
        assert_eq!((line, col), (3, Some(3)));
        assert!(
            what.contains("ragged row: 2 field(s), but line 1 has 3"),
            "{what}"
        );
        let (line, _, what) = parse_error("a,b\n1,2,3\n", Header::Names);
        assert_eq!(line, 1);
        assert!(
            what.contains("names 2 column(s), but the rows have 3"),
            "{what}"
        );
    }

    #[test]
    fn empty_file_and_header_only_are_errors() {
        let (line, col, what) = parse_error("", Header::Auto);
        assert_eq!((line, col), (1, None));
        assert_eq!(what, "the file is empty");
        let (_, _, what) = parse_error("\n  \n", Header::None);
        assert_eq!(what, "the file is empty");
        let (_, _, what) = parse_error("a,b\n", Header::Names);
        assert_eq!(what, "no data rows after the header");
    }

    #[test]
    fn counts_are_checked() {
        let (line, col, what) = parse_error("x,2\n1,2,3\n", Header::Counts);
        assert_eq!((line, col), (1, Some(1)));
        assert!(what.contains("number of samples"), "{what}");
        let (line, _, what) = parse_error("3,2\n1,2,3\n1,2,3\n", Header::Counts);
        assert_eq!(line, 3);
        assert!(
            what.contains("announces 3 row(s), but the file has 2"),
            "{what}"
        );
        let (_, col, what) = parse_error("1,3\n1,2,3\n", Header::Counts);
        assert_eq!(col, Some(2));
        assert!(what.contains("announces 3 feature(s)"), "{what}");
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("miniflow-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn files_plain_gzip_missing_and_bad_gzip() {
        let plain = temp_path("plain.csv");
        std::fs::write(&plain, "a,b\n1,2\n3,4\n").unwrap();
        let d = Dataset::<f64>::read_csv(&plain, &CsvOptions::default()).unwrap();
        assert_eq!(d.features, array![[1.], [3.]]);
        assert_eq!(d.targets, array![2., 4.]);

        let gz = temp_path("plain.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"1,2\n3,4\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let t: Table<f64> = read_csv(&gz, &CsvOptions::new(Header::None)).unwrap();
        assert_eq!(t.data, array![[1., 2.], [3., 4.]]);

        let missing = temp_path("does-not-exist.csv");
        match read_csv::<f64>(&missing, &CsvOptions::default()) {
            Err(Error::Io { file, kind, .. }) => {
                assert_eq!(kind, std::io::ErrorKind::NotFound);
                assert!(file.ends_with("does-not-exist.csv"));
            }
            other => panic!("{other:?}"),
        }

        let bad = temp_path("bad.csv.gz");
        std::fs::write(&bad, "1,2\n3,4\n").unwrap();
        assert!(matches!(
            read_csv::<f64>(&bad, &CsvOptions::default()),
            Err(Error::Gzip { .. })
        ));
        // A truncated stream (valid header, missing end) is an error too.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[b'7'; 5000]).unwrap();
        let bytes = enc.finish().unwrap();
        let cut = temp_path("cut.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_csv::<f64>(&cut, &CsvOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Gzip { .. }), "{e:?}");

        let latin1 = temp_path("latin1.csv");
        std::fs::write(&latin1, b"1,2\n3,\xe9\n").unwrap();
        match read_csv::<f64>(&latin1, &CsvOptions::default()) {
            Err(Error::Parse { line, what, .. }) => {
                assert_eq!(line, 2);
                assert!(what.contains("UTF-8"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn standardize_uses_population_std_and_handles_constant_columns() {
        let mut d = Dataset::new(
            array![[1., 5., 2.], [3., 5., 4.], [5., 5., 9.]],
            array![0., 1., 2.],
        )
        .unwrap();
        let s = d.standardize();
        assert_eq!(s.mean, array![3., 5., 5.]);
        // Population std of [1, 3, 5] is sqrt(8/3); of [2, 4, 9] sqrt(26/3).
        assert!((s.std[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(s.std[1], 1.0, "a constant column divides by 1");
        assert!((s.std[2] - (26.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!(d.features.iter().all(|v| v.is_finite()));
        assert_eq!(d.features.column(1), array![0., 0., 0.]);
        for col in d.features.columns() {
            let m = col.sum() / 3.0;
            assert!(m.abs() < 1e-15);
        }
        let var0 = d.features.column(0).mapv(|v| v * v).sum() / 3.0;
        assert!((var0 - 1.0).abs() < 1e-14);
        assert_eq!(d.targets, array![0., 1., 2.], "targets untouched");

        // A test set is scaled with the training statistics, and back.
        let mut test = array![[3., 5., 5.], [3. + (8.0f64 / 3.0).sqrt(), 0., 5.]];
        s.transform(&mut test).unwrap();
        assert!((test[[1, 0]] - 1.0).abs() < 1e-15 && test[[0, 0]] == 0.0);
        assert_eq!(test[[1, 1]], -5.0);
        s.inverse_transform(&mut test).unwrap();
        assert!((test[[1, 0]] - (3. + (8.0f64 / 3.0).sqrt())).abs() < 1e-14);
        assert!(matches!(
            s.transform(&mut array![[1., 2.]]),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn split_is_seeded_and_complete() {
        let x = Array2::from_shape_fn((10, 2), |(i, j)| (i * 2 + j) as f64);
        let y = Array1::from_shape_fn(10, |i| i as f64);
        let d = Dataset::new(x, y).unwrap();
        let (train, test) = d.split(0.3, 5).unwrap();
        assert_eq!((train.len(), test.len()), (7, 3));
        let mut all: Vec<f64> = train.targets.iter().chain(&test.targets).copied().collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(all, (0..10).map(|i| i as f64).collect::<Vec<_>>());
        for (row, &t) in test.features.rows().into_iter().zip(&test.targets) {
            assert_eq!(row[0], 2.0 * t, "features stay with their target");
        }
        let (train2, _) = d.split(0.3, 5).unwrap();
        assert_eq!(train, train2);
        let (train3, _) = d.split(0.3, 6).unwrap();
        assert_ne!(train, train3);
        assert!(matches!(
            d.split(1.5, 0),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(d.split(f64::NAN, 0).is_err());
        let (all_train, none) = d.split(0.0, 1).unwrap();
        assert_eq!((all_train.len(), none.len()), (10, 0));
    }

    #[test]
    fn shuffled_batches_cover_each_epoch_once() {
        let mut s = Shuffled::new(10, 4, 3).unwrap();
        assert_eq!(s.batches_per_epoch(), 3);
        let mut epochs = Vec::new();
        for _ in 0..2 {
            s.start_epoch();
            let mut seen = Vec::new();
            let mut sizes = Vec::new();
            while let Some(b) = s.next_batch() {
                sizes.push(b.len());
                seen.extend_from_slice(b);
            }
            assert_eq!(sizes, [4, 4, 2]);
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
            epochs.push(seen);
        }
        assert_ne!(epochs[0], epochs[1], "reshuffled each epoch");

        let mut s = Shuffled::new(10, 4, 3).unwrap().drop_last(true);
        assert_eq!(s.batches_per_epoch(), 2);
        s.start_epoch();
        let mut n = 0;
        while let Some(b) = s.next_batch() {
            assert_eq!(b.len(), 4);
            n += 1;
        }
        assert_eq!(n, 2);

        let mut s = Shuffled::sequential(5, 2).unwrap();
        s.start_epoch();
        assert_eq!(s.next_batch(), Some(&[0, 1][..]));
        assert!(s.next_batch().is_some() && s.next_batch() == Some(&[4][..]));
        assert_eq!(s.next_batch(), None);

        // Before the first start_epoch there is nothing.
        let mut s = Shuffled::new(3, 1, 0).unwrap();
        assert_eq!(s.next_batch(), None);
        assert!(Shuffled::new(3, 0, 0).is_err() && Shuffled::new(0, 2, 0).is_err());
    }

    #[test]
    fn with_replacement_is_the_course_sampler() {
        let mut s = WithReplacement::new(506, 11, 1).unwrap();
        assert_eq!(s.batches_per_epoch(), 46);
        s.start_epoch();
        let mut n = 0;
        let mut repeats = false;
        let mut seen = std::collections::HashSet::new();
        while let Some(b) = s.next_batch() {
            assert_eq!(b.len(), 11);
            assert!(b.iter().all(|&i| i < 506));
            for &i in b {
                repeats |= !seen.insert(i);
            }
            n += 1;
        }
        assert_eq!(n, 46);
        assert!(
            repeats,
            "46 x 11 draws from 506 with replacement repeat some row"
        );
        assert!(seen.len() < 506, "an epoch does not visit every row");
        let mut a = WithReplacement::new(20, 5, 9).unwrap();
        let mut b = WithReplacement::new(20, 5, 9).unwrap();
        a.start_epoch();
        b.start_epoch();
        assert_eq!(a.next_batch(), b.next_batch());
        assert!(WithReplacement::new(3, 5, 0).is_err());
        assert_eq!(
            WithReplacement::new(3, 5, 0).unwrap_err().to_string(),
            "WithReplacement::new: 3 sample(s) / batch size 5 gives 0 batches per epoch; use with_steps"
        );
        let s = WithReplacement::new(10, 5, 0).unwrap().with_steps(7);
        assert_eq!(s.batches_per_epoch(), 7);
    }

    #[test]
    fn gather_copies_rows_into_buffers() {
        let x = Array2::from_shape_fn((6, 3), |(i, j)| (10 * i + j) as f64);
        let y = Array1::from_shape_fn(6, |i| i as f64);
        let d = Dataset::new(x, y).unwrap();
        let mut b = d.batch(4);
        assert!(b.is_empty());
        d.gather(&[5, 0, 5], &mut b).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(
            b.x(),
            array![[50., 51., 52.], [0., 1., 2.], [50., 51., 52.]]
        );
        assert_eq!(b.y(), array![5., 0., 5.]);
        let ptr = b.x().as_ptr();
        d.gather(&[1, 2, 3, 4], &mut b).unwrap();
        assert_eq!(b.x().as_ptr(), ptr, "no reallocation within capacity");
        d.gather(&[0, 1, 2, 3, 4, 5], &mut b).unwrap();
        assert_eq!((b.len(), b.capacity()), (6, 6));
        assert!(matches!(
            d.gather(&[6], &mut b),
            Err(Error::InvalidArgument { .. })
        ));

        let mut xb = Array2::zeros((2, 3));
        let mut yb = Array1::zeros(2);
        d.gather_into(&[3, 1], &mut xb, &mut yb).unwrap();
        assert_eq!(yb, array![3., 1.]);
        let mut wrong = Array2::zeros((2, 2));
        let e = d.gather_into(&[3, 1], &mut wrong, &mut yb).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dataset::gather_into: for 2 row(s) the buffers must be x [2, 3] and y [2], found x [2, 2] and y [2]"
        );

        // Several targets.
        let d2 = Dataset::new(
            array![[1.], [2.], [3.]],
            array![[1., -1.], [2., -2.], [3., -3.]],
        )
        .unwrap();
        let mut b2 = d2.batch(2);
        d2.gather(&[2, 0], &mut b2).unwrap();
        assert_eq!(b2.y(), array![[3., -3.], [1., -1.]]);
        assert!(Dataset::new(array![[1.]], array![1., 2.]).is_err());
        let sel = d2.select(&[1]).unwrap();
        assert_eq!(sel.targets, array![[2., -2.]]);
    }
}
