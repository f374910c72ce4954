//! The three matrix products `linear` needs (`a·b`, `a·bᵀ`, `aᵀ·b`), each accumulating
//! `c = beta·c + alpha·product` into a caller's buffer; and the `matmul(a, b) = a·b` op
//! ([`forward`], [`backward_a`], [`backward_b`]), built on the same products.
//!
//! Small products (the course's 13x10 layer) run plain loops over contiguous rows: a packed
//! GEMM's setup (packing buffers, an allocation per call) costs more than the product itself
//! there. Large products go to `ndarray`'s GEMM (`matrixmultiply`, with runtime-detected
//! AVX2/AVX-512 kernels). The small loops are compiled twice, and the AVX2+FMA copy is chosen
//! at run time when the CPU has it, so they vectorize without `-C target-cpu`.

use super::{out_rank, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ArrayViewMutD, Ix2, IxDyn};

/// Products with at most this many multiply-adds use the small loops. Chosen by measurement
/// (`cargo bench --bench matmul`): beyond it the packed GEMM wins.
pub const SMALL_MACS: usize = 48 * 48 * 48;

/// `c = beta·c + alpha·(a·b)`; `beta` is 0 or 1 (0: `c` is overwritten, never read).
pub fn nn<T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if (1..=SMALL_MACS).contains(&(m * k * n)) {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            return dispatch::nn(alpha, a, b, beta, c, m, k, n);
        }
    }
    general_mat_mul(alpha, &a, &b, beta, &mut c);
}

/// `c = a·b + bias`, the bias broadcast over rows (linear's forward in one pass).
pub fn nn_bias<T: Scalar>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    bias: ArrayView1<'_, T>,
    mut c: ArrayViewMut2<'_, T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if (1..=SMALL_MACS).contains(&(m * k * n)) {
        if let (Some(a), Some(b), Some(bias), Some(c)) = (
            a.as_slice(),
            b.as_slice(),
            bias.as_slice(),
            c.as_slice_mut(),
        ) {
            return dispatch::nn_bias(a, b, bias, c, m, k, n);
        }
    }
    for mut row in c.rows_mut() {
        row.assign(&bias);
    }
    general_mat_mul(T::one(), &a, &b, T::one(), &mut c);
}

/// `c = beta·c + alpha·(a·bᵀ)`.
pub fn nt<T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let (m, n) = a.dim();
    let k = b.nrows();
    if (1..=SMALL_MACS).contains(&(m * k * n)) {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            return dispatch::nt(alpha, a, b, beta, c, m, k, n);
        }
    }
    general_mat_mul(alpha, &a, &b.t(), beta, &mut c);
}

/// `c = beta·c + alpha·(aᵀ·b)`.
pub fn tn<T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if (1..=SMALL_MACS).contains(&(m * k * n)) {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            return dispatch::tn(alpha, a, b, beta, c, m, k, n);
        }
    }
    general_mat_mul(alpha, &a.t(), &b, beta, &mut c);
}

/// `out = beta·out + alpha·Σ_rows a`: the column sums of `a` (a bias gradient).
pub fn col_sums<T: Scalar>(alpha: T, a: ArrayView2<'_, T>, beta: T, mut out: ArrayViewMut1<'_, T>) {
    let (m, n) = a.dim();
    if let (Some(a), Some(c)) = (a.as_slice(), out.as_slice_mut()) {
        if m * n > 0 {
            return dispatch::col_sums(alpha, a, beta, c, m, n);
        }
    }
    if beta == T::zero() {
        out.fill(T::zero());
    } else {
        out.mapv_inplace(|v| beta * v);
    }
    for row in a.rows() {
        out.zip_mut_with(&row, |o, &r| *o = *o + alpha * r);
    }
}

/// The `matmul` op: `out = a·b`, for `a: [m, k]`, `b: [k, n]`, `out: [m, n]`.
pub fn forward<T: Scalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>, out: ArrayViewMut2<'_, T>) {
    nn(T::one(), a, b, T::zero(), out);
}

