//! Inference helpers for classifiers: the predicted class of each row ([`argmax`]), the
//! fraction predicted right ([`accuracy`]), a [`ConfusionMatrix`], and class names for
//! predictions ([`class_names`]).
//!
//! Predictions are class indices (`usize`, as [`argmax`] returns them); labels may be
//! `usize`s too, or whole-number floats as a [`Dataset`](crate::data::Dataset) stores them
//! and `softmax_cross_entropy` reads them (any [`Label`]). Mismatched lengths are
//! [`Error::LengthMismatch`] and a value that is not a class index is [`Error::NotAClass`];
//! nothing here panics on its input.
//!
//! ```
//! use miniflow_core::metrics::{self, ConfusionMatrix};
//! use miniflow_core::ndarray::array;
//!
//! // Scores (logits or probabilities) of 4 rows over 3 classes, and the true labels.
//! let scores = array![[2.0, 0.1, -1.0], [0.3, 0.2, 0.9], [0.0, 3.0, 1.0], [1.0, 0.5, 0.2]];
//! let labels = array![0.0, 2.0, 1.0, 2.0];
//!
//! let predicted = metrics::argmax(&scores)?; // [0, 2, 1, 0]
//! assert_eq!(predicted.to_vec(), [0, 2, 1, 0]);
//! assert_eq!(metrics::accuracy(&predicted, &labels)?, 0.75);
//!
//! let names = ["setosa", "versicolor", "virginica"];
//! let confusion = ConfusionMatrix::new(&predicted, &labels, 3)?.with_class_names(&names)?;
//! assert_eq!(confusion.get(2, 0), Some(1)); // one virginica taken for a setosa
//! println!("{confusion}"); // rows: true class, columns: predicted
//! assert_eq!(metrics::class_names(&predicted, &names)?, ["setosa", "virginica", "versicolor", "setosa"]);
//! # Ok::<(), miniflow_core::Error>(())
//! ```

use crate::error::{Error, LabelValue, Result};
use crate::Scalar;
use ndarray::{Array1, Array2, ArrayBase, Axis, Data, Ix2};
use std::fmt;

/// A class index: a `usize` (as [`argmax`] returns) or another integer, or a whole-number
/// float (as a [`Dataset`](crate::data::Dataset) stores labels). References to one are one
/// too, so `&Array1<f64>` and `&[usize]` are sequences of labels.
pub trait Label: Copy {
    /// The class index, if the value is one: a whole number from 0 that fits a `usize`.
    fn class_index(self) -> Option<usize>;
    /// The value as a number, for error messages.
    fn as_f64(self) -> f64;
}

macro_rules! int_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            fn class_index(self) -> Option<usize> {
                usize::try_from(self).ok()
            }
            fn as_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
int_label!(usize, u8, u16, u32, u64, i32, i64);

macro_rules! float_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            fn class_index(self) -> Option<usize> {
                // 2^53: every whole float below it is exact, and fits a 64-bit usize.
                let whole = self >= 0.0 && self.fract() == 0.0 && f64::from(self) < 9.007_199_254_740_992e15;
                (whole && f64::from(self) <= usize::MAX as f64).then(|| self as usize)
            }
            fn as_f64(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}
float_label!(f32, f64);

impl<L: Label> Label for &L {
    fn class_index(self) -> Option<usize> {
        (*self).class_index()
    }
    fn as_f64(self) -> f64 {
        (*self).as_f64()
    }
}

/// The class indices of `items`, each below `classes` if given.
fn indices<I>(
    function: &'static str,
    which: &'static str,
    items: I,
    classes: Option<usize>,
) -> Result<Vec<usize>>
where
    I: IntoIterator,
    I::Item: Label,
{
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item.class_index() {
            Some(k) if classes.is_none_or(|c| k < c) => Ok(k),
            _ => Err(Error::NotAClass {
                function,
                which,
                index,
                value: LabelValue(item.as_f64()),
                classes,
            }),
        })
        .collect()
}

