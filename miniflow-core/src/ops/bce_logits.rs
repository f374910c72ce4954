//! `bce_logits(y, z)`: binary cross-entropy of `sigmoid(z)` against targets `y`, from the
//! logits `z`; the mean over all elements of the stable form
//! `max(z, 0) - z·y + ln(1 + e^-|z|)`, finite for any finite `z` (even ±1000) with no clamp.
//!
//! `dz = (sigmoid(z) - y) / n · g` and `dy = -z / n · g`. As with `mse`, `y` and `z` are paired
//! element by element in logical order and need only hold the same number of elements.

use super::sigmoid::sigmoid;
use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMutD, Dimension, IxDyn};

/// The mean of `max(z, 0) - z·y + ln(1 + e^-|z|)`.
pub fn forward<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    z: ArrayView<'_, T, E>,
) -> T {
    let sum = y.iter().zip(z.iter()).fold(T::zero(), |acc, (&y, &z)| {
        let relu = if z > T::zero() { z } else { T::zero() };
        acc + relu - z * y + (-z.abs()).exp().ln_1p()
    });
    sum / T::from_f64(y.len() as f64)
}

/// `dy (+)= -z / n · g`.
pub fn backward_y<T: Scalar, D: Dimension, E: Dimension>(
    z: ArrayView<'_, T, E>,
    g: T,
    dy: GradOut<'_, T, D>,
) {
    let k = g / T::from_f64(z.len() as f64);
    dy.zip_with(z, |z| -k * z);
}

/// `dz (+)= (sigmoid(z) - y) / n · g`.
pub fn backward_z<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    z: ArrayView<'_, T, E>,
    g: T,
    dz: GradOut<'_, T, E>,
) {
    let k = g / T::from_f64(y.len() as f64);
    dz.zip2_with(y, z, |y, z| k * (sigmoid(z) - y));
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    mut out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    out.fill(forward(n.arg::<IxDyn>(0)?, n.arg::<IxDyn>(1)?));
    Ok(())
}

/// The runtime graph's backward into node argument `k`.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    // Only the arguments the kernel reads: an in-place update of `y` has it borrowed.
    let z = b.node.arg::<IxDyn>(1)?;
    if k == 0 {
        backward_y(z, b.g_scalar()?, dx);
    } else {
        backward_z(b.node.arg::<IxDyn>(0)?, z, b.g_scalar()?, dx);
    }
    Ok(())
}
