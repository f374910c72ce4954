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
//! - [`Header::Names`]: the first line holds the column names. A first line that looks like
//!   a counts line is an error that says to use `Header::Counts`.
//! - [`Header::Counts`]: scikit-learn's layout (`boston_house_prices.csv`, `iris.csv`): the
//!   first line starts with the sample and feature counts (`506,13,,,...`), optionally followed
//!   by class names (`150,4,setosa,versicolor,virginica`, kept as
//!   [`Dataset::class_names`]) and by a line of column names; the counts are checked against
//!   the rows read.
//! - [`Header::Auto`]: names if any field of the first line is not a number, else data.
//!
//! Records are read by the [`csv`](https://docs.rs/csv) crate: fields are separated by
//! [`CsvOptions::delimiter`] and may be quoted (a quoted field may hold the delimiter, a
//! doubled `""` and line breaks); lines may end in `\n` or `\r\n`; a UTF-8 byte order mark is
//! dropped; blank lines are skipped; fields are trimmed. Every number must be finite **in the
//! element type** (`1e39` is an error for `f32`). A file whose name ends in `.gz`, or which
//! starts with the gzip magic bytes, is decompressed first, up to
//! [`CsvOptions::max_decompressed_bytes`].
//!
//! Errors name the file, the 1-based line and, when one field is at fault, the 1-based column
//! ([`Error::Parse`]); nothing a file contains makes the reader panic.
//!
//! # Invariants
//!
//! A [`Dataset`] always has as many target rows as feature rows, and a name per column: its
//! fields are private and every constructor checks. So this does not compile:
//!
//! ```compile_fail
//! use miniflow_core::data::Dataset;
//! use miniflow_core::ndarray::array;
//! // Two feature rows, one target: `select` and `gather` would index out of bounds.
//! let d = Dataset { features: array![[1.0], [2.0]], targets: array![1.0] };
//! ```

mod csv;
mod sampler;

pub use self::csv::{
    parse_csv, read_csv, CsvOptions, Header, Table, DEFAULT_MAX_DECOMPRESSED_BYTES,
};
pub use self::sampler::{Sampler, Shuffled, WithReplacement};

use crate::error::{Error, Result};
use crate::rng::{self, Rng};
use crate::Scalar;
use ndarray::{
    s, Array, Array1, Array2, ArrayBase, ArrayView, ArrayView2, ArrayViewMut, ArrayViewMut2, Axis,
    DataMut, Dimension, Ix1, Ix2, RemoveAxis, Slice,
};
use rand_core::RngCore;
use std::path::Path;

/// Rows of features with their targets: the targets are an `Array1` (one target per row, the
/// default) or an `Array2` (several).
///
/// The fields are private so that the rows always match (see the [module docs](self));
/// read them with [`features`](Dataset::features) and [`targets`](Dataset::targets), change
/// values in place with [`features_mut`](Dataset::features_mut) and
/// [`targets_mut`](Dataset::targets_mut), or take them with
/// [`into_parts`](Dataset::into_parts).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T = f64, D: Dimension = Ix1> {
    features: Array2<T>,
    targets: Array<T, D>,
    feature_names: Vec<String>,
    target_names: Vec<String>,
    class_names: Vec<String>,
}

