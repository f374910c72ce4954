//! The matrix products on every instruction-set level this CPU runs (portable always, so
//! every CI machine runs the portable copies): each shape class (vector-shaped, small, packed
//! GEMM with partial tiles and several blocks of terms), every `alpha`/`beta`, bias, strided
//! and transposed operands, against a plain reference; the levels against each other to
//! 1e-12 (f64); and the packed GEMM's promise that any split of the output rows or columns
//! (what the `threads` feature does) gives bit-identical results.

mod common;

use common::{assert_close, Rng, EXACT_TOL};
use miniflow_core::ndarray::{s, Array1, Array2, ArrayView2, Axis, ShapeBuilder};
use miniflow_core::ops::{matmul, with_simd_level, SimdLevel};

/// `(m, k, n)`: every kernel class, tile edges (8, 24, 48 and their neighbours), and depths
/// over one block of terms (128) and several.
const SHAPES: [(usize, usize, usize); 22] = [
    (1, 1, 1),
    (1, 300, 1),
    (300, 1, 7),
    (5, 40, 1),
    (200, 300, 1),
    (1, 300, 200),
    (200, 1, 300),
    (11, 13, 10),
    (3, 9, 17),
    (60, 70, 50),
    (64, 64, 64),
    (9, 130, 25),
    (8, 600, 24),
    (17, 33, 49),
    (50, 520, 100),
    (130, 64, 200),
    (7, 1030, 40),
    (64, 80, 1000),
    (1000, 70, 20),
    (33, 200, 47),
    (100, 100, 100),
    (257, 129, 65),
];

/// `beta·c0 + alpha·a·b` in plain f64 loops.
fn reference(
    alpha: f64,
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    beta: f64,
    c0: &Array2<f64>,
) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.ncols();
    Array2::from_shape_fn((m, n), |(i, j)| {
        let mut s = 0.0;
        for p in 0..k {
            s += a[[i, p]] * b[[p, j]];
        }
        beta * c0[[i, j]] + alpha * s
    })
}

/// The three products and the bias product at one shape, on the current level, against the
/// reference; returns the results (for comparing levels).
fn products_at(rng: &mut Rng, (m, k, n): (usize, usize, usize)) -> Vec<Array2<f64>> {
    let a = rng.array((m, k));
    let b = rng.array((k, n));
    let (at, bt) = (a.t().to_owned(), b.t().to_owned());
    let c0 = rng.array((m, n));
    let mut out = Vec::new();
    for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.375, 1.0)] {
        let want = reference(alpha, a.view(), b.view(), beta, &c0);
        let tag = format!("{m}x{k}x{n} alpha {alpha} beta {beta}");
        // beta = 0 must not read c: start from NaN there.
        let start = if beta == 0.0 {
            Array2::from_elem((m, n), f64::NAN)
        } else {
            c0.clone()
        };
        let mut c = start.clone();
        matmul::nn(alpha, a.view(), b.view(), beta, c.view_mut());
        assert_close(&format!("nn {tag}"), c.view(), want.view(), EXACT_TOL);
        out.push(c);
        let mut c = start.clone();
        matmul::nt(alpha, a.view(), bt.view(), beta, c.view_mut());
        assert_close(&format!("nt {tag}"), c.view(), want.view(), EXACT_TOL);
        out.push(c);
        let mut c = start.clone();
        matmul::tn(alpha, at.view(), b.view(), beta, c.view_mut());
        assert_close(&format!("tn {tag}"), c.view(), want.view(), EXACT_TOL);
        out.push(c);
        // Operands as transposed views of the other layout, and a column-major output.
        let mut c = Array2::zeros((m, n).f());
        c.assign(&start);
        matmul::nn(alpha, at.t(), bt.t(), beta, c.view_mut());
        assert_close(
            &format!("nn strided {tag}"),
            c.view(),
            want.view(),
            EXACT_TOL,
        );
        // Negative strides everywhere: operands and output stored back to front.
        let (a_rev, b_rev) = (
            a.slice(s![..;-1, ..;-1]).to_owned(),
            b.slice(s![..;-1, ..;-1]).to_owned(),
        );
        let mut c_rev = start.slice(s![..;-1, ..;-1]).to_owned();
        matmul::nn(
            alpha,
            a_rev.slice(s![..;-1, ..;-1]),
            b_rev.slice(s![..;-1, ..;-1]),
            beta,
            c_rev.slice_mut(s![..;-1, ..;-1]),
        );
        assert_close(
            &format!("nn reversed {tag}"),
            c_rev.slice(s![..;-1, ..;-1]),
            want.view(),
            EXACT_TOL,
        );
    }
    let bias = rng.array(n);
    let mut c = Array2::from_elem((m, n), f64::NAN);
    matmul::nn_bias(a.view(), b.view(), bias.view(), c.view_mut());
    let want = reference(1.0, a.view(), b.view(), 0.0, &c0) + &bias;
    assert_close(
        &format!("nn_bias {m}x{k}x{n}"),
        c.view(),
        want.view(),
        EXACT_TOL,
    );
    out.push(c);
    // The column sums, through the same dispatch.
    let mut sums = Array1::from_elem(n, f64::NAN);
    matmul::col_sums(1.0, b.view(), 0.0, sums.view_mut());
    let want = b.sum_axis(Axis(0)).insert_axis(Axis(0));
    assert_close(
        &format!("col_sums {k}x{n}"),
        sums.view().insert_axis(Axis(0)),
        want.view(),
        EXACT_TOL,
    );
    out.push(sums.insert_axis(Axis(0)));
    out
}

