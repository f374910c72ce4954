//! `mse(y, a) = mean((y - a)²)`: the mean squared error over all elements.
//!
//! As in the seed, `y` and `a` are compared element by element in logical order, as if both
//! were reshaped to `(m, 1)`: a `(m,)` target and an `(m, 1)` prediction never broadcast to
//! `(m, m)`. They must hold the same number of elements `m`.

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMutD, Dimension, IxDyn};

/// The mean of `(y - a)²`.
pub fn forward<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    a: ArrayView<'_, T, E>,
) -> T {
    let m = T::from_f64(y.len() as f64);
    let term = |acc: T, (&y, &a): (&T, &T)| acc + (y - a) * (y - a);
    // Contiguous operands (the usual case) as slices: the same sum, in the same order,
    // without ndarray's iterators.
    let sum = match (y.as_slice(), a.as_slice()) {
        (Some(ys), Some(as_)) => ys.iter().zip(as_).fold(T::zero(), term),
        _ => y.iter().zip(a.iter()).fold(T::zero(), term),
    };
    sum / m
}

/// `dy (+)= (2/m)(y - a) g` and `da (+)= -(2/m)(y - a) g`, with `g` the cost's gradient with
/// respect to the loss (1 when the mse is the cost).
pub fn backward<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    a: ArrayView<'_, T, E>,
    g: T,
    dy: Option<GradOut<'_, T, D>>,
    da: Option<GradOut<'_, T, E>>,
) {
    let k = T::from_f64(2.0) / T::from_f64(y.len() as f64) * g;
    if let (Some(ys), Some(as_)) = (y.as_slice(), a.as_slice()) {
        // Contiguous operands: plain loops over slices (elements paired in logical order,
        // as below).
        if let Some(dy) = dy {
            slices(dy, ys, as_, |y, a| k * (y - a));
        }
        if let Some(da) = da {
            slices(da, ys, as_, |y, a| -k * (y - a));
        }
        return;
    }
    if let Some(dy) = dy {
        dy.zip2_with(y.view(), a.view(), |y, a| k * (y - a));
    }
    if let Some(da) = da {
        da.zip2_with(y, a, |y, a| -k * (y - a));
    }
}

/// `out (+)= alpha·f(y, a)` elementwise, in logical order, for contiguous `y` and `a`.
fn slices<T: Scalar, D: Dimension>(
    out: GradOut<'_, T, D>,
    y: &[T],
    a: &[T],
    f: impl Fn(T, T) -> T,
) {
    let GradOut {
        mut buf,
        accumulate,
        alpha,
    } = out;
    if let Some(d) = buf.as_slice_mut() {
        let it = d.iter_mut().zip(y.iter().zip(a));
        if accumulate {
            it.for_each(|(d, (&y, &a))| *d = *d + alpha * f(y, a));
        } else {
            it.for_each(|(d, (&y, &a))| *d = alpha * f(y, a));
        }
    } else {
        let it = buf.iter_mut().zip(y.iter().zip(a));
        if accumulate {
            it.for_each(|(d, (&y, &a))| *d = *d + alpha * f(y, a));
        } else {
            it.for_each(|(d, (&y, &a))| *d = alpha * f(y, a));
        }
    }
}

/// `dy (+)= (2/m)(y - a) g` alone (what `network!` calls for the gradient of `y`).
#[inline]
pub fn backward_y<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    a: ArrayView<'_, T, E>,
    g: T,
    dy: GradOut<'_, T, D>,
) {
    backward(y, a, g, Some(dy), None::<GradOut<'_, T, E>>);
}

/// `da (+)= -(2/m)(y - a) g` alone (what `network!` calls for the gradient of `a`).
#[inline]
pub fn backward_a<T: Scalar, D: Dimension, E: Dimension>(
    y: ArrayView<'_, T, D>,
    a: ArrayView<'_, T, E>,
    g: T,
    da: GradOut<'_, T, E>,
) {
    backward(y, a, g, None::<GradOut<'_, T, D>>, Some(da));
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
    let (y, a) = (b.node.arg::<IxDyn>(0)?, b.node.arg::<IxDyn>(1)?);
    if k == 0 {
        backward_y(y, a, b.g_scalar()?, dx);
    } else {
        backward_a(y, a, b.g_scalar()?, dx);
    }
    Ok(())
}
