//! `mul(a, b) = a ⊙ b`: the elementwise product of two inputs of one shape.

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn, Zip};

/// `out = a ⊙ b`.
pub fn forward<T: Scalar, D: Dimension>(
    a: ArrayView<'_, T, D>,
    b: ArrayView<'_, T, D>,
    mut out: ArrayViewMut<'_, T, D>,
) {
    Zip::from(&mut out)
        .and(&a)
        .and(&b)
        .for_each(|o, &a, &b| *o = a * b);
}

/// `dx (+)= other ⊙ g`: the gradient with respect to one factor, given the other (`db` from
/// `a`, `da` from `b`).
pub fn backward<T: Scalar, D: Dimension>(
    other: ArrayView<'_, T, D>,
    g: ArrayView<'_, T, D>,
    dx: GradOut<'_, T, D>,
) {
    dx.zip2_with(other, g, |o, g| o * g);
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    forward(n.arg::<IxDyn>(0)?, n.arg(1)?, out);
    Ok(())
}

/// The runtime graph's backward into node argument `k`.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    let other = b.node.arg::<IxDyn>(if k == 0 { 1 } else { 0 })?;
    backward(other, b.g()?, dx);
    Ok(())
}
