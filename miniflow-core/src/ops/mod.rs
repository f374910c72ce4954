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

use crate::Scalar;
use ndarray::{ArrayViewMut, Dimension, Zip};

/// A gradient buffer a backward kernel writes into, and whether it overwrites or accumulates.
#[derive(Debug)]
pub struct GradOut<'a, T, D: Dimension> {
    /// The buffer, shaped like the input it is the gradient of.
    pub buf: ArrayViewMut<'a, T, D>,
    /// `false`: overwrite (the first contribution); `true`: add to what is there.
    pub accumulate: bool,
}

impl<'a, T: Scalar, D: Dimension> GradOut<'a, T, D> {
    /// Overwrite `buf` with the contribution.
    pub fn write(buf: ArrayViewMut<'a, T, D>) -> Self {
        GradOut {
            buf,
            accumulate: false,
        }
    }

    /// Add the contribution to `buf`.
    pub fn add(buf: ArrayViewMut<'a, T, D>) -> Self {
        GradOut {
            buf,
            accumulate: true,
        }
    }

    /// Stores `f(i)` for each element, in the buffer's logical order zipped with `src`.
    pub(crate) fn zip_with<E: Dimension>(
        mut self,
        src: ndarray::ArrayView<'_, T, E>,
        f: impl Fn(T) -> T,
    ) {
        // Same shape: one fused pass. Different shapes of one size (mse's (m,) vs (m,1)):
        // pair elements in logical order, as the seed's reshape does.
        if let Some(src) = src
            .view()
            .into_dimensionality::<D>()
            .ok()
            .filter(|s| s.shape() == self.buf.shape())
        {
            let z = Zip::from(&mut self.buf).and(&src);
            if self.accumulate {
                z.for_each(|d, &s| *d = *d + f(s));
            } else {
                z.for_each(|d, &s| *d = f(s));
            }
        } else if self.accumulate {
            self.buf
                .iter_mut()
                .zip(src.iter())
                .for_each(|(d, &s)| *d = *d + f(s));
        } else {
            self.buf
                .iter_mut()
                .zip(src.iter())
                .for_each(|(d, &s)| *d = f(s));
        }
    }
}