/// Predictions and labels as class indices, as many of each and at least one.
fn pairs<P, L>(
    function: &'static str,
    predicted: P,
    labels: L,
    classes: Option<usize>,
) -> Result<(Vec<usize>, Vec<usize>)>
where
    P: IntoIterator,
    P::Item: Label,
    L: IntoIterator,
    L::Item: Label,
{
    let p = indices(function, "prediction", predicted, classes)?;
    let l = indices(function, "label", labels, classes)?;
    if p.len() != l.len() {
        return Err(Error::LengthMismatch {
            function,
            predictions: p.len(),
            labels: l.len(),
        });
    }
    if p.is_empty() {
        return Err(Error::InvalidArgument {
            function,
            what: "no predictions and no labels; give at least one of each".to_string(),
        });
    }
    Ok((p, l))
}

/// The index of the largest entry of each row of `scores` (logits or probabilities, one row
/// per sample, one column per class): the predicted class of each sample. Ties go to the
/// first, as in NumPy and PyTorch.
///
/// Fails ([`Error::InvalidArgument`]) if `scores` has no columns, or if a row holds a NaN
/// (whose argmax would mean nothing; check mode, `Network::set_check_finite`, names the node
/// that produced it). Infinities compare as usual.
///
/// ```
/// use miniflow_core::{metrics, ndarray::array};
/// let predicted = metrics::argmax(&array![[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])?;
/// assert_eq!(predicted, array![1, 0]);
/// # Ok::<(), miniflow_core::Error>(())
/// ```
pub fn argmax<T, S>(scores: &ArrayBase<S, Ix2>) -> Result<Array1<usize>>
where
    T: Scalar,
    S: Data<Elem = T>,
{
    if scores.ncols() == 0 {
        return Err(Error::InvalidArgument {
            function: "argmax",
            what: format!(
                "the scores have shape [{}, 0]: a row needs at least one class to choose from",
                scores.nrows()
            ),
        });
    }
    let mut out = Array1::zeros(scores.nrows());
    for (row, (scores, best)) in scores.axis_iter(Axis(0)).zip(&mut out).enumerate() {
        let mut max = T::neg_infinity();
        for (k, &v) in scores.iter().enumerate() {
            if v.is_nan() {
                return Err(Error::InvalidArgument {
                    function: "argmax",
                    what: format!(
                        "row {row}, column {k} of the scores is NaN, so the row has no largest entry (turn on check mode, set_check_finite(true), to find the node that made it)"
                    ),
                });
            }
            // `k == 0` so that a row of -inf picks its first column.
            if k == 0 || v > max {
                (max, *best) = (v, k);
            }
        }
    }
    Ok(out)
}

/// The fraction of `predicted` equal to `labels`, element by element: `correct / total`.
///
/// Both are sequences of class indices ([`Label`]): e.g. [`argmax`]'s result and a data set's
/// targets. Fails with [`Error::LengthMismatch`] if their lengths differ,
/// [`Error::NotAClass`] if a value is not a class index (such as `0.5`, `-1`, NaN), and
/// [`Error::InvalidArgument`] if both are empty.
///
/// ```
/// use miniflow_core::{metrics, ndarray::array, Error};
/// assert_eq!(metrics::accuracy(&[0, 2, 1, 1], &array![0.0, 2.0, 2.0, 1.0])?, 0.75);
/// // "accuracy: 2 prediction(s) but 3 label(s); give one prediction per label (...)"
/// let e = metrics::accuracy(&[0, 2], &array![0.0, 2.0, 1.0]);
/// assert!(matches!(e, Err(Error::LengthMismatch { predictions: 2, labels: 3, .. })));
/// # Ok::<(), miniflow_core::Error>(())
/// ```
pub fn accuracy<P, L>(predicted: P, labels: L) -> Result<f64>
where
    P: IntoIterator,
    P::Item: Label,
    L: IntoIterator,
    L::Item: Label,
{
    let (p, l) = pairs("accuracy", predicted, labels, None)?;
    let correct = p.iter().zip(&l).filter(|(a, b)| a == b).count();
    Ok(correct as f64 / p.len() as f64)
}

