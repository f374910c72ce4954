//! The three matrix products `linear` needs (`a·b`, `a·bᵀ`, `aᵀ·b`), each accumulating
//! `c = beta·c + alpha·product` into a caller's buffer; and the `matmul(a, b) = a·b` op
//! ([`forward`], [`backward_a`], [`backward_b`]), built on the same products.
//!
//! Each product picks its kernel by shape, not by size alone:
//!
//! - **vector-shaped** products (a dimension of 1: a matrix-vector product, an outer
//!   product, a sum of scaled rows) run one streaming loop, whatever their size: a packed
//!   GEMM would pad the unit dimension to a whole register tile and repack the other
//!   operand for nothing;
//! - **small** products (up to [`SMALL_MACS`] multiply-adds, or an output at most 16 wide
//!   with at most 64 terms per sum: the course's 13x10 layer at any batch) run plain loops
//!   over contiguous rows, specialised by output width so a row of sums stays in registers:
//!   a packed GEMM's setup costs more than the product there. On AVX-512 CPUs these run
//!   their AVX2 copy (`multiversion!(ymm; ...)`): on a Zen 4 the AVX-512 copy was 10-20%
//!   slower at the course's shapes;
//! - the rest run the packed GEMM of `ops::gemm` (register-tiled micro-kernels for AVX-512,
//!   AVX2+FMA and portable code).
//!
//! Every loop is compiled once per [`SimdLevel`](super::SimdLevel) and chosen at run time.

use super::gemm::{self, Blocking, Epi, Mat, Out};
use super::small;
use super::{out_rank, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ArrayViewMutD, Ix2, IxDyn};

/// Products with at most this many multiply-adds use the small loops. Chosen by measurement
/// (`cargo bench --bench step`, and 32³..64³ products): beyond it the packed GEMM wins.
pub const SMALL_MACS: usize = 48 * 48 * 48;

/// Outputs at most this wide with few terms per sum use the small loops at any number of
/// rows (the course's network at batch 16,384: `[16384, 13]·[13, 10]`): each row of sums
/// fits in registers and its few terms leave no time for a GEMM's packing to pay. With
/// more terms (`[64, 256]·[256, 16]`) the GEMM's 8-row tiles win (26 vs 48 µs a step), as
/// they do for every `aᵀ·b` (whose sum runs over the batch).
const NARROW: usize = 16;

/// Whether `a[m×k]·b[k×n]` runs the small loops.
fn small(m: usize, k: usize, n: usize) -> bool {
    m * k * n <= SMALL_MACS || (n <= NARROW && k <= 64)
}

/// Dot products at least this long use the explicit multi-register kernel
/// ([`small::dots`]); shorter ones the plain loops.
const LONG_DOT: usize = 32;

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
    if m * k * n > 0 {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            if n == 1 && k >= LONG_DOT {
                // A matrix-vector product: a dot per row.
                return small::dots(alpha, beta, c, 1, m, k, a, k, b, T::zero());
            }
            if m == 1 && k * n > SMALL_MACS {
                // A row times a matrix: c = Σ_p a[p]·b[p, :].
                return dispatch::rows_sum(alpha, beta, c, k, Some(a), b, n);
            }
            if n == 1 || k == 1 || small(m, k, n) {
                return dispatch::nn(alpha, a, b, beta, c, m, k, n);
            }
        }
    }
    packed(alpha, a, b, beta, c, None);
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
    if m * k * n > 0 {
        if let (Some(a), Some(b), Some(bias_s), Some(c)) = (
            a.as_slice(),
            b.as_slice(),
            bias.as_slice(),
            c.as_slice_mut(),
        ) {
            if n == 1 && k >= LONG_DOT {
                return small::dots(T::one(), T::zero(), c, 1, m, k, a, k, b, bias_s[0]);
            }
            if n == 1 || small(m, k, n) {
                return dispatch::nn_bias(a, b, bias_s, c, m, k, n);
            }
        }
    }
    packed(T::one(), a, b, T::zero(), c, Some(bias));
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
    if m * k * n > 0 {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            if n >= LONG_DOT && k == 1 {
                // c[i] = a[i, :]·b: a dot per row of a.
                return small::dots(alpha, beta, c, 1, m, n, a, n, b, T::zero());
            }
            if n >= LONG_DOT && m == 1 {
                // c[j] = b[j, :]·a: a dot per row of b.
                return small::dots(alpha, beta, c, 1, k, n, b, n, a, T::zero());
            }
            // n == 1: an outer product; otherwise a dot per element.
            if n == 1 || k == 1 || m == 1 || m * k * n <= SMALL_MACS {
                return dispatch::nt(alpha, a, b, beta, c, m, k, n);
            }
        }
    }
    packed(alpha, a, b.t(), beta, c, None);
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
    if m * k * n > 0 {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            if n == 1 && k > NARROW {
                // c = Σ_i b[i]·a[i, :]: the rows of a, scaled and summed.
                return dispatch::rows_sum(alpha, beta, c, m, Some(b), a, k);
            }
            if k == 1 && n > NARROW {
                return dispatch::rows_sum(alpha, beta, c, m, Some(a), b, n);
            }
            // m == 1: an outer product.
            if n == 1 || k == 1 || m == 1 || m * k * n <= SMALL_MACS {
                return dispatch::tn(alpha, a, b, beta, c, m, k, n);
            }
        }
    }
    packed(alpha, a.t(), b, beta, c, None);
}

