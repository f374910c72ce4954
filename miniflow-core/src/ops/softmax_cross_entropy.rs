//! `softmax_cross_entropy(logits, labels)`: the mean over rows of `-log softmax(logits)[label]`,
//! for `logits: [m, c]` and `labels: [m]` holding class indices as floats (`0.0, 1.0, ...`).
//!
//! Computed stably through log-sum-exp: row `i` contributes
//! `(max_i - x_i[label]) + ln Σ_j e^(x_ij - max_i)`, finite for any finite logits (even ±1000).
//! The gradient with respect to the logits is `(softmax(logits) - onehot(labels)) / m · g`;
//! the labels get none (they are data: the `network!` macro rejects a param or `#[grad]`
//! input flowing into them).
//!
//! A label that is not a whole number in `0..c` (or is NaN) makes forward fail with
//! [`KernelError::BadLabel`] naming the row and the value. Backward, which only runs after a
//! successful forward, treats such a label as naming no class rather than panicking.

use super::softmax::row_shift;
use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMutD, Ix2, IxDyn};

/// The class index `label` names among `classes` classes: `Some(k)` if it is a whole number
/// `k` in `0..classes`.
pub fn class_index<T: Scalar>(label: T, classes: usize) -> Option<usize> {
    let v = label.to_f64();
    (v >= 0.0 && v < classes as f64 && v.fract() == 0.0).then_some(v as usize)
}

/// `(shift, ln Σ_j e^(x_j - shift))` for one row: `log-sum-exp(x) = shift + second`.
fn log_sum_exp<T: Scalar>(x: ArrayView1<'_, T>) -> (T, T) {
    let shift = row_shift(x.view());
    let sum = x.fold(T::zero(), |acc, &v| acc + (v - shift).exp());
    (shift, sum.ln())
}

/// The mean over rows of `-log softmax(logits)[label]`, or the first row whose label is not
/// a class index.
pub fn forward<T: Scalar>(
    logits: ArrayView2<'_, T>,
    labels: ArrayView1<'_, T>,
) -> Result<T, KernelError> {
    let (m, c) = logits.dim();
    let mut total = T::zero();
    for (row, (x, &label)) in logits.rows().into_iter().zip(labels.iter()).enumerate() {
        let k = class_index(label, c).ok_or(KernelError::BadLabel {
            arg: 1,
            row,
            value: label.to_f64(),
            classes: c,
        })?;
        let (shift, log_sum) = log_sum_exp(x.view());
        total = total + ((shift - x[k]) + log_sum);
    }
    Ok(total / T::from_f64(m as f64))
}

/// `dlogits (+)= (softmax(logits) - onehot(labels)) / m · g`, `g` being d cost / d loss.
pub fn backward<T: Scalar>(
    logits: ArrayView2<'_, T>,
    labels: ArrayView1<'_, T>,
    g: T,
    dlogits: GradOut<'_, T, Ix2>,
) {
    let (m, c) = logits.dim();
    let GradOut {
        mut buf,
        accumulate,
        alpha,
    } = dlogits;
    let scale = alpha * g / T::from_f64(m as f64);
    for ((mut d, x), &label) in buf
        .rows_mut()
        .into_iter()
        .zip(logits.rows())
        .zip(labels.iter())
    {
        let target = class_index(label, c);
        let (shift, log_sum) = log_sum_exp(x.view());
        for (j, (d, &x)) in d.iter_mut().zip(x.iter()).enumerate() {
            let p = (x - shift - log_sum).exp();
            let onehot = if target == Some(j) {
                T::one()
            } else {
                T::zero()
            };
            let v = scale * (p - onehot);
            *d = if accumulate { *d + v } else { v };
        }
    }
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    mut out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    out.fill(forward(n.arg(0)?, n.arg(1)?)?);
    Ok(())
}

/// The runtime graph's backward: into the logits only (the labels get no gradient, and the
/// graph does not ask for one).
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    if k == 0 {
        backward(
            b.node.arg(0)?,
            b.node.arg(1)?,
            b.g_scalar()?,
            dx.into_dim()?,
        );
    }
    Ok(())
}
