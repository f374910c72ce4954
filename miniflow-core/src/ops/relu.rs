//! `relu(x) = max(x, 0)`, elementwise.
//!
//! The derivative is taken as 0 at `x = 0` (and wherever the output is not positive), which
//! backward reads from forward's output alone, so it never needs `x`.

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn, Zip};

/// `max(x, 0)`; NaN stays NaN.
#[inline(always)]
pub fn relu<T: Scalar>(x: T) -> T {
    if x < T::zero() {
        T::zero()
    } else {
        x
    }
}

/// `out = relu(x)`.
pub fn forward<T: Scalar, D: Dimension>(x: ArrayView<'_, T, D>, mut out: ArrayViewMut<'_, T, D>) {
    Zip::from(&mut out).and(&x).for_each(|o, &x| *o = relu(x));
}

/// `dx (+)= g` where forward's output `r` is positive, `+= 0` elsewhere.
pub fn backward<T: Scalar, D: Dimension>(
    r: ArrayView<'_, T, D>,
    g: ArrayView<'_, T, D>,
    dx: GradOut<'_, T, D>,
) {
    dx.zip2_with(r, g, |r, g| if r > T::zero() { g } else { T::zero() });
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    forward(n.arg::<IxDyn>(0)?, out);
    Ok(())
}

/// The runtime graph's backward.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    _k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    backward(b.value::<IxDyn>()?, b.g()?, dx);
    Ok(())
}