/// `out = beta·out + alpha·Σ_rows a`: the column sums of `a` (a bias gradient).
pub fn col_sums<T: Scalar>(alpha: T, a: ArrayView2<'_, T>, beta: T, mut out: ArrayViewMut1<'_, T>) {
    let (m, n) = a.dim();
    if let (Some(a), Some(c)) = (a.as_slice(), out.as_slice_mut()) {
        if m * n > 0 {
            if n > NARROW {
                return dispatch::rows_sum(alpha, beta, c, m, None, a, n);
            }
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

/// `c = beta·c + alpha·a·b (+ bias)` through the packed GEMM, for operands of any strides
/// and an output whose rows are contiguous; any other output through ndarray's GEMM.
fn packed<T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let rows_ok = c.strides()[1] == 1 || n <= 1;
    let ldc_ok = c.strides()[0] >= n as isize || m <= 1;
    let bias_ok = bias.as_ref().is_none_or(|b| b.as_slice().is_some());
    if rows_ok && ldc_ok && bias_ok {
        let a = Mat {
            ptr: a.as_ptr(),
            rs: a.strides()[0],
            cs: a.strides()[1],
        };
        let b = Mat {
            ptr: b.as_ptr(),
            rs: b.strides()[0],
            cs: b.strides()[1],
        };
        let ldc = if m <= 1 { n } else { c.strides()[0] as usize };
        let out = Out {
            ptr: c.as_mut_ptr(),
            ldc,
        };
        let epi = Epi {
            alpha,
            beta,
            bias: bias.map(|b| b.as_ptr()),
        };
        // SAFETY: the views give `a`, `b` their m×k, k×n elements at these strides, `c`
        // m×n elements in rows of stride `ldc >= n`, not overlapping the inputs (`c` is
        // borrowed mutably), and the bias n contiguous elements.
        #[allow(unsafe_code)]
        unsafe {
            gemm::gemm(m, n, k, a, b, out, epi, Blocking::for_elem::<T>())
        };
        return;
    }
    if let Some(bias) = bias {
        for mut row in c.rows_mut() {
            row.assign(&bias);
        }
        general_mat_mul(alpha, &a, &b, T::one(), &mut c);
    } else {
        general_mat_mul(alpha, &a, &b, beta, &mut c);
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

    /// `s[i]`, unchecked: each entry point below asserts the extents its indices stay in,
    /// once per call, instead of a check per element in the innermost loops.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn at<T: Copy>(s: &[T], i: usize) -> T {
        debug_assert!(i < s.len());
        // SAFETY: in bounds by the caller's entry assertion (see above).
        unsafe { *s.get_unchecked(i) }
    }

    /// `&s[start..start + len]`, unchecked (as [`at`]).
    #[inline(always)]
    #[allow(unsafe_code)]
    fn seg<T>(s: &[T], start: usize, len: usize) -> &[T] {
        debug_assert!(start + len <= s.len());
        // SAFETY: as for `at`.
        unsafe { s.get_unchecked(start..start + len) }
    }

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
        if x.len() < W {
            // Too short for the partial sums to pay: one sum, in order.
            return x
                .iter()
                .zip(y)
                .fold(T::zero(), |s, (&x, &y)| madd::<T, FMA>(x, y, s));
        }
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
        assert!(a.len() >= c.len() / n * k && b.len() >= k * n);
        let coef = |i: usize, p: usize| at(a, i * k + p);
        combine::<T, FMA>(Out::scaled(alpha, beta), c, n, k, coef, |p| {
            seg(b, p * n, n)
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
        assert!(a.len() >= c.len() / n * k && b.len() >= k * n && bias.len() >= n);
        let coef = |i: usize, p: usize| at(a, i * k + p);
        combine::<T, FMA>(out, c, n, k, coef, |p| seg(b, p * n, n));
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
            assert!(a.len() >= c.len() / k && b.len() >= k);
            combine::<T, FMA>(Out::scaled(alpha, beta), c, k, 1, |i, _| at(a, i), |_| b);
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
            assert!(a.len() >= m * k && b.len() >= m && c.len() <= k);
            let rows = |i: usize| seg(a, i * k, k);
            combine::<T, FMA>(Out::scaled(alpha, beta), c, k, m, |_, i| at(b, i), rows);
            return;
        }
        assert!(a.len() >= m * k && b.len() >= m * n && c.len() / n <= k);
        let coef = |p: usize, i: usize| at(a, i * k + p);
        combine::<T, FMA>(Out::scaled(alpha, beta), c, n, m, coef, |i| {
            seg(b, i * n, n)
        });
    }

    /// `c[n] = beta·c + alpha·Σ_t coef[t]·rows[t·ld..][..n]` (`coef` all 1 if `None`), for
    /// long rows: blocks of `JB` columns are accumulated on the stack over every term, four
    /// terms per pass (added in order), reading each row in contiguous runs, and stored once.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn rows_sum<T: Scalar, const FMA: bool>(
        alpha: T,
        beta: T,
        c: &mut [T],
        terms: usize,
        coef: Option<&[T]>,
        rows: &[T],
        ld: usize,
    ) {
        const JB: usize = 512;
        let f = |t: usize| coef.map_or(T::one(), |c| c[t]);
        let mut acc = [T::zero(); JB];
        for (jb, cblk) in c.chunks_mut(JB).enumerate() {
            let (j0, w) = (jb * JB, cblk.len());
            let acc = &mut acc[..w];
            acc.fill(T::zero());
            let row = |t: usize| &rows[t * ld + j0..t * ld + j0 + w];
            let mut t = 0;
            while t + 4 <= terms {
                let (f0, f1, f2, f3) = (f(t), f(t + 1), f(t + 2), f(t + 3));
                let (r0, r1, r2, r3) = (row(t), row(t + 1), row(t + 2), row(t + 3));
                for l in 0..w {
                    let s = madd::<T, FMA>(f0, r0[l], acc[l]);
                    let s = madd::<T, FMA>(f1, r1[l], s);
                    let s = madd::<T, FMA>(f2, r2[l], s);
                    acc[l] = madd::<T, FMA>(f3, r3[l], s);
                }
                t += 4;
            }
            while t < terms {
                let (f0, r0) = (f(t), row(t));
                for l in 0..w {
                    acc[l] = madd::<T, FMA>(f0, r0[l], acc[l]);
                }
                t += 1;
            }
            for (cv, &a) in cblk.iter_mut().zip(acc.iter()) {
                store(cv, beta, alpha, a);
            }
        }
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
        assert!(a.len() >= m * n);
        let rows = |i: usize| seg(a, i * n, n);
        combine::<T, FMA>(Out::scaled(alpha, beta), c, n, m, |_, _| T::one(), rows);
    }
}

/// The loops, each compiled per level (the small ones capped at AVX2, see the module doc).
mod dispatch {
    use super::loops;
    use crate::ops::simd::multiversion;

    multiversion!(ymm;
        fn nn<T: Scalar, V, FMA>(
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
    multiversion!(ymm;
        fn nn_bias<T: Scalar, V, FMA>(
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
    multiversion!(ymm;
        fn nt<T: Scalar, V, FMA>(
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
    multiversion!(ymm;
        fn tn<T: Scalar, V, FMA>(
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
        fn rows_sum<T: Scalar, V, FMA>(
            alpha: T,
            beta: T,
            c: &mut [T],
            terms: usize,
            coef: Option<&[T]>,
            rows: &[T],
            ld: usize,
        ) {
            loops::rows_sum::<T, FMA>(alpha, beta, c, terms, coef, rows, ld)
        }
    );
    multiversion!(ymm;
        fn col_sums<T: Scalar, V, FMA>(alpha: T, a: &[T], beta: T, c: &mut [T], m: usize, n: usize) {
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