impl<T: Scalar> Dataset<T, Ix1> {
    /// Reads a CSV file whose last column is the target. See the [module docs](self) for the
    /// layouts and [`CsvOptions`].
    pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        read_csv(path, options)?.into_dataset()
    }

    /// Reads scikit-learn's `boston_house_prices.csv` layout (a count line, a line of
    /// names, then rows of 13 features and the MEDV target), the course's data set. Another
    /// number of features is an error that says how to read the file instead.
    pub fn read_boston(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let d = Self::read_csv(path, &CsvOptions::new(Header::Counts))?;
        if d.n_features() != 13 {
            return Err(Error::Parse {
                file: path.display().to_string(),
                line: 1,
                column: Some(2),
                what: format!(
                    "read_boston expects the Boston housing layout, 13 features (CRIM ... LSTAT) and the MEDV target, but this file has {} feature column(s); to read another data set use Dataset::read_csv(path, &CsvOptions::new(Header::Counts))",
                    d.n_features()
                ),
            });
        }
        Ok(d)
    }

    /// Names the classes of integer labels: target `k` is class `names[k]`. Every target must
    /// be a whole number below `names.len()`.
    pub fn with_class_names(self, names: Vec<String>) -> Result<Self> {
        let k = names.len();
        if let Some((row, &t)) = self.targets.iter().enumerate().find(|(_, &t)| {
            !(t >= T::zero() && t.fract() == T::zero() && Scalar::to_f64(t) < k as f64)
        }) {
            return Err(Error::InvalidArgument {
                function: "Dataset::with_class_names",
                what: format!("the target of row {row} is {t}, not a class index below {k}"),
            });
        }
        Ok(self.with_class_names_unchecked(names))
    }

    /// The name of class `label`, if the data set has class names and one for it.
    pub fn class_name(&self, label: usize) -> Option<&str> {
        self.class_names.get(label).map(String::as_str)
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
                    "{} feature row(s) but targets of shape {:?}; give one target row per feature row",
                    features.nrows(),
                    targets.shape()
                ),
            });
        }
        let n_targets = targets.shape().iter().skip(1).product();
        Ok(Dataset {
            feature_names: (0..features.ncols()).map(|k| format!("x{k}")).collect(),
            target_names: (0..n_targets).map(|k| format!("y{k}")).collect(),
            class_names: Vec::new(),
            features,
            targets,
        })
    }

    /// Renames the columns: one name per feature column and one per target column.
    pub fn with_names(
        mut self,
        feature_names: Vec<String>,
        target_names: Vec<String>,
    ) -> Result<Self> {
        let n_targets: usize = self.targets.shape().iter().skip(1).product();
        if feature_names.len() != self.n_features() || target_names.len() != n_targets {
            return Err(Error::InvalidArgument {
                function: "Dataset::with_names",
                what: format!(
                    "{} feature name(s) and {} target name(s) for {} feature column(s) and {n_targets} target column(s)",
                    feature_names.len(),
                    target_names.len(),
                    self.n_features()
                ),
            });
        }
        self.feature_names = feature_names;
        self.target_names = target_names;
        Ok(self)
    }

    pub(crate) fn with_class_names_unchecked(mut self, names: Vec<String>) -> Self {
        self.class_names = names;
        self
    }

    /// The features, one row per sample.
    pub fn features(&self) -> &Array2<T> {
        &self.features
    }

    /// The targets; axis 0 runs over the samples.
    pub fn targets(&self) -> &Array<T, D> {
        &self.targets
    }

    /// The features, to change in place (e.g. to scale pixels); the shape cannot change.
    pub fn features_mut(&mut self) -> ArrayViewMut2<'_, T> {
        self.features.view_mut()
    }

    /// The targets, to change in place; the shape cannot change.
    pub fn targets_mut(&mut self) -> ArrayViewMut<'_, T, D> {
        self.targets.view_mut()
    }

    /// A name per feature column.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// A name per target column.
    pub fn target_names(&self) -> &[String] {
        &self.target_names
    }

    /// The class names, in class index order (from a counts header such as
    /// `150,4,setosa,versicolor,virginica`, or [`with_class_names`](Dataset::with_class_names));
    /// empty if there are none.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The features and the targets.
    pub fn into_parts(self) -> (Array2<T>, Array<T, D>) {
        (self.features, self.targets)
    }

    fn into_parts_with_names(self) -> (Array2<T>, Array<T, D>, Vec<String>, Vec<String>) {
        (
            self.features,
            self.targets,
            self.feature_names,
            self.target_names,
        )
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
            class_names: self.class_names.clone(),
        })
    }

    /// Splits the samples at random into `(train, test)`, with `round(test_fraction · len)`
    /// samples in `test`; the seed fixes the split. `test_fraction` must be in `[0, 1]`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        self.split_with(test_fraction, &mut Rng::new(seed))
    }

    /// [`split`](Dataset::split) drawing the permutation from `rng` (an [`Rng`] or any
    /// other `rand_core` generator).
    pub fn split_with<R: RngCore + ?Sized>(
        &self,
        test_fraction: f64,
        rng: &mut R,
    ) -> Result<(Self, Self)> {
        if !(0.0..=1.0).contains(&test_fraction) {
            return Err(Error::InvalidArgument {
                function: "Dataset::split",
                what: format!("test_fraction must be in [0, 1], found {test_fraction}"),
            });
        }
        let n = self.len();
        let n_test = ((n as f64) * test_fraction).round() as usize;
        let mut order: Vec<usize> = (0..n).collect();
        rng::shuffle(rng, &mut order);
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

impl<T: Scalar> Default for Standardizer<T> {
    /// A scaler of no columns, to restore a saved one into (see `persist::Checkpoint`).
    fn default() -> Self {
        Standardizer {
            mean: Array1::zeros(0),
            std: Array1::zeros(0),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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
        assert!(d.features().iter().all(|v| v.is_finite()));
        assert_eq!(d.features().column(1), array![0., 0., 0.]);
        for col in d.features().columns() {
            let m = col.sum() / 3.0;
            assert!(m.abs() < 1e-15);
        }
        let var0 = d.features().column(0).mapv(|v| v * v).sum() / 3.0;
        assert!((var0 - 1.0).abs() < 1e-14);
        assert_eq!(d.targets(), array![0., 1., 2.], "targets untouched");

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
        let mut all: Vec<f64> = train
            .targets()
            .iter()
            .chain(test.targets())
            .copied()
            .collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(all, (0..10).map(|i| i as f64).collect::<Vec<_>>());
        for (row, &t) in test.features().rows().into_iter().zip(test.targets()) {
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
        assert_eq!(sel.targets(), array![[2., -2.]]);
    }

    /// A dataset built by a user's generator splits as the seeded one does.
    #[test]
    fn split_with_any_generator() {
        let d = Dataset::new(
            Array2::from_shape_fn((9, 1), |(i, _)| i as f64),
            Array1::from_shape_fn(9, |i| i as f64),
        )
        .unwrap();
        let (a, b) = d.split(0.3, 8).unwrap();
        let (c, e) = d.split_with(0.3, &mut Rng::new(8)).unwrap();
        assert_eq!((a, b), (c, e));
    }

    /// Issue 8: with public fields, targets shorter than the features made `select` and
    /// `gather` index out of bounds. The fields are private now (the module's
    /// `compile_fail` doctest is the regression test: that struct literal compiled before);
    /// every way to build a dataset checks the rows.
    #[test]
    fn every_constructor_keeps_rows_matched() {
        assert!(Dataset::new(array![[1.], [2.]], array![1.]).is_err());
        let d = Dataset::new(array![[1.], [2.]], array![1., 2.]).unwrap();
        assert!(d.clone().with_names(vec!["a".into()], vec![]).is_err());
        let d = d.with_names(vec!["a".into()], vec!["t".into()]).unwrap();
        assert_eq!(d.feature_names(), ["a"]);
        let mut d = d
            .with_class_names(vec!["n0".into(), "n1".into(), "n2".into()])
            .unwrap();
        assert_eq!(d.class_name(1), Some("n1"));
        d.features_mut().mapv_inplace(|x| x * 2.0);
        assert_eq!(d.features(), array![[2.], [4.]]);
        assert!(matches!(
            Dataset::new(array![[1.]], array![0.5])
                .unwrap()
                .with_class_names(vec!["a".into()]),
            Err(Error::InvalidArgument { .. })
        ));
        let (x, y) = d.into_parts();
        assert_eq!((x.nrows(), y.len()), (2, 2));
    }

    /// Issue 9: read_boston on another file said nothing useful.
    #[test]
    fn read_boston_on_another_file_says_what_to_do() {
        let path = std::env::temp_dir().join(format!("miniflow-iris-{}.csv", std::process::id()));
        std::fs::write(&path, "2,2,a,b\n1,2,0\n3,4,1\n").unwrap();
        let e = Dataset::<f64>::read_boston(&path).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("13 features") && msg.contains("has 2 feature column(s)"),
            "{msg}"
        );
        assert!(msg.contains("Dataset::read_csv"), "{msg}");
        std::fs::remove_file(&path).unwrap();
    }
}
