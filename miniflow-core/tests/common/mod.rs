//! What the kernel and graph tests share (the test binaries include it with `mod common;`):
//! a deterministic PRNG, elementwise comparison to a relative tolerance, and central finite
//! differences.

// Not every test binary uses every helper.
#![allow(dead_code)]

use miniflow_core::ndarray::{Array, ArrayD, ArrayView, Dimension, IxDyn, ShapeBuilder};

/// The step of the central differences.
pub const EPS: f64 = 1e-6;
/// How closely an analytic gradient must match finite differences (see [`rel_err`]).
pub const FD_TOL: f64 = 1e-6;
/// For results that must agree up to rounding only (no finite differences involved).
pub const EXACT_TOL: f64 = 1e-12;

// ---------------------------------------------------------------------------------------------
// A tiny deterministic PRNG (splitmix64), so the tests need no extra dependency.
// ---------------------------------------------------------------------------------------------

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    /// Entries uniform in `[lo, hi)`.
    pub fn array_in<Sh: ShapeBuilder>(
        &mut self,
        shape: Sh,
        lo: f64,
        hi: f64,
    ) -> Array<f64, Sh::Dim> {
        Array::from_shape_simple_fn(shape, || self.uniform(lo, hi))
    }

    /// Entries uniform in `[-1, 1)`.
    pub fn array<Sh: ShapeBuilder>(&mut self, shape: Sh) -> Array<f64, Sh::Dim> {
        self.array_in(shape, -1.0, 1.0)
    }

    /// Finite junk, far from any real gradient, to prefill output buffers with.
    pub fn junk<Sh: ShapeBuilder>(&mut self, shape: Sh) -> Array<f64, Sh::Dim> {
        self.array_in(shape, -1e3, 1e3)
    }

    /// Class indices `0.0, 1.0, ...` below `classes`.
    pub fn labels(&mut self, m: usize, classes: usize) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(&[m]), || {
            (self.uniform(0.0, classes as f64).floor()).min(classes as f64 - 1.0)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison and finite-difference helpers.
// ---------------------------------------------------------------------------------------------

pub fn rel_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / (a.abs() + b.abs()).max(1.0)
}

/// Asserts `got` and `want` have one shape and agree elementwise to `tol` (relative, see
/// [`rel_err`]). Fails on any NaN.
#[track_caller]
pub fn assert_close<D: Dimension>(
    what: &str,
    got: ArrayView<'_, f64, D>,
    want: ArrayView<'_, f64, D>,
    tol: f64,
) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let e = rel_err(g, w);
        assert!(
            e <= tol, // false for NaN
            "{what} at {idx:?}: got {g:e}, want {w:e} (relative error {e:e} > {tol:e})"
        );
    }
}

/// Central finite differences (step [`EPS`]) of `f` with respect to every element of `x`, in
/// logical order (any layout).
pub fn numeric_grad<D: Dimension>(
    x: &Array<f64, D>,
    mut f: impl FnMut(&Array<f64, D>) -> f64,
) -> Array<f64, D> {
    let mut xp = x.to_owned();
    let mut grad = Array::zeros(x.raw_dim());
    for (i, g) in grad.iter_mut().enumerate() {
        let orig = *xp.iter().nth(i).unwrap();
        *xp.iter_mut().nth(i).unwrap() = orig + EPS;
        let plus = f(&xp);
        *xp.iter_mut().nth(i).unwrap() = orig - EPS;
        let minus = f(&xp);
        *xp.iter_mut().nth(i).unwrap() = orig;
        *g = (plus - minus) / (2.0 * EPS);
    }
    grad
}

/// `Σ g ⊙ out`: an op's output turned into a scalar objective by an upstream gradient `g`.
pub fn contract<D: Dimension>(g: &Array<f64, D>, out: &Array<f64, D>) -> f64 {
    assert_eq!(g.shape(), out.shape());
    g.iter().zip(out.iter()).map(|(g, o)| g * o).sum()
}
