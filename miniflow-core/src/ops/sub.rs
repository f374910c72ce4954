//! `sub(a, b) = a - b`, elementwise, for two inputs of one shape.

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn, Zip};

/// `out = a - b`.
pub fn forward<T: Scalar, D: Dimension>(
    a: ArrayView<'_, T, D>,
    b: ArrayView<'_, T, D>,
    mut out: ArrayViewMut<'_, T, D>,
) {
    Zip::from(&mut out)
        .and(&a)
        .and(&b)
        .for_each(|o, &a, &b| *o = a - b);
}

/// `da (+)= g`.
pub fn backward_a<T: Scalar, D: Dimension>(g: ArrayView<'_, T, D>, da: GradOut<'_, T, D>) {
    da.zip_with(g, |g| g);
}

/// `db (+)= -g`.
pub fn backward_b<T: Scalar, D: Dimension>(g: ArrayView<'_, T, D>, db: GradOut<'_, T, D>) {
    db.zip_with(g, |g| -g);
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
    if k == 0 {
        backward_a(b.g::<IxDyn>()?, dx);
    } else {
        backward_b(b.g::<IxDyn>()?, dx);
    }
    Ok(())
}
