//! `bce(y, p)`: binary cross-entropy of probabilities `p` against targets `y`, the mean over
//! all elements of `-(y ln p + (1 - y) ln(1 - p))`.
//!
//! `p` is clamped to `[eps, 1 - eps]` with `eps = max(1e-12, machine epsilon)`: `1e-12` for
//! `f64`, `2^-23 ≈ 1.19e-7` for `f32` (where `1 - 1e-12` would round to 1 and `ln(1 - p)` to
//! `-inf`). So the loss is finite even for a saturated `p` of exactly 0 or 1, at most
//! `-ln(eps)` (about 27.6 for `f64`) per element.
//!
//! Backward uses the derivative at the clamped point, `(p_c - y) / (p_c (1 - p_c))`, also for a
//! `p` outside the clamp range (where the clamped loss is flat): a saturated prediction still
//! gets a gradient pointing back into range, as in PyTorch's `BCELoss`. For logits, prefer
//! `bce_logits`, which needs no clamp.
//!
//! As with `mse`, `y` and `p` are paired element by element in logical order and need only
//! hold the same number of elements.

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMutD, Dimension, IxDyn};

/// The clamp bound: `max(1e-12, T::epsilon())`.
pub fn eps<T: Scalar>() -> T {
    let e = T::from_f64(1e-12);
    if T::epsilon() > e {
        T::epsilon()
    } else {
        e
    }
}

/// `p` clamped to `[eps, 1 - eps]` (NaN stays NaN).
#[inline]
pub fn clamp<T: Scalar>(p: T) -> T {
    let e = eps::<T>();
    if p < e {
        e
    } else if p > T::one() - e {
        T::one() - e
    } else {
        p
    }
}

/// The mean of `-(y ln p_c + (1 - y) ln(1 - p_c))`, `p_c` the clamped `p`.
pub fn forward<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    p: ArrayView<'_, T, E>,
) -> T {
    let sum = y.iter().zip(p.iter()).fold(T::zero(), |acc, (&y, &p)| {
        let p = clamp(p);
        acc - (y * p.ln() + (T::one() - y) * (-p).ln_1p())
    });
    sum / T::from_f64(y.len() as f64)
}

/// `dy (+)= (ln(1 - p_c) - ln p_c) / n · g`.
pub fn backward_y<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    p: ArrayView<'_, T, E>,
    g: T,
    dy: GradOut<'_, T, D>,
) {
    let k = g / T::from_f64(y.len() as f64);
    dy.zip2_with(y, p, |_, p| {
        let p = clamp(p);
        k * ((-p).ln_1p() - p.ln())
    });
}

/// `dp (+)= (p_c - y) / (p_c (1 - p_c)) / n · g`.
pub fn backward_p<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    p: ArrayView<'_, T, E>,
    g: T,
    dp: GradOut<'_, T, E>,
) {
    let k = g / T::from_f64(y.len() as f64);
    dp.zip2_with(y, p, |y, p| {
        let p = clamp(p);
        k * (p - y) / (p * (T::one() - p))
    });
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
    let (y, p) = (b.node.arg::<IxDyn>(0)?, b.node.arg::<IxDyn>(1)?);
    if k == 0 {
        backward_y(y, p, b.g_scalar()?, dx);
    } else {
        backward_p(y, p, b.g_scalar()?, dx);
    }
    Ok(())
}
