//! `linear(x, w, b) = x·w + b`, with `x: [m, k]`, `w: [k, n]`, `b: [n]` broadcast over rows.

use super::{matmul, out_rank, sigmoid, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{
    ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Ix1, Ix2, IxDyn, Zip,
};

/// `out = x·w + b`.
pub fn forward<T: Scalar>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    b: ArrayView1<'_, T>,
    out: ArrayViewMut2<'_, T>,
) {
    matmul::nn_bias(x, w, b, out);
}

/// `dx (+)= g·wᵀ`, `dw (+)= xᵀ·g`, `db (+)= Σ_rows g`; pass `None` for a gradient nobody needs.
pub fn backward<T: Scalar>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    g: ArrayView2<'_, T>,
    dx: Option<GradOut<'_, T, Ix2>>,
    dw: Option<GradOut<'_, T, Ix2>>,
    db: Option<GradOut<'_, T, Ix1>>,
) {
    if let Some(dx) = dx {
        backward_x(w, g.view(), dx);
    }
    if let Some(dw) = dw {
        backward_w(x, g.view(), dw);
    }
    if let Some(db) = db {
        backward_b(g, db);
    }
}

/// `dx (+)= g·wᵀ`.
pub fn backward_x<T: Scalar>(w: ArrayView2<'_, T>, g: ArrayView2<'_, T>, dx: GradOut<'_, T, Ix2>) {
    let beta = dx.beta();
    matmul::nt(dx.alpha, g, w, beta, dx.buf);
}

/// `dw (+)= xᵀ·g`.
pub fn backward_w<T: Scalar>(x: ArrayView2<'_, T>, g: ArrayView2<'_, T>, dw: GradOut<'_, T, Ix2>) {
    let beta = dw.beta();
    matmul::tn(dw.alpha, x, g, beta, dw.buf);
}

/// `db (+)= Σ_rows g`.
pub fn backward_b<T: Scalar>(g: ArrayView2<'_, T>, db: GradOut<'_, T, Ix1>) {
    let beta = db.beta();
    matmul::col_sums(db.alpha, g, beta, db.buf);
}

/// The gradient of `linear(s, w, b)` with respect to `l`, where `s = sigmoid(l)` feeds only
/// this linear: `dl (+)= alpha · s (1 - s) ⊙ (g·wᵀ)`, without storing the gradient of `s`.
///
/// Honours the whole [`GradOut`] contract like every backward kernel: a first contribution
/// (`accumulate == false`) is one product written into `dl` then scaled in place; a later one,
/// or an in-place SGD update (`add_scaled`), adds to what `dl` holds, one dot product per
/// element (no scratch buffer, so still no allocation).
pub fn backward_through_sigmoid<T: Scalar>(
    s: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    g: ArrayView2<'_, T>,
    dl: GradOut<'_, T, Ix2>,
) {
    let GradOut {
        mut buf,
        accumulate,
        alpha,
    } = dl;
    if !accumulate {
        matmul::nt(alpha, g, w, T::zero(), buf.view_mut());
        Zip::from(&mut buf)
            .and(&s)
            .for_each(|d, &s| *d = *d * sigmoid::derivative(s));
        return;
    }
    for ((mut d_row, s_row), g_row) in buf.rows_mut().into_iter().zip(s.rows()).zip(g.rows()) {
        for ((d, &s), w_row) in d_row.iter_mut().zip(s_row).zip(w.rows()) {
            let dot = g_row
                .iter()
                .zip(w_row)
                .fold(T::zero(), |acc, (&g, &w)| acc + g * w);
            *d = *d + alpha * (sigmoid::derivative(s) * dot);
        }
    }
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    forward(n.arg(0)?, n.arg(1)?, n.arg(2)?, out_rank(out)?);
    Ok(())
}

/// The runtime graph's backward into node argument `k`.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    match k {
        0 => backward_x(b.node.arg(1)?, b.g()?, dx.into_dim()?),
        1 => backward_w(b.node.arg(0)?, b.g()?, dx.into_dim()?),
        _ => backward_b(b.g()?, dx.into_dim()?),
    }
    Ok(())
}

/// The runtime plan executor's call of [`backward_through_sigmoid`]: `inner` is the fused
/// sigmoid's output, `b` the linear's backward.
pub(crate) fn backward_through_sigmoid_dyn<T: Scalar>(
    inner: ArrayViewD<'_, T>,
    b: &DynBackward<'_, T>,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    let s = inner
        .into_dimensionality::<Ix2>()
        .map_err(|_| KernelError::Malformed {
            what: "a fused sigmoid's output is not a matrix",
        })?;
    backward_through_sigmoid(s, b.node.arg(1)?, b.g()?, dx.into_dim()?);
    Ok(())
}