/// `da (+)= g·bᵀ`, the `matmul` op's gradient with respect to `a`.
pub fn backward_a<T: Scalar>(b: ArrayView2<'_, T>, g: ArrayView2<'_, T>, da: GradOut<'_, T, Ix2>) {
    let beta = da.beta();
    nt(da.alpha, g, b, beta, da.buf);
}

/// `db (+)= aᵀ·g`, the `matmul` op's gradient with respect to `b`.
pub fn backward_b<T: Scalar>(a: ArrayView2<'_, T>, g: ArrayView2<'_, T>, db: GradOut<'_, T, Ix2>) {
    let beta = db.beta();
    tn(db.alpha, a, g, beta, db.buf);
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    forward(n.arg(0)?, n.arg(1)?, out_rank(out)?);
    Ok(())
}

/// The runtime graph's backward into node argument `k`.
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    if k == 0 {
        backward_a(b.node.arg(1)?, b.g()?, dx.into_dim()?);
    } else {
        backward_b(b.node.arg(0)?, b.g()?, dx.into_dim()?);
    }
    Ok(())
}

/// The loops, on row-major slices. `#[inline(always)]` so each lands, vectorized, in the
/// feature-specific copies `dispatch` makes; `FMA` says whether that copy has fused
/// multiply-add.
mod loops {
    use crate::ops::simd::madd;
    use crate::Scalar;

    /// Columns per block (two AVX2 registers of f64, one of f32).
    const W: usize = 8;

    #[inline(always)]
    fn store<T: Scalar>(c: &mut T, beta: T, alpha: T, acc: T) {
        *c = if beta == T::zero() {
            alpha * acc
        } else {
            beta * *c + alpha * acc
        };
    }