#[test]
fn products_match_the_reference_on_every_level() {
    let levels: Vec<SimdLevel> = SimdLevel::available().collect();
    assert!(levels.contains(&SimdLevel::Portable));
    let mut first: Option<Vec<Vec<Array2<f64>>>> = None;
    for &level in &levels {
        let results = with_simd_level(level, || {
            assert_eq!(SimdLevel::current(), level);
            let mut rng = Rng::new(11);
            SHAPES
                .iter()
                .map(|&shape| products_at(&mut rng, shape))
                .collect::<Vec<_>>()
        });
        // Every level agrees with the first (portable) to 1e-12.
        if let Some(first) = &first {
            for (shape, (x, y)) in SHAPES.iter().zip(first.iter().zip(&results)) {
                for (x, y) in x.iter().zip(y) {
                    let tag = format!("{} vs portable at {shape:?}", level.name());
                    assert_close(&tag, y.view(), x.view(), EXACT_TOL);
                }
            }
        } else {
            first = Some(results);
        }
    }
}

#[test]
fn products_in_f32_match_f64() {
    for level in SimdLevel::available() {
        with_simd_level(level, || {
            let mut rng = Rng::new(12);
            for &(m, k, n) in &SHAPES {
                let (a, b) = (rng.array((m, k)), rng.array((k, n)));
                let bias = rng.array(n);
                let want = a.dot(&b) + &bias;
                let (a32, b32, bias32) = (
                    a.mapv(|v| v as f32),
                    b.mapv(|v| v as f32),
                    bias.mapv(|v| v as f32),
                );
                let mut c = Array2::from_elem((m, n), f32::NAN);
                matmul::nn_bias(a32.view(), b32.view(), bias32.view(), c.view_mut());
                let tol = 2e-6 * (k as f64).sqrt().max(1.0);
                assert_close(
                    &format!("f32 {} {m}x{k}x{n}", level.name()),
                    c.mapv(f64::from).view(),
                    want.view(),
                    tol,
                );
            }
        })
    }
}

/// `a` as a view into a wider buffer whose row or column stride is a multiple of 4 KiB (512
/// f64 / 1024 f32, and twice that), row-major and column-major, with full and partial panels,
/// in f64 (against the reference, 1e-12) and f32 (against the reference on the f32 values),
/// on every level. Whether such an `a` is packed or read in place depends on the L1d and the
/// shape (`a_in_place` in `ops/gemm.rs`, whose unit tests force each way); this checks the
/// products through the public API on whatever this CPU chooses.
#[test]
fn a_at_page_strides_matches_the_reference() {
    /// `a` (m×k) as a view into a buffer whose row (`rows`) or column stride is `stride`.
    fn strided<T: Copy + Default>(a: &Array2<T>, rows: bool, stride: usize) -> Array2<T> {
        let (m, k) = a.dim();
        let mut buf = if rows {
            Array2::from_elem((m, stride), T::default())
        } else {
            Array2::from_elem((stride, k).f(), T::default())
        };
        buf.slice_mut(s![..m, ..k]).assign(a);
        let view = buf.slice_move(s![..m, ..k]);
        let got = if rows {
            view.strides()[0]
        } else {
            view.strides()[1]
        };
        assert_eq!(got as usize, stride);
        view
    }
    let mut rng = Rng::new(15);
    for level in SimdLevel::available() {
        with_simd_level(level, || {
            for &(m, k, n) in &[(24, 300, 200), (13, 300, 200), (48, 130, 97), (5, 260, 150)] {
                let (a, b, c0) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
                let (a32, b32, c32) = (
                    a.mapv(|v| v as f32),
                    b.mapv(|v| v as f32),
                    c0.mapv(|v| v as f32),
                );
                let want = reference(-0.5, a.view(), b.view(), 1.0, &c0);
                let want32 = reference(
                    -0.5,
                    a32.mapv(f64::from).view(),
                    b32.mapv(f64::from).view(),
                    1.0,
                    &c32.mapv(f64::from),
                );
                for rows in [true, false] {
                    for pages in [1, 2] {
                        let tag = format!(
                            "{} {m}x{k}x{n}, {} {pages} page(s) apart",
                            level.name(),
                            if rows { "rows" } else { "columns" }
                        );
                        let mut c = c0.clone();
                        let a = strided(&a, rows, 512 * pages);
                        matmul::nn(-0.5, a.view(), b.view(), 1.0, c.view_mut());
                        assert_close(&format!("f64 {tag}"), c.view(), want.view(), EXACT_TOL);
                        let mut c = c32.clone();
                        let a = strided(&a32, rows, 1024 * pages);
                        matmul::nn(-0.5, a.view(), b32.view(), 1.0, c.view_mut());
                        let tol = 2e-6 * (k as f64).sqrt();
                        let c = c.mapv(f64::from);
                        assert_close(&format!("f32 {tag}"), c.view(), want32.view(), tol);
                    }
                }
            }
        })
    }
}

