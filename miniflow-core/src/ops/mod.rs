//! Op kernels: each op's forward and backward side by side, one module per op.
//!
//! Kernels write into caller-provided buffers and never allocate, so a network whose buffers
//! are sized once trains without touching the heap. They trust their caller on shapes (the
//! `network!` macro proves them at compile time, the runtime graph checks them with
//! [`miniflow_ops::Op::infer_shape`] first) and panic, like `ndarray`'s own arithmetic, if
//! handed buffers that disagree.
//!
//! A backward kernel receives the gradient of the cost with respect to its output (`g`) and
//! adds its contribution to each input's gradient through a [`GradOut`]: a node used by several
//! consumers gets the first contribution written and the rest added, so no buffer is zeroed.

pub mod add;
pub mod linear;
pub mod matmul;
pub mod mse;
pub mod sigmoid;
mod simd;

use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, Dimension, Zip};

/// Where a backward kernel puts its contribution `c`: `buf = alpha·c` (overwrite: the first
/// contribution to a gradient) or `buf += alpha·c` (a later one). `alpha` is 1 for gradients;
/// a fused SGD step passes the param's value as `buf` and `-lr` as `alpha`, so the update
/// happens inside the backward pass and the gradient is never stored.
#[derive(Debug)]
pub struct GradOut<'a, T, D: Dimension> {
    /// The buffer, shaped like the input it is the gradient of.
    pub buf: ArrayViewMut<'a, T, D>,
    /// `false`: overwrite; `true`: add to what is there.
    pub accumulate: bool,
    /// The factor applied to the contribution.
    pub alpha: T,
}

impl<'a, T: Scalar, D: Dimension> GradOut<'a, T, D> {
    /// Overwrite `buf` with the contribution.
    pub fn write(buf: ArrayViewMut<'a, T, D>) -> Self {
        GradOut {
            buf,
            accumulate: false,
            alpha: T::one(),
        }
    }

    /// Add the contribution to `buf`.
    pub fn add(buf: ArrayViewMut<'a, T, D>) -> Self {
        GradOut {
            buf,
            accumulate: true,
            alpha: T::one(),
        }
    }

    /// Add `alpha` times the contribution to `buf` (`alpha = -lr` on a param: an SGD step).
    pub fn add_scaled(buf: ArrayViewMut<'a, T, D>, alpha: T) -> Self {
        GradOut {
            buf,
            accumulate: true,
            alpha,
        }
    }

    /// `beta` for a GEMM writing this output: 0 to overwrite, 1 to accumulate.
    pub(crate) fn beta(&self) -> T {
        if self.accumulate {
            T::one()
        } else {
            T::zero()
        }
    }

    /// Stores `f(s)` for each element `s` of `src`, paired in logical order (same shape, or
    /// as mse pairs a (m,) with a (m,1)).
    pub(crate) fn zip_with<E: Dimension>(self, src: ArrayView<'_, T, E>, f: impl Fn(T) -> T) {
        let GradOut {
            mut buf,
            accumulate,
            alpha,
        } = self;
        if let Some(src) = src
            .view()
            .into_dimensionality::<D>()
            .ok()
            .filter(|s| s.shape() == buf.shape())
        {
            let z = Zip::from(&mut buf).and(&src);
            if accumulate {
                z.for_each(|d, &s| *d = *d + alpha * f(s));
            } else {
                z.for_each(|d, &s| *d = alpha * f(s));
            }
        } else if accumulate {
            buf.iter_mut()
                .zip(src.iter())
                .for_each(|(d, &s)| *d = *d + alpha * f(s));
        } else {
            buf.iter_mut()
                .zip(src.iter())
                .for_each(|(d, &s)| *d = alpha * f(s));
        }
    }
}