    /// How a block of sums lands in `c`: `c = beta·c + alpha·(init + Σ)`, where `init` is a
    /// bias row broadcast over the rows of `c` (or zero).
    #[derive(Clone, Copy)]
    pub struct Out<'a, T> {
        pub alpha: T,
        pub beta: T,
        pub init: Option<&'a [T]>,
    }

    impl<T: Scalar> Out<'_, T> {
        pub fn scaled(alpha: T, beta: T) -> Self {
            Out {
                alpha,
                beta,
                init: None,
            }
        }
    }

    /// Stores one row of sums: `c = beta·c + alpha·acc` for the columns from `skip` on.
    #[inline(always)]
    fn put_row<T: Scalar>(out: Out<'_, T>, crow: &mut [T], acc: &[T], skip: usize) {
        for (l, (cv, &a)) in crow.iter_mut().zip(acc).enumerate() {
            let new = if out.beta == T::zero() {
                out.alpha * a
            } else {
                out.beta * *cv + out.alpha * a
            };
            *cv = if l >= skip { new } else { *cv };
        }
    }

    /// Every row of `c[rows×N]` for a width `N` known at compile time (the small layers):
    /// `c[i][j] = beta·c[i][j] + alpha·(init[j] + Σ_t coef(i, t)·row(t)[j])`. With `N` fixed,
    /// the row of sums lives in registers for the whole reduction and is stored once.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn rows_fixed<'a, T: Scalar, const N: usize, const FMA: bool>(
        out: Out<'_, T>,
        c: &mut [T],
        terms: usize,
        coef: impl Fn(usize, usize) -> T,
        row: impl Fn(usize) -> &'a [T],
    ) {
        for (i, crow) in c.chunks_exact_mut(N).enumerate() {
            let mut acc = [T::zero(); N];
            if let Some(b) = out.init {
                acc.copy_from_slice(&b[..N]);
            }
            for t in 0..terms {
                let (f, r) = (coef(i, t), &row(t)[..N]);
                for l in 0..N {
                    acc[l] = madd::<T, FMA>(f, r[l], acc[l]);
                }
            }
            put_row(out, crow, &acc, 0);
        }
    }

    /// Every row of `c[rows×n]`, any `n`: blocks of W sums, each accumulated over every term
    /// and stored once; the last block is shifted left to end at `n` (overlapping its
    /// neighbour) and keeps the columns already stored, so no column falls to scalar code.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn rows_blocked<'a, T: Scalar, const FMA: bool>(
        out: Out<'_, T>,
        c: &mut [T],
        n: usize,
        terms: usize,
        coef: impl Fn(usize, usize) -> T,
        row: impl Fn(usize) -> &'a [T],
    ) {
        for (i, crow) in c.chunks_exact_mut(n).enumerate() {
            let mut done = 0;
            while done < n {
                let j = done.min(n - W);
                let mut acc = [T::zero(); W];
                if let Some(b) = out.init {
                    acc.copy_from_slice(&b[j..j + W]);
                }
                for t in 0..terms {
                    let (f, r) = (coef(i, t), &row(t)[j..j + W]);
                    for l in 0..W {
                        acc[l] = madd::<T, FMA>(f, r[l], acc[l]);
                    }
                }
                put_row(out, &mut crow[j..j + W], &acc, done - j);
                done = j + W;
            }
        }
    }

    /// Every row of `c[rows×n]`: `c[i][j] = beta·c[i][j] + alpha·(init[j] +
    /// Σ_t coef(i, t)·row(t)[j])`, with a kernel specialised to `n` for the widths of small
    /// layers.
    #[inline(always)]
    fn combine<'a, T: Scalar, const FMA: bool>(
        out: Out<'_, T>,
        c: &mut [T],
        n: usize,
        terms: usize,
        coef: impl Fn(usize, usize) -> T,
        row: impl Fn(usize) -> &'a [T],
    ) {
        macro_rules! widths {
            ($($w:literal)*) => {
                match n {
                    $($w => rows_fixed::<T, $w, FMA>(out, c, terms, coef, row),)*
                    _ => rows_blocked::<T, FMA>(out, c, n, terms, coef, row),
                }
            };
        }
        widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
    }

    /// A dot product with eight independent partial sums, so it vectorizes without
    /// reassociating one sum.
    #[inline(always)]
    fn dot<T: Scalar, const FMA: bool>(x: &[T], y: &[T]) -> T {
        let mut acc = [T::zero(); W];
        let (xc, yc) = (x.chunks_exact(W), y.chunks_exact(W));
        let (xr, yr) = (xc.remainder(), yc.remainder());
        for (x, y) in xc.zip(yc) {
            for l in 0..W {
                acc[l] = madd::<T, FMA>(x[l], y[l], acc[l]);
            }
        }
        let mut sum = T::zero();
        for (&x, &y) in xr.iter().zip(yr) {
            sum = madd::<T, FMA>(x, y, sum);
        }
        let pairs = [
            acc[0] + acc[4],
            acc[1] + acc[5],
            acc[2] + acc[6],
            acc[3] + acc[7],
        ];
        sum + (pairs[0] + pairs[2]) + (pairs[1] + pairs[3])
    }

    /// `c[m×n] = beta·c + alpha·a[m×k]·b[k×n]`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn nn<T: Scalar, const FMA: bool>(
        alpha: T,
        a: &[T],
        b: &[T],
        beta: T,
        c: &mut [T],
        _m: usize,
        k: usize,
        n: usize,
    ) {
        if n == 1 {
            // A matrix-vector product: one dot per row.
            for (arow, cv) in a.chunks_exact(k).zip(c.iter_mut()) {
                store(cv, beta, alpha, dot::<T, FMA>(arow, b));
            }
            return;
        }
        let coef = |i: usize, p: usize| a[i * k + p];
        combine::<T, FMA>(Out::scaled(alpha, beta), c, n, k, coef, |p| {
            &b[p * n..(p + 1) * n]
        });
    }

    /// `c[m×n] = a[m×k]·b[k×n] + bias[n]` (bias broadcast over rows), in one pass.
    #[inline(always)]
    pub fn nn_bias<T: Scalar, const FMA: bool>(
        a: &[T],
        b: &[T],
        bias: &[T],
        c: &mut [T],
        _m: usize,
        k: usize,
        n: usize,
    ) {
        if n == 1 {
            for (arow, cv) in a.chunks_exact(k).zip(c.iter_mut()) {
                *cv = bias[0] + dot::<T, FMA>(arow, b);
            }
            return;
        }
        let out = Out {
            alpha: T::one(),
            beta: T::zero(),
            init: Some(bias),
        };
        let coef = |i: usize, p: usize| a[i * k + p];
        combine::<T, FMA>(out, c, n, k, coef, |p| &b[p * n..(p + 1) * n]);
    }

    /// `c[m×k] = beta·c + alpha·a[m×n]·b[k×n]ᵀ`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn nt<T: Scalar, const FMA: bool>(
        alpha: T,
        a: &[T],
        b: &[T],
        beta: T,
        c: &mut [T],
        _m: usize,
        k: usize,
        n: usize,
    ) {
        if n == 1 {
            // An outer product: row i of c is a[i]·b.
            combine::<T, FMA>(Out::scaled(alpha, beta), c, k, 1, |i, _| a[i], |_| b);
            return;
        }
        for (arow, crow) in a.chunks_exact(n).zip(c.chunks_exact_mut(k)) {
            for (cv, brow) in crow.iter_mut().zip(b.chunks_exact(n)) {
                store(cv, beta, alpha, dot::<T, FMA>(arow, brow));
            }
        }
    }

    /// `c[k×n] = beta·c + alpha·a[m×k]ᵀ·b[m×n]`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn tn<T: Scalar, const FMA: bool>(
        alpha: T,
        a: &[T],
        b: &[T],
        beta: T,
        c: &mut [T],
        m: usize,
        k: usize,
        n: usize,
    ) {
        if n == 1 {
            // c is a vector: c = Σ_i b[i]·a[i, :], vectorized along a's rows.
            let rows = |i: usize| &a[i * k..(i + 1) * k];
            combine::<T, FMA>(Out::scaled(alpha, beta), c, k, m, |_, i| b[i], rows);
            return;
        }
        let coef = |p: usize, i: usize| a[i * k + p];
        combine::<T, FMA>(Out::scaled(alpha, beta), c, n, m, coef, |i| {
            &b[i * n..(i + 1) * n]
        });
    }

    /// `c[n] = beta·c + alpha·Σ_i a[i, :]` for `a[m×n]`.
    #[inline(always)]
    pub fn col_sums<T: Scalar, const FMA: bool>(
        alpha: T,
        a: &[T],
        beta: T,
        c: &mut [T],
        m: usize,
        n: usize,
    ) {
        let rows = |i: usize| &a[i * n..(i + 1) * n];
        combine::<T, FMA>(Out::scaled(alpha, beta), c, n, m, |_, _| T::one(), rows);
    }
}

