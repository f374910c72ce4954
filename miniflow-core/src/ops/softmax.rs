//! `softmax(x)`: the softmax of each row of a `[m, c]` input, over its last axis.
//!
//! Numerically stable: each row is shifted by its maximum before exponentiating, so every
//! exponent is at most 0 and nothing overflows (`softmax([1000, -1000]) = [1, 0]`, never NaN for
//! finite input). Each row of the output sums to 1 up to rounding.

use super::{out_rank, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{
    ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ArrayViewMutD, Ix2, IxDyn, Zip,
};

/// The row's largest finite-or-not element, or 0 when that is not finite (an empty row, or
/// one of infinities), so that `x - shift` is never `inf - inf` for finite input.
pub(crate) fn row_shift<T: Scalar>(row: ArrayView1<'_, T>) -> T {
    let max = row.fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    if max.is_finite() {
        max
    } else {
        T::zero()
    }
}

/// `out = softmax(x)` for one row.
pub fn softmax_row<T: Scalar>(x: ArrayView1<'_, T>, mut out: ArrayViewMut1<'_, T>) {
    let shift = row_shift(x.view());
    let mut sum = T::zero();
    Zip::from(&mut out).and(&x).for_each(|o, &x| {
        let e = (x - shift).exp();
        *o = e;
        sum = sum + e;
    });
    out.mapv_inplace(|e| e / sum);
}

/// `out = softmax(x)`, row by row.
pub fn forward<T: Scalar>(x: ArrayView2<'_, T>, mut out: ArrayViewMut2<'_, T>) {
    for (x, o) in x.rows().into_iter().zip(out.rows_mut()) {
        softmax_row(x, o);
    }
}

/// The Jacobian-vector product: `dx (+)= s ⊙ (g - Σ_j g_j s_j)` row by row, where `s` is
/// forward's output (the derivative needs only it).
pub fn backward<T: Scalar>(s: ArrayView2<'_, T>, g: ArrayView2<'_, T>, dx: GradOut<'_, T, Ix2>) {
    let GradOut {
        mut buf,
        accumulate,
        alpha,
    } = dx;
    for ((row, s), g) in buf.rows_mut().into_iter().zip(s.rows()).zip(g.rows()) {
        let dot = s
            .iter()
            .zip(g.iter())
            .fold(T::zero(), |acc, (&s, &g)| acc + s * g);
        // This row's output, written or accumulated as `dx` is.
        let out = GradOut {
            buf: row,
            accumulate,
            alpha,
        };
        out.zip2_with(s, g, |s, g| s * (g - dot));
    }
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    forward(n.arg(0)?, out_rank(out)?);
    Ok(())
}

/// The runtime graph's backward.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    _k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    backward(b.value()?, b.g()?, dx.into_dim()?);
    Ok(())
}
