//! `linear(x, w, b) = x·w + b`, with `x: [m, k]`, `w: [k, n]`, `b: [n]` broadcast over rows.

use super::simd::multiversion;
use super::{gemm, matmul, out_rank, sigmoid, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayViewMut2, ArrayViewMutD, Ix1, Ix2, IxDyn, Zip};

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
/// (`accumulate == false`) overwrites `dl` without reading it; a later one, or an in-place SGD
/// update (`add_scaled`), adds `alpha` times the contribution to what `dl` holds.
///
/// A linear with one output (`w: [k, 1]`, the last layer of a regressor) makes `g·wᵀ` an
/// outer product: then the whole gradient is one fused loop over `dl`, reading `s` once. A
/// wider one computes the product with the GEMM, into `dl` (overwrite) or into a per-thread
/// scratch buffer (accumulate, so `dl` is read only to add to it), then applies the
/// derivative in one pass.
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
    let k = s.ncols();
    if w.ncols() == 1 && s.shape() == buf.shape() {
        if let (Some(ss), Some(ws), Some(gs), Some(ds)) =
            (s.as_slice(), w.as_slice(), g.as_slice(), buf.as_slice_mut())
        {
            return through_sigmoid_outer(ss, ws, gs, ds, k, accumulate, alpha);
        }
    }
    if !accumulate {
        matmul::nt(alpha, g, w, T::zero(), buf.view_mut());
        Zip::from(&mut buf)
            .and(&s)
            .for_each(|d, &s| *d = *d * sigmoid::derivative(s));
        return;
    }
    gemm::with_scratch::<T, _>(buf.len(), |scratch| {
        let mut t = ArrayViewMut2::from_shape(buf.raw_dim(), scratch)
            .unwrap_or_else(|_| unreachable!("the scratch holds buf.len() elements"));
        matmul::nt(T::one(), g, w, T::zero(), t.view_mut());
        Zip::from(&mut buf)
            .and(&s)
            .and(&t)
            .for_each(|d, &s, &t| *d = *d + alpha * (sigmoid::derivative(s) * t));
    });
}

multiversion!(
    /// `dl[i, j] (+)= alpha · s(1 - s)[i, j] · g[i]·w[j]`, row by row (`w` and `g` vectors).
    fn through_sigmoid_outer<T: Scalar, V, FMA>(
        s: &[T],
        w: &[T],
        g: &[T],
        dl: &mut [T],
        k: usize,
        accumulate: bool,
        alpha: T,
    ) {
        let w = &w[..k];
        for ((srow, drow), &gi) in s.chunks_exact(k).zip(dl.chunks_exact_mut(k)).zip(g) {
            let ag = alpha * gi;
            let it = drow.iter_mut().zip(srow).zip(w);
            if accumulate {
                it.for_each(|((d, &s), &w)| *d = *d + sigmoid::derivative(s) * (ag * w));
            } else {
                it.for_each(|((d, &s), &w)| *d = sigmoid::derivative(s) * (ag * w));
            }
        }
    }
);

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
    inner: &ArrayD<T>,
    b: &DynBackward<'_, T>,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    let s = inner
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| KernelError::Malformed {
            what: "a fused sigmoid's output is not a matrix",
        })?;
    backward_through_sigmoid(s, b.node.arg(1)?, b.g()?, dx.into_dim()?);
    Ok(())
}
