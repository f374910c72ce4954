//! `linear(x, w, b) = x·w + b`, with `x: [m, k]`, `w: [k, n]`, `b: [n]` broadcast over rows.

use super::matmul;
use super::GradOut;
use crate::Scalar;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Zip};

/// `out = x·w + b`.
pub fn forward<T: Scalar>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    b: ArrayView1<'_, T>,
    mut out: ArrayViewMut2<'_, T>,
) {
    // The bias goes in first so the product accumulates onto it: one pass over `out`.
    for mut row in out.rows_mut() {
        row.assign(&b);
    }
    matmul::nn(T::one(), x, w, T::one(), out);
}

/// `dx (+)= g·wᵀ`, `dw (+)= xᵀ·g`, `db (+)= Σ_rows g`; pass `None` for a gradient nobody needs.
pub fn backward<T: Scalar>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    g: ArrayView2<'_, T>,
    dx: Option<GradOut<'_, T, ndarray::Ix2>>,
    dw: Option<GradOut<'_, T, ndarray::Ix2>>,
    db: Option<GradOut<'_, T, ndarray::Ix1>>,
) {
    let beta = |acc: bool| if acc { T::one() } else { T::zero() };
    if let Some(GradOut {
        mut buf,
        accumulate,
    }) = dx
    {
        matmul::nt(T::one(), g, w, beta(accumulate), buf);
    }
    if let Some(GradOut {
        mut buf,
        accumulate,
    }) = dw
    {
        matmul::tn(T::one(), x, g, beta(accumulate), buf);
    }
    if let Some(GradOut {
        mut buf,
        accumulate,
    }) = db
    {
        if !accumulate {
            buf.fill(T::zero());
        }
        for row in g.rows() {
            Zip::from(&mut buf).and(&row).for_each(|d, &g| *d = *d + g);
        }
    }
}
