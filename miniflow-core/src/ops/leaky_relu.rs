//! `leaky_relu(x, slope)`: `x` where `x > 0`, `slope·x` elsewhere, elementwise; `slope` is a
//! literal of the network (`leaky_relu(z, 0.01)`).
//!
//! The derivative is 1 where `x > 0` and `slope` elsewhere (so `slope = 0` is `relu`, with the
//! same derivative 0 at `x = 0`). Backward reads `x` rather than the output: with a negative
//! slope the output's sign does not tell the two sides apart.

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn, Zip};

/// `out = leaky_relu(x, slope)`.
pub fn forward<T: Scalar, D: Dimension>(
    x: ArrayView<'_, T, D>,
    slope: T,
    mut out: ArrayViewMut<'_, T, D>,
) {
    Zip::from(&mut out)
        .and(&x)
        .for_each(|o, &x| *o = if x > T::zero() { x } else { slope * x });
}

/// `dx (+)= g` where `x > 0`, `slope·g` elsewhere.
pub fn backward<T: Scalar, D: Dimension>(
    x: ArrayView<'_, T, D>,
    slope: T,
    g: ArrayView<'_, T, D>,
    dx: GradOut<'_, T, D>,
) {
    dx.zip2_with(x, g, |x, g| if x > T::zero() { g } else { slope * g });
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    forward(n.arg::<IxDyn>(0)?, n.attr(0)?, out);
    Ok(())
}

/// The runtime graph's backward.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    _k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    backward(b.node.arg::<IxDyn>(0)?, b.node.attr(0)?, b.g()?, dx);
    Ok(())
}
