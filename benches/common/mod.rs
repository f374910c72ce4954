//! What the `step` and `gemm` benches share: their data and the `gemm` crate's product.

use miniflow::ndarray::Array2;
use miniflow::Scalar;

/// Deterministic values in [-0.5, 0.5).
pub fn fill<T: Scalar>(seed: u64, rows: usize, cols: usize) -> Array2<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Array2::from_shape_fn((rows, cols), |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        T::from_f64((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
    })
}

/// `c = a·b` by the `gemm` crate on one thread (it is built without its rayon feature).
pub fn gemm_crate_nn<T: Scalar>(a: &Array2<T>, b: &Array2<T>, c: &mut Array2<T>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(a.is_standard_layout() && b.is_standard_layout() && c.is_standard_layout());
    assert_eq!((b.nrows(), c.dim()), (k, (m, n)));
    // SAFETY: three distinct row-major arrays of m×k, k×n and m×n values (checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}
