//! `sigmoid(x) = 1 / (1 + e^-x)`, elementwise.

use super::GradOut;
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, Dimension, Zip};

/// The logistic function, stable for large `|x|` (no overflow of `e^-x`).
#[inline]
pub fn sigmoid<T: Scalar>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// The derivative of the sigmoid, from its output `s`: `s (1 - s)`.
#[inline]
pub fn derivative<T: Scalar>(s: T) -> T {
    s * (T::one() - s)
}

/// `out = sigmoid(x)`.
pub fn forward<T: Scalar, D: Dimension>(x: ArrayView<'_, T, D>, out: ArrayViewMut<'_, T, D>) {
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
    let z = Zip::from(&mut buf).and(&s).and(&g);
    if accumulate {
        z.for_each(|d, &s, &g| *d = *d + alpha * derivative(s) * g);
    } else {
        z.for_each(|d, &s, &g| *d = alpha * derivative(s) * g);
    }
}
