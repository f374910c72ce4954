//! The three matrix products `linear` needs (`a·b`, `a·bᵀ`, `aᵀ·b`), each accumulating
//! `c = beta·c + alpha·product` into a caller's buffer.
//!
//! Small products (the course's 13x10 layer) run plain loops over contiguous rows: a packed
//! GEMM's setup (packing buffers, an allocation per call) costs more than the product itself
//! there. Large products go to `ndarray`'s GEMM (`matrixmultiply`, with runtime-detected
//! AVX2/AVX-512 kernels). The small loops are compiled twice, and the AVX2+FMA copy is chosen
//! at run time when the CPU has it, so they vectorize without `-C target-cpu`.

use crate::Scalar;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

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
    if m * k * n <= SMALL_MACS {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            return dispatch::nn(alpha, a, b, beta, c, m, k, n);
        }
    }
    general_mat_mul(alpha, &a, &b, beta, &mut c);
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
    if m * k * n <= SMALL_MACS {
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
    if m * k * n <= SMALL_MACS {
        if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice_mut()) {
            return dispatch::tn(alpha, a, b, beta, c, m, k, n);
        }
    }
    general_mat_mul(alpha, &a.t(), &b, beta, &mut c);
}

/// The loops, on row-major slices. `#[inline(always)]` so each lands, vectorized, in the
/// feature-specific copies `dispatch` makes.
mod loops {
    use crate::Scalar;

    #[inline(always)]
    fn scale_row<T: Scalar>(row: &mut [T], beta: T) {
        if beta == T::zero() {
            row.fill(T::zero());
        } else if beta != T::one() {
            row.iter_mut().for_each(|v| *v = *v * beta);
        }
    }

    #[inline(always)]
    fn axpy<T: Scalar>(alpha: T, x: &[T], y: &mut [T]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = *y + alpha * x;
        }
    }

    /// A dot product with eight independent partial sums, so it vectorizes without
    /// reassociating one sum.
    #[inline(always)]
    fn dot<T: Scalar>(x: &[T], y: &[T]) -> T {
        let mut acc = [T::zero(); 8];
        let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
        let (xr, yr) = (xc.remainder(), yc.remainder());
        for (x, y) in xc.zip(yc) {
            for l in 0..8 {
                acc[l] = acc[l] + x[l] * y[l];
            }
        }
        let mut sum = T::zero();
        for (&x, &y) in xr.iter().zip(yr) {
            sum = sum + x * y;
        }
        let pairs = [
            acc[0] + acc[4],
            acc[1] + acc[5],
            acc[2] + acc[6],
            acc[3] + acc[7],
        ];
        sum + (pairs[0] + pairs[2]) + (pairs[1] + pairs[3])
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn nn<T: Scalar>(
        alpha: T,
        a: &[T],
        b: &[T],
        beta: T,
        c: &mut [T],
        m: usize,
        k: usize,
        n: usize,
    ) {
        for i in 0..m {
            let crow = &mut c[i * n..(i + 1) * n];
            scale_row(crow, beta);
            for p in 0..k {
                axpy(alpha * a[i * k + p], &b[p * n..(p + 1) * n], crow);
            }
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn nt<T: Scalar>(
        alpha: T,
        a: &[T],
        b: &[T],
        beta: T,
        c: &mut [T],
        m: usize,
        k: usize,
        n: usize,
    ) {
        for i in 0..m {
            let arow = &a[i * n..(i + 1) * n];
            let crow = &mut c[i * k..(i + 1) * k];
            scale_row(crow, beta);
            if n == 1 {
                // An outer product: one axpy instead of k one-element dots.
                axpy(alpha * arow[0], b, crow);
            } else {
                for (p, cv) in crow.iter_mut().enumerate() {
                    *cv = *cv + alpha * dot(arow, &b[p * n..(p + 1) * n]);
                }
            }
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn tn<T: Scalar>(
        alpha: T,
        a: &[T],
        b: &[T],
        beta: T,
        c: &mut [T],
        m: usize,
        k: usize,
        n: usize,
    ) {
        for p in 0..k {
            scale_row(&mut c[p * n..(p + 1) * n], beta);
        }
        for i in 0..m {
            let brow = &b[i * n..(i + 1) * n];
            for p in 0..k {
                axpy(alpha * a[i * k + p], brow, &mut c[p * n..(p + 1) * n]);
            }
        }
    }
}

/// Picks the AVX2+FMA copy of the loops when the CPU has it.
#[allow(unsafe_code, clippy::too_many_arguments)]
mod dispatch {
    use super::loops;
    use crate::Scalar;

    macro_rules! dispatched {
        ($($name:ident),*) => {$(
            #[inline]
            pub fn $name<T: Scalar>(alpha: T, a: &[T], b: &[T], beta: T, c: &mut [T], m: usize, k: usize, n: usize) {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn fast<T: Scalar>(alpha: T, a: &[T], b: &[T], beta: T, c: &mut [T], m: usize, k: usize, n: usize) {
                        loops::$name(alpha, a, b, beta, c, m, k, n)
                    }
                    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                        // SAFETY: `fast` only requires the CPU features detected just above.
                        return unsafe { fast(alpha, a, b, beta, c, m, k, n) };
                    }
                }
                loops::$name(alpha, a, b, beta, c, m, k, n)
            }
        )*};
    }

    dispatched!(nn, nt, tn);
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
    fn beta_zero_ignores_garbage() {
        let a = filled(4, 3, 0.1);
        let b = filled(3, 2, 0.2);
        let mut c = Array2::from_elem((4, 2), f64::NAN);
        nn(1.0, a.view(), b.view(), 0.0, c.view_mut());
        assert!((&c - &a.dot(&b)).iter().all(|d| d.abs() < 1e-12));
    }
}