/// The loops, each in a baseline and an AVX2+FMA copy.
mod dispatch {
    use super::loops;
    use crate::ops::simd::multiversion;

    multiversion!(
        fn nn<T: Scalar, FMA>(
            alpha: T,
            a: &[T],
            b: &[T],
            beta: T,
            c: &mut [T],
            m: usize,
            k: usize,
            n: usize,
        ) {
            loops::nn::<T, FMA>(alpha, a, b, beta, c, m, k, n)
        }
    );
    multiversion!(
        fn nn_bias<T: Scalar, FMA>(
            a: &[T],
            b: &[T],
            bias: &[T],
            c: &mut [T],
            m: usize,
            k: usize,
            n: usize,
        ) {
            loops::nn_bias::<T, FMA>(a, b, bias, c, m, k, n)
        }
    );
    multiversion!(
        fn nt<T: Scalar, FMA>(
            alpha: T,
            a: &[T],
            b: &[T],
            beta: T,
            c: &mut [T],
            m: usize,
            k: usize,
            n: usize,
        ) {
            loops::nt::<T, FMA>(alpha, a, b, beta, c, m, k, n)
        }
    );
    multiversion!(
        fn tn<T: Scalar, FMA>(
            alpha: T,
            a: &[T],
            b: &[T],
            beta: T,
            c: &mut [T],
            m: usize,
            k: usize,
            n: usize,
        ) {
            loops::tn::<T, FMA>(alpha, a, b, beta, c, m, k, n)
        }
    );
    multiversion!(
        fn col_sums<T: Scalar, FMA>(alpha: T, a: &[T], beta: T, c: &mut [T], m: usize, n: usize) {
            loops::col_sums::<T, FMA>(alpha, a, beta, c, m, n)
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    fn filled(m: usize, n: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((m, n), |(i, j)| {
            ((i * 7 + j * 3) as f64 * 0.37 + seed).sin()
        })
    }

    /// Every path (small loops, GEMM, non-contiguous fallback) against ndarray's `dot`.
    #[test]
    fn products_match_dot_on_every_path() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (11, 13, 10),
            (11, 10, 1),
            (3, 9, 17),
            (60, 70, 50),
        ] {
            let a = filled(m, k, 0.1);
            let b = filled(k, n, 0.2);
            let bt = b.t().to_owned();
            let at = a.t().to_owned();
            let c0 = filled(m, n, 0.3);
            for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.5, 1.0)] {
                let want = &c0 * beta + &(a.dot(&b) * alpha);
                let mut c = c0.clone();
                nn(alpha, a.view(), b.view(), beta, c.view_mut());
                assert!(
                    (&c - &want).iter().all(|d| d.abs() < 1e-10),
                    "nn {m}x{k}x{n}"
                );
                let mut c = c0.clone();
                nt(alpha, a.view(), bt.view(), beta, c.view_mut());
                assert!(
                    (&c - &want).iter().all(|d| d.abs() < 1e-10),
                    "nt {m}x{k}x{n}"
                );
                let mut c = c0.clone();
                tn(alpha, at.view(), b.view(), beta, c.view_mut());
                assert!(
                    (&c - &want).iter().all(|d| d.abs() < 1e-10),
                    "tn {m}x{k}x{n}"
                );
                let mut cf = Array2::zeros((m, n).f());
                cf.assign(&c0);
                nn(alpha, a.view(), b.view(), beta, cf.view_mut());
                assert!(
                    (&cf - &want).iter().all(|d| d.abs() < 1e-10),
                    "column-major c"
                );
            }
        }
    }

    #[test]
    fn column_sums_match_sum_axis() {
        for &(m, n) in &[(1, 1), (11, 10), (5, 17), (3, 8)] {
            let a = filled(m, n, 0.4);
            let want = a.sum_axis(ndarray::Axis(0));
            let mut out = ndarray::Array1::from_elem(n, f64::NAN);
            col_sums(1.0, a.view(), 0.0, out.view_mut());
            assert!((&out - &want).iter().all(|d| d.abs() < 1e-12), "{m}x{n}");
            col_sums(-2.0, a.view(), 1.0, out.view_mut());
            assert!(
                (&out + &want).iter().all(|d| d.abs() < 1e-12),
                "{m}x{n} accumulate"
            );
            let t = a.t();
            let mut out2 = ndarray::Array1::zeros(m);
            col_sums(1.0, t, 0.0, out2.view_mut());
            assert!((&out2 - &a.sum_axis(ndarray::Axis(1)))
                .iter()
                .all(|d| d.abs() < 1e-12));
        }
    }

    #[test]
    fn product_with_bias_matches() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (11, 13, 10),
            (11, 10, 1),
            (7, 3, 9),
            (60, 70, 50),
        ] {
            let (a, b) = (filled(m, k, 0.1), filled(k, n, 0.2));
            let bias = filled(1, n, 0.5).remove_axis(ndarray::Axis(0));
            let mut c = Array2::from_elem((m, n), f64::NAN);
            nn_bias(a.view(), b.view(), bias.view(), c.view_mut());
            let want = a.dot(&b) + &bias;
            assert!((&c - &want).iter().all(|d| d.abs() < 1e-10), "{m}x{k}x{n}");
        }
    }

    #[test]
    fn beta_zero_ignores_garbage() {
        let a = filled(4, 3, 0.1);
        let b = filled(3, 2, 0.2);
        let mut c = Array2::from_elem((4, 2), f64::NAN);
        nn(1.0, a.view(), b.view(), 0.0, c.view_mut());
        assert!((&c - &a.dot(&b)).iter().all(|d| d.abs() < 1e-12));
    }
}
