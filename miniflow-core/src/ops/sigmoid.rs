//! `sigmoid(x) = 1 / (1 + e^-x)`, elementwise.

use super::simd::{self, multiversion, Vek};
use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn, Zip};

/// The logistic function. Stable for any `x`: `e^-x` is clamped before it could overflow, and
/// results below the smallest normal number are flushed to 0 (`sigmoid(-1000) == 0`,
/// `sigmoid(1000) == 1`, never NaN for finite `x`). Branch-free, so loops of it vectorize.
#[inline(always)]
pub fn sigmoid<T: Scalar>(x: T) -> T {
    sigmoid_with::<T, false>(x)
}

#[inline(always)]
fn sigmoid_with<T: Scalar, const FMA: bool>(x: T) -> T {
    let s = T::one() / (T::one() + (-x).exp_clamped_with::<FMA>());
    if s < T::min_positive_value() {
        T::zero()
    } else {
        s
    }
}

/// The derivative of the sigmoid, from its output `s`: `s (1 - s)`.
#[inline(always)]
pub fn derivative<T: Scalar>(s: T) -> T {
    s * (T::one() - s)
}

/// The sigmoid of a register: the same algorithm as [`sigmoid`] (its `exp` within 2 ulp).
#[inline(always)]
pub(crate) fn sigmoid_vek<T: Scalar, V: Vek<T>>(x: V) -> V {
    let one = V::splat(T::one());
    let e = simd::exp_clamped::<T, V>(V::zero().sub(x));
    one.div(one.add(e))
        .zero_below(V::splat(T::min_positive_value()))
}

/// [`sigmoid_vek`] as a [`Lanewise`](simd::Lanewise) function.
#[derive(Clone, Copy)]
struct Sigmoid;

impl<T: Scalar> simd::Lanewise<T> for Sigmoid {
    #[inline(always)]
    fn apply<V: Vek<T>>(self, x: V) -> V {
        sigmoid_vek::<T, V>(x)
    }
}

multiversion!(
    fn forward_slice<T: Scalar, V, FMA>(x: &[T], out: &mut [T]) {
        simd::map::<T, V, _>(x, out, Sigmoid);
    }
);

multiversion!(
    fn backward_slice<T: Scalar, V, FMA>(
        s: &[T],
        g: &[T],
        dx: &mut [T],
        accumulate: bool,
        alpha: T,
    ) {
        let it = dx.iter_mut().zip(s.iter().zip(g));
        if accumulate {
            it.for_each(|(d, (&s, &g))| *d = *d + alpha * derivative(s) * g);
        } else {
            it.for_each(|(d, (&s, &g))| *d = alpha * derivative(s) * g);
        }
    }
);

/// `out = sigmoid(x)`.
pub fn forward<T: Scalar, D: Dimension>(x: ArrayView<'_, T, D>, mut out: ArrayViewMut<'_, T, D>) {
    if x.shape() == out.shape() {
        if let (Some(xs), Some(os)) = (x.as_slice(), out.as_slice_mut()) {
            return forward_slice(xs, os);
        }
    }
    Zip::from(out).and(&x).for_each(|o, &x| *o = sigmoid(x));
}

/// `dx (+)= s (1 - s) g`, where `s` is forward's output (the derivative needs only it).
pub fn backward<T: Scalar, D: Dimension>(
    s: ArrayView<'_, T, D>,
    g: ArrayView<'_, T, D>,
    dx: GradOut<'_, T, D>,
) {
    let GradOut {
        mut buf,
        accumulate,
        alpha,
    } = dx;
    if s.shape() == buf.shape() && g.shape() == buf.shape() {
        if let (Some(ss), Some(gs), Some(ds)) = (s.as_slice(), g.as_slice(), buf.as_slice_mut()) {
            return backward_slice(ss, gs, ds, accumulate, alpha);
        }
    }
    let z = Zip::from(&mut buf).and(&s).and(&g);
    if accumulate {
        z.for_each(|d, &s, &g| *d = *d + alpha * derivative(s) * g);
    } else {
        z.for_each(|d, &s, &g| *d = alpha * derivative(s) * g);
    }
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