/// The name of each predicted class: `names[k]` for prediction `k` (e.g. with
/// [`Dataset::class_names`](crate::data::Dataset::class_names), kept from a counts header
/// such as iris's `150,4,setosa,versicolor,virginica`).
///
/// Fails with [`Error::NotAClass`] for a prediction that has no name (`k >= names.len()`).
///
/// ```
/// use miniflow_core::metrics;
/// let names = ["setosa", "versicolor", "virginica"];
/// assert_eq!(metrics::class_names(&[2, 0], &names)?, ["virginica", "setosa"]);
/// assert!(metrics::class_names(&[3], &names).is_err());
/// # Ok::<(), miniflow_core::Error>(())
/// ```
pub fn class_names<P, N>(predicted: P, names: &[N]) -> Result<Vec<&str>>
where
    P: IntoIterator,
    P::Item: Label,
    N: AsRef<str>,
{
    let p = indices("class_names", "prediction", predicted, Some(names.len()))?;
    // Every index is below `names.len()`.
    Ok(p.iter()
        .filter_map(|&k| names.get(k).map(AsRef::as_ref))
        .collect())
}

/// Counts of (true class, predicted class) pairs: `counts()[[t, p]]` is how many samples of
/// class `t` were predicted as class `p`, so the diagonal holds the correct predictions.
///
/// `Display` prints it as a table, rows the true classes and columns the predicted ones,
/// headed by the class names if it has them ([`with_class_names`](Self::with_class_names))
/// or by the indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: Array2<usize>,
    names: Vec<String>,
}

impl ConfusionMatrix {
    /// Counts `predicted` against `labels` (sequences of class indices of equal, nonzero
    /// length) over `classes` classes. Fails with [`Error::LengthMismatch`] if the lengths
    /// differ, [`Error::NotAClass`] for a value that is not a class index below `classes`,
    /// and [`Error::InvalidArgument`] if both are empty or `classes` is 0.
    pub fn new<P, L>(predicted: P, labels: L, classes: usize) -> Result<Self>
    where
        P: IntoIterator,
        P::Item: Label,
        L: IntoIterator,
        L::Item: Label,
    {
        if classes == 0 {
            return Err(Error::InvalidArgument {
                function: "ConfusionMatrix::new",
                what: "0 classes; a confusion matrix needs at least one".to_string(),
            });
        }
        let (p, l) = pairs("ConfusionMatrix::new", predicted, labels, Some(classes))?;
        let mut counts = Array2::zeros((classes, classes));
        for (&p, &t) in p.iter().zip(&l) {
            // Both are below `classes`.
            if let Some(cell) = counts.get_mut([t, p]) {
                *cell += 1;
            }
        }
        Ok(ConfusionMatrix {
            counts,
            names: Vec::new(),
        })
    }

    /// Names the classes (for `Display`): one name per class, in class order. Fails with
    /// [`Error::InvalidArgument`] if there are not exactly [`classes`](Self::classes) names.
    pub fn with_class_names<N: AsRef<str>>(mut self, names: &[N]) -> Result<Self> {
        if names.len() != self.classes() {
            return Err(Error::InvalidArgument {
                function: "ConfusionMatrix::with_class_names",
                what: format!(
                    "{} name(s) for {} classes; give one name per class",
                    names.len(),
                    self.classes()
                ),
            });
        }
        self.names = names.iter().map(|n| n.as_ref().to_string()).collect();
        Ok(self)
    }

    /// The counts, `[true class, predicted class]`.
    pub fn counts(&self) -> &Array2<usize> {
        &self.counts
    }

    /// How many samples of class `truth` were predicted as `predicted`; `None` if either is
    /// not a class.
    pub fn get(&self, truth: usize, predicted: usize) -> Option<usize> {
        self.counts.get([truth, predicted]).copied()
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.counts.nrows()
    }

