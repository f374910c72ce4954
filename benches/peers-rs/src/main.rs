//! One SGD training step of `linear -> sigmoid -> linear -> mse` (lr 1e-3) in burn and in
//! candle, single thread on the CPU: the Rust columns beside `benches/peers.py` (numpy, JAX,
//! PyTorch) and miniflow's `benches/step.rs`, with the same shapes and the same data.
//!
//! Every selected point is first checked against a step written by hand in f64 (the
//! `numpy_step` of peers.py), then timed: 3 warm-up steps, then the median of samples of one or
//! more steps. The batch is handed to the step each time, and turning it into the framework's
//! tensor is part of the step.
//!
//! ```text
//! RAYON_NUM_THREADS=1 taskset -c 0 cargo run --release [-- --check-only] [FILTER...]
//! ```
//!
//! A point runs when every FILTER is a substring of `framework dtype shape`, e.g.
//! `burn`, `candle f32`, `64x784`.

mod burn_step;
mod candle_step;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use burn::backend::{Autodiff, NdArray};

use crate::burn_step::BurnStep;
use crate::candle_step::CandleStep;

/// (batch, in, hidden, out).
pub type Shape = (usize, usize, usize, usize);

const SHAPES: [Shape; 4] = [
    (2, 2, 1, 1),
    (11, 13, 10, 1),
    (64, 784, 256, 1),
    (256, 1024, 1024, 1),
];

pub const LR: f64 = 1e-3;

/// A sample lasts at least this long (timer resolution, loop overhead).
const MIN_SAMPLE: Duration = Duration::from_micros(20);
/// Time spent sampling one point.
const POINT_BUDGET: Duration = Duration::from_millis(500);
const MIN_SAMPLES: usize = 5;

/// The element types of the table; conversions from and to the f64 of the data and the check.
pub trait Elem: Copy + 'static {
    const NAME: &'static str;
    /// Tolerance of the check, relative.
    const TOL: f64;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    const TOL: f64 = 1e-9;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Elem for f32 {
    const NAME: &'static str = "f32";
    const TOL: f64 = 1e-4;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self.into()
    }
}

/// The xorshift fill of `benches/step.rs` and `peers.py`: values in [-0.5, 0.5), row-major.
fn fill(seed: u64, len: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// The batch and the starting parameters, row-major: x [batch, in], y [batch, out],
/// W1 [in, hidden], b1 [hidden], W2 [hidden, out], b2 [out].
pub struct Data<T> {
    pub shape: Shape,
    pub x: Vec<T>,
    pub y: Vec<T>,
    pub w1: Vec<T>,
    pub b1: Vec<T>,
    pub w2: Vec<T>,
    pub b2: Vec<T>,
}

impl<T: Elem> Data<T> {
    /// Seeds 1..6 as in peers.py's `data()` (which, unlike this, switches to numpy's rng for
    /// the large shapes).
    fn new(shape: Shape) -> Self {
        let (m, i, h, o) = shape;
        let mk = |seed, len| fill(seed, len).into_iter().map(T::from_f64).collect();
        Data {
            shape,
            x: mk(1, m * i),
            y: mk(2, m * o),
            w1: mk(3, i * h),
            b1: mk(4, h),
            w2: mk(5, h * o),
            b2: mk(6, o),
        }
    }

    fn to_f64(&self) -> Data<f64> {
        let f = |v: &[T]| v.iter().map(|&e| e.to_f64()).collect();
        Data {
            shape: self.shape,
            x: f(&self.x),
            y: f(&self.y),
            w1: f(&self.w1),
            b1: f(&self.b1),
            w2: f(&self.w2),
            b2: f(&self.b2),
        }
    }
}

/// One framework's training step, set up from the starting parameters.
pub trait Step<T>: Sized {
    fn new(d: &Data<T>) -> Self;
    /// One SGD step on the batch; the loss before the update.
    fn step(&mut self, x: &[T], y: &[T]) -> f64;
    /// W1, b1, W2, b2, row-major.
    fn params(&self) -> [Vec<f64>; 4];
}

/// `a [rows, inner] · b [inner, cols]`.
fn matmul(a: &[f64], b: &[f64], rows: usize, inner: usize, cols: usize) -> Vec<f64> {
    let mut c = vec![0.0; rows * cols];
    for (c_row, a_row) in c.chunks_mut(cols).zip(a.chunks(inner)) {
        for (&a_rk, b_row) in a_row.iter().zip(b.chunks(cols)) {
            for (c_rc, &b_kc) in c_row.iter_mut().zip(b_row) {
                *c_rc += a_rk * b_kc;
            }
        }
    }
    c
}

fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols * rows)
        .map(|k| a[(k % rows) * cols + k / rows])
        .collect()
}

