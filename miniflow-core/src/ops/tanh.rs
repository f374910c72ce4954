//! `tanh(x)`, elementwise. Saturates to ±1 without overflow for any finite `x`.

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn, Zip};

/// `out = tanh(x)`.
pub fn forward<T: Scalar, D: Dimension>(x: ArrayView<'_, T, D>, mut out: ArrayViewMut<'_, T, D>) {
    Zip::from(&mut out).and(&x).for_each(|o, &x| *o = x.tanh());
}

/// `dx (+)= (1 - t²) g`, where `t` is forward's output (the derivative needs only it).
pub fn backward<T: Scalar, D: Dimension>(
    t: ArrayView<'_, T, D>,
    g: ArrayView<'_, T, D>,
    dx: GradOut<'_, T, D>,
) {
    dx.zip2_with(t, g, |t, g| (T::one() - t * t) * g);
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