    /// The class names, empty unless set with [`with_class_names`](Self::with_class_names).
    pub fn class_names(&self) -> &[String] {
        &self.names
    }

    /// The number of samples counted.
    pub fn total(&self) -> usize {
        self.counts.sum()
    }

    /// The number predicted right (the diagonal's sum).
    pub fn correct(&self) -> usize {
        self.counts.diag().sum()
    }

    /// `correct / total`: the same number as [`accuracy`] of the same predictions.
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.total().max(1) as f64
    }

    /// Of the samples of class `class`, the fraction predicted as `class`; `None` if there
    /// are none (or no such class).
    pub fn recall(&self, class: usize) -> Option<f64> {
        let right = self.get(class, class)?;
        let row: usize = self.counts.row(class).sum();
        (row > 0).then(|| right as f64 / row as f64)
    }

    /// Of the samples predicted as `class`, the fraction that are of `class`; `None` if none
    /// was (or no such class).
    pub fn precision(&self, class: usize) -> Option<f64> {
        let right = self.get(class, class)?;
        let column: usize = self.counts.column(class).sum();
        (column > 0).then(|| right as f64 / column as f64)
    }

    /// Class `k`'s label in the table.
    fn label(&self, k: usize) -> String {
        self.names.get(k).cloned().unwrap_or_else(|| k.to_string())
    }
}

