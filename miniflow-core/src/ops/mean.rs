//! `mean(x)`: the mean of all elements of an input of any shape, a scalar (`[]`).

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMutD, Dimension, IxDyn};

/// `Σ x / n`, `n` the number of elements (NaN for an empty input).
pub fn forward<T: Scalar, D: Dimension>(x: ArrayView<'_, T, D>) -> T {
    super::sum::forward(x.view()) / T::from_f64(x.len() as f64)
}

/// `dx (+)= g / n` in every element, `n` the number of elements of `dx`.
pub fn backward<T: Scalar, D: Dimension>(g: T, dx: GradOut<'_, T, D>) {
    let n = T::from_f64(dx.buf.len() as f64);
    dx.fill(g / n);
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    mut out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    out.fill(forward(n.arg::<IxDyn>(0)?));
    Ok(())
}

/// The runtime graph's backward.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    _k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    backward(b.g_scalar()?, dx);
    Ok(())
}