fn add_row(mut a: Vec<f64>, row: &[f64]) -> Vec<f64> {
    for a_row in a.chunks_mut(row.len()) {
        a_row.iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
    a
}

fn col_sums(a: &[f64], cols: usize) -> Vec<f64> {
    let mut s = vec![0.0; cols];
    for row in a.chunks(cols) {
        s.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    s
}

/// The step by hand in f64, as `numpy_step` in peers.py: the loss and W1, b1, W2, b2 after it.
fn reference(d: &Data<f64>) -> (f64, [Vec<f64>; 4]) {
    let (m, i, h, o) = d.shape;
    let l1 = add_row(matmul(&d.x, &d.w1, m, i, h), &d.b1);
    let s1: Vec<f64> = l1.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
    let l2 = add_row(matmul(&s1, &d.w2, m, h, o), &d.b2);
    let diff: Vec<f64> = d.y.iter().zip(&l2).map(|(y, l)| y - l).collect();
    let size = diff.len() as f64;
    let loss = diff.iter().map(|e| e * e).sum::<f64>() / size;
    let g2: Vec<f64> = diff.iter().map(|e| e * (-2.0 / size)).collect();
    let dw2 = matmul(&transpose(&s1, m, h), &g2, h, m, o);
    let db2 = col_sums(&g2, o);
    let ds1 = matmul(&g2, &transpose(&d.w2, h, o), m, o, h);
    let g1: Vec<f64> = ds1
        .iter()
        .zip(&s1)
        .map(|(g, s)| g * (s * (1.0 - s)))
        .collect();
    let dw1 = matmul(&transpose(&d.x, m, i), &g1, i, m, h);
    let db1 = col_sums(&g1, h);
    let sgd = |p: &[f64], g: &[f64]| p.iter().zip(g).map(|(p, g)| p - LR * g).collect();
    (
        loss,
        [
            sgd(&d.w1, &dw1),
            sgd(&d.b1, &db1),
            sgd(&d.w2, &dw2),
            sgd(&d.b2, &db2),
        ],
    )
}

/// Largest difference relative to the largest magnitude of `want`.
fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "parameter sizes differ");
    let diff = got.iter().zip(want).map(|(g, w)| (g - w).abs());
    let scale = want
        .iter()
        .map(|w| w.abs())
        .fold(f64::MIN_POSITIVE, f64::max);
    diff.fold(0.0, f64::max) / scale
}

/// One step from the start, against the reference: the worst relative error, if within `T::TOL`.
fn check<T: Elem, S: Step<T>>(shape: Shape) -> Result<f64, String> {
    let d = Data::<T>::new(shape);
    let mut s = S::new(&d);
    let loss = s.step(&d.x, &d.y);
    let (want_loss, want) = reference(&d.to_f64());
    let mut worst = rel_err(&[loss], &[want_loss]);
    if worst > T::TOL {
        return Err(format!("loss {loss} != reference {want_loss}"));
    }
    let names = ["W1", "b1", "W2", "b2"];
    for ((name, got), want) in names.iter().zip(s.params()).zip(&want) {
        let err = rel_err(&got, want);
        if err > T::TOL {
            return Err(format!("{name} off the reference by {err:e} (relative)"));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

/// Median time of one step, in µs.
fn time<T: Elem, S: Step<T>>(shape: Shape) -> f64 {
    let d = Data::<T>::new(shape);
    let mut s = S::new(&d);
    let mut step = || black_box(s.step(black_box(&d.x), black_box(&d.y)));
    let mut one = Duration::ZERO;
    for _ in 0..3 {
        let t = Instant::now();
        step();
        one = t.elapsed();
    }
    // Several steps a sample for the small shapes, where one step is near the timer's grain.
    let inner = (MIN_SAMPLE.as_secs_f64() / one.as_secs_f64().max(1e-9)).ceil() as usize;
    let inner = inner.max(1);
    let samples = (POINT_BUDGET.as_secs_f64() / (one.as_secs_f64() * inner as f64)) as usize;
    let mut times: Vec<f64> = (0..samples.max(MIN_SAMPLES))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..inner {
                step();
            }
            t.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2] * 1e6
}

/// One row of the table.
struct Point {
    framework: &'static str,
    dtype: &'static str,
    shape: Shape,
    check: fn(Shape) -> Result<f64, String>,
    time: fn(Shape) -> f64,
}

impl Point {
    fn new<T: Elem, S: Step<T>>(framework: &'static str, shape: Shape) -> Self {
        Point {
            framework,
            dtype: T::NAME,
            shape,
            check: check::<T, S>,
            time: time::<T, S>,
        }
    }

    fn shape_name(&self) -> String {
        let (m, i, h, o) = self.shape;
        format!("{m}x{i}x{h}x{o}")
    }

    fn label(&self) -> String {
        format!("{} {} {}", self.framework, self.dtype, self.shape_name())
    }
}

fn main() -> ExitCode {
    // candle sizes its GEMM parallelism from this variable (else the core count), and rayon's
    // pool too: one thread unless told otherwise.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: no other thread is running yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check_only = args.iter().any(|a| a == "--check-only");
    let filters: Vec<&String> = args.iter().filter(|a| *a != "--check-only").collect();

    let mut points = Vec::new();
    for shape in SHAPES {
        points.push(Point::new::<f64, BurnStep<Autodiff<NdArray<f64>>>>(
            "burn", shape,
        ));
        points.push(Point::new::<f64, CandleStep>("candle", shape));
    }
    for shape in SHAPES {
        points.push(Point::new::<f32, BurnStep<Autodiff<NdArray<f32>>>>(
            "burn", shape,
        ));
        points.push(Point::new::<f32, CandleStep>("candle", shape));
    }
    points.retain(|p| filters.iter().all(|f| p.label().contains(f.as_str())));
    if points.is_empty() {
        eprintln!("no point matches {filters:?}");
        return ExitCode::FAILURE;
    }

    println!(
        "# burn: ndarray backend, matrixmultiply GEMM; candle: CPU, gemm crate; \
         RAYON_NUM_THREADS={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
    );
    for p in &points {
        match (p.check)(p.shape) {
            Ok(err) => println!("# check {}: ok, worst relative error {err:.1e}", p.label()),
            Err(e) => {
                eprintln!(
                    "check {} FAILED against the hand-written step: {e}",
                    p.label()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if check_only {
        return ExitCode::SUCCESS;
    }

    println!("| framework | dtype | shape | median µs |");
    println!("|---|---|---|---:|");
    for p in &points {
        let us = (p.time)(p.shape);
        println!(
            "| {} | {} | {} | {us:.2} |",
            p.framework,
            p.dtype,
            p.shape_name()
        );
    }
    ExitCode::SUCCESS
}