impl fmt::Display for ConfusionMatrix {
    /// A table: a header of predicted classes, then one row per true class.
    ///
    /// ```text
    /// true \ predicted  setosa  versicolor  virginica
    ///           setosa      10           0          0
    ///       versicolor       0           9          1
    ///        virginica       0           0         10
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CORNER: &str = "true \\ predicted";
        let labels: Vec<String> = (0..self.classes()).map(|k| self.label(k)).collect();
        let widest_count = self.counts.iter().max().map_or(1, |n| n.to_string().len());
        let width = labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1)
            .max(widest_count);
        let first = labels
            .iter()
            .map(|l| l.chars().count())
            .chain([CORNER.len()])
            .max()
            .unwrap_or(0);
        write!(f, "{CORNER:>first$}")?;
        for l in &labels {
            write!(f, "  {l:>width$}")?;
        }
        for (l, row) in labels.iter().zip(self.counts.axis_iter(Axis(0))) {
            write!(f, "\n{l:>first$}")?;
            for n in row {
                write!(f, "  {n:>width$}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn argmax_takes_the_first_of_ties_and_handles_infinities() {
        let s = array![
            [1.0, 3.0, 3.0],
            [f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY],
            [0.0, f64::INFINITY, 1.0],
            [-2.0, -1.0, -3.0]
        ];
        assert_eq!(argmax(&s).unwrap(), array![1, 0, 1, 1]);
        // Views, f32, and no rows.
        assert_eq!(argmax(&s.view()).unwrap(), array![1, 0, 1, 1]);
        assert_eq!(argmax(&array![[0.5f32, 0.25]]).unwrap(), array![0]);
        assert_eq!(argmax(&Array2::<f64>::zeros((0, 3))).unwrap().len(), 0);
    }

    #[test]
    fn argmax_refuses_no_columns_and_nan() {
        let e = argmax(&Array2::<f64>::zeros((2, 0))).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidArgument {
                function: "argmax",
                ..
            }
        ));
        assert!(e.to_string().contains("[2, 0]"), "{e}");
        let e = argmax(&array![[0.0, 1.0], [2.0, f64::NAN]]).unwrap_err();
        assert!(e.to_string().contains("row 1, column 1"), "{e}");
    }

    #[test]
    fn accuracy_pairs_labels_of_any_kind() {
        let p = array![0usize, 1, 2, 2];
        assert_eq!(accuracy(&p, &array![0.0, 1.0, 1.0, 2.0]).unwrap(), 0.75);
        assert_eq!(accuracy(&p, [0.0f32, 1.0, 2.0, 2.0]).unwrap(), 1.0);
        assert_eq!(accuracy(&p, vec![1i32, 0, 0, 0]).unwrap(), 0.0);
        assert_eq!(accuracy(p.view(), &[0u8, 1, 2, 0][..]).unwrap(), 0.75);
    }

    #[test]
    fn accuracy_errors_are_typed() {
        assert_eq!(
            accuracy(&[0, 1], &[0.0]).unwrap_err(),
            Error::LengthMismatch {
                function: "accuracy",
                predictions: 2,
                labels: 1
            }
        );
        for (bad, index) in [(0.5, 1), (-1.0, 1), (f64::NAN, 1), (1e300, 1)] {
            let e = accuracy(&[0, 1], &[1.0, bad]).unwrap_err();
            assert_eq!(
                e,
                Error::NotAClass {
                    function: "accuracy",
                    which: "label",
                    index,
                    value: LabelValue(bad),
                    classes: None
                }
            );
        }
        let e = accuracy(&[0, 1], &[1.0, 0.5]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "accuracy: label 1 is 0.5, which is not a class index; class indices are whole numbers 0, 1, 2, ... (class indices, not one-hot rows or probabilities: for those, take each row's argmax)"
        );
        let e = accuracy(&[-1i64], &[0usize]).unwrap_err();
        assert!(
            e.to_string().starts_with("accuracy: prediction 0 is -1"),
            "{e}"
        );
        let none: [usize; 0] = [];
        assert!(matches!(
            accuracy(none, none),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn confusion_counts_and_rates() {
        let c = ConfusionMatrix::new([0, 2, 1, 0, 2], [0.0, 2.0, 1.0, 2.0, 2.0], 3).unwrap();
        assert_eq!(c.counts(), &array![[1, 0, 0], [0, 1, 0], [1, 0, 2]]);
        assert_eq!((c.total(), c.correct(), c.classes()), (5, 4, 3));
        assert_eq!(c.accuracy(), 0.8);
        assert_eq!(c.get(2, 0), Some(1));
        assert_eq!(c.get(3, 0), None);
        assert_eq!(c.recall(2), Some(2.0 / 3.0));
        assert_eq!(c.precision(0), Some(0.5));
        assert_eq!((c.recall(3), c.precision(9)), (None, None));
        let c = ConfusionMatrix::new([0], [0], 2).unwrap();
        assert_eq!((c.recall(1), c.precision(1)), (None, None));
    }

    #[test]
    fn confusion_errors_are_typed() {
        let e = ConfusionMatrix::new([0, 3], [0, 1], 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ConfusionMatrix::new: prediction 1 is 3, which is not a class index; class indices are whole numbers 0 to 2 (3 classes)"
        );
        assert!(matches!(
            ConfusionMatrix::new([0], [0, 1], 3),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(ConfusionMatrix::new([0], [0], 0).is_err());
        let c = ConfusionMatrix::new([0], [0], 2).unwrap();
        assert!(c.clone().with_class_names(&["a"]).is_err());
        assert_eq!(
            c.with_class_names(&["a", "b"]).unwrap().class_names(),
            ["a", "b"]
        );
    }

    #[test]
    fn confusion_prints_a_table() {
        let c = ConfusionMatrix::new([0, 1, 1], [0, 1, 0], 2).unwrap();
        assert_eq!(
            c.to_string(),
            "true \\ predicted  0  1\n               0  1  1\n               1  0  1"
        );
        let c = c.with_class_names(&["cat", "hippopotamus"]).unwrap();
        assert_eq!(
            c.to_string(),
            "true \\ predicted           cat  hippopotamus\n             cat             1             1\n    hippopotamus             0             1"
        );
    }

    #[test]
    fn names_of_predictions() {
        let names = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            class_names(array![1, 0, 1], &names).unwrap(),
            ["b", "a", "b"]
        );
        let e = class_names([2], &names).unwrap_err();
        assert!(matches!(
            e,
            Error::NotAClass {
                classes: Some(2),
                ..
            }
        ));
    }
}
