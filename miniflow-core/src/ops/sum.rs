//! `sum(x)`: the sum of all elements of an input of any shape, a scalar (`[]`).

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMutD, Dimension, IxDyn};

/// `Σ x`.
pub fn forward<T: Scalar, D: Dimension>(x: ArrayView<'_, T, D>) -> T {
    x.iter().fold(T::zero(), |acc, &v| acc + v)
}

/// `dx (+)= g` in every element, `g` being d cost / d sum.
pub fn backward<T: Scalar, D: Dimension>(g: T, dx: GradOut<'_, T, D>) {
    dx.fill(g);
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
