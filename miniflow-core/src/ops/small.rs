//! Long dot products (a `[1024, 1]` layer's forward, a matrix-vector product), written over
//! [`Vek`] and compiled per level: [`dots`] computes `c[i] = beta·c + alpha·(init +
//! a[i, :]·v)` with four independent registers of partial sums and a masked last register,
//! where the plain loops keep one register and wait on its latency.
//!
//! Operands are slices, bounds-checked once per call; the loop indexes them with unchecked
//! pointer arithmetic inside those bounds.

#![allow(unsafe_code)]

use super::simd::{multiversion, Vek};
use crate::Scalar;

/// The largest index `(rows - 1)·rs + (cols - 1)·cs` a strided block touches, plus one.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

multiversion!(
    /// `c[i·ldc] = beta·c + alpha·(init + Σ_{p<k} a[i·lda + p]·v[p])` for `i < m`: a dot
    /// product per row of `a` (rows contiguous); `beta` 0 (c is not read) or 1.
    fn dots<T: Scalar, V, FMA>(
        alpha: T,
        beta: T,
        c: &mut [T],
        ldc: usize,
        m: usize,
        k: usize,
        a: &[T],
        lda: usize,
        v: &[T],
        init: T,
    ) {
        assert!(c.len() >= extent(m, 1, ldc, 1));
        assert!(a.len() >= extent(m, k, lda, 1) && v.len() >= k);
        for i in 0..m {
            // SAFETY: row i of `a` holds k elements (asserted above), `v` k elements.
            let d = unsafe { dot::<T, V>(a.as_ptr().add(i * lda), v.as_ptr(), k) };
            let cv = &mut c[i * ldc];
            let s = init + d;
            *cv = if beta == T::zero() {
                alpha * s
            } else {
                *cv + alpha * s
            };
        }
    }
);

/// `Σ_{p<k} x[p]·y[p]`: four registers of partial sums over blocks of four, then one, then
/// a masked register; the partial sums added in a fixed order.
#[inline(always)]
pub(crate) unsafe fn dot<T: Scalar, V: Vek<T>>(x: *const T, y: *const T, k: usize) -> T {
    let lanes = V::LANES;
    let mut acc = [V::zero(); 4];
    let mut p = 0;
    while p + 4 * lanes <= k {
        for (q, acc) in acc.iter_mut().enumerate() {
            let o = p + q * lanes;
            *acc = V::load(x.add(o)).mul_add(V::load(y.add(o)), *acc);
        }
        p += 4 * lanes;
    }
    while p + lanes <= k {
        acc[0] = V::load(x.add(p)).mul_add(V::load(y.add(p)), acc[0]);
        p += lanes;
    }
    if p < k {
        let n = k - p;
        acc[1] = V::load_n(x.add(p), n).mul_add(V::load_n(y.add(p), n), acc[1]);
    }
    acc[0].add(acc[2]).add(acc[1].add(acc[3])).sum()
}