/// The `threads` feature splits a product's output rows or columns between threads; each
/// part must come out bit-identical to the whole, whatever the split. Checked here directly,
/// by computing blocks of the output as products of blocks of the operands.
#[test]
fn any_split_of_the_output_is_bit_identical() {
    let mut rng = Rng::new(13);
    for level in SimdLevel::available() {
        with_simd_level(level, || {
            for &(m, k, n) in &[(100, 600, 130), (64, 784, 256), (130, 300, 200)] {
                let a = rng.array((m, k));
                let b = rng.array((k, n));
                let c0 = rng.array((m, n));
                let mut whole = c0.clone();
                matmul::nn(-0.5, a.view(), b.view(), 1.0, whole.view_mut());
                // Every part stays a packed product (at least 17 wide, above SMALL_MACS).
                for (rs, cs) in [(m / 2, n), (m, n / 2), (37, 71), (m - 20, n - 24)] {
                    let mut parts = c0.clone();
                    for (r0, r1) in [(0, rs), (rs, m)] {
                        for (c0_, c1) in [(0, cs), (cs, n)] {
                            if r0 == r1 || c0_ == c1 {
                                continue;
                            }
                            matmul::nn(
                                -0.5,
                                a.slice(s![r0..r1, ..]),
                                b.slice(s![.., c0_..c1]),
                                1.0,
                                parts.slice_mut(s![r0..r1, c0_..c1]),
                            );
                        }
                    }
                    let same = whole
                        .iter()
                        .zip(&parts)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "{} {m}x{k}x{n} split at ({rs}, {cs}) is not bit-identical",
                        level.name()
                    );
                }
            }
        })
    }
}

/// With the `threads` feature, a large product split into parts (on however many threads
/// there are) is bit-identical to the unsplit one. (`cargo test -p miniflow-core --features
/// threads`.)
#[cfg(feature = "threads")]
#[test]
fn threaded_products_are_bit_identical() {
    use miniflow_core::ops::with_parts;
    let mut rng = Rng::new(14);
    for level in SimdLevel::available() {
        with_simd_level(level, || {
            for &(m, k, n) in &[(256, 300, 500), (500, 200, 100), (64, 784, 256)] {
                let (a, b, c0) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
                let bias = rng.array(n);
                let run = |parts: usize| {
                    with_parts(parts, || {
                        let mut c = c0.clone();
                        matmul::nn(-0.5, a.view(), b.view(), 1.0, c.view_mut());
                        let mut d = Array2::zeros((k, n));
                        matmul::tn(1.0, a.view(), c.view(), 0.0, d.view_mut());
                        let mut e = Array2::zeros((m, n));
                        matmul::nn_bias(a.view(), b.view(), bias.view(), e.view_mut());
                        (c, d, e)
                    })
                };
                let one = run(1);
                for parts in [2, 3, 4] {
                    let split = run(parts);
                    let same = |x: &Array2<f64>, y: &Array2<f64>| {
                        x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits())
                    };
                    assert!(
                        same(&one.0, &split.0) && same(&one.1, &split.1) && same(&one.2, &split.2),
                        "{} {m}x{k}x{n} in {parts} parts",
                        level.name()
                    );
                }
            }
        })
    }
}
