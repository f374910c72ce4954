//! The packed GEMM against the `gemm` crate on the products of the networks' steps, one
//! thread, interleaved: each round times miniflow's `nn` and `tn` and then the crate's
//! product at one shape, so a slow spell of a shared machine hits both alike. Prints
//! GFLOP/s (median of the calls in a round, median over rounds) and miniflow / crate.
//!
//! ```text
//! cargo bench --bench gemm            # 3 rounds
//! cargo bench --bench gemm -- 7       # 7 rounds
//! ```
//!
//! Shapes `m x k x n`: 1024³, and the 256x1024x1024 step's forward (`x·W1`, 256x1024x1024)
//! and weight gradient (`xᵀ·g`, 1024x256x1024, where `tn` reads `x` transposed).

mod common;

use common::{fill, gemm_crate_nn};
use miniflow::ndarray::Array2;
use miniflow::ops::matmul;
use miniflow::Scalar;
use std::time::Instant;

/// Median seconds of `reps` calls (after one warm-up call).
fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn shape<T: Scalar>(dtype: &str, (m, k, n): (usize, usize, usize), rounds: usize) {
    let (a, b) = (fill::<T>(7, m, k), fill::<T>(8, k, n));
    let at = a.t().as_standard_layout().into_owned();
    let mut c = Array2::<T>::zeros((m, n));
    let flops = 2.0 * (m * k * n) as f64;
    let reps = ((3e9 / flops) as usize).clamp(5, 200);
    let rate = |secs: f64| flops / secs / 1e9;
    let (mut nn, mut tn, mut other) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        nn.push(rate(median_secs(reps, || {
            matmul::nn(T::one(), a.view(), b.view(), T::zero(), c.view_mut())
        })));
        tn.push(rate(median_secs(reps, || {
            matmul::tn(T::one(), at.view(), b.view(), T::zero(), c.view_mut())
        })));
        other.push(rate(median_secs(reps, || gemm_crate_nn(&a, &b, &mut c))));
    }
    let (nn, tn, other) = (median(nn), median(tn), median(other));
    println!(
        "| {dtype} | {m}x{k}x{n} | {nn:.1} | {tn:.1} | {other:.1} | {:.3} | {:.3} |",
        nn / other,
        tn / other
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a number among the arguments is the round count.
    let rounds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    println!(
        "SIMD level {}, one thread, {rounds} rounds, GFLOP/s (medians)\n",
        miniflow::ops::SimdLevel::current().name()
    );
    println!(
        "| dtype | m x k x n | miniflow nn | miniflow tn | gemm crate | nn / crate | tn / crate |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for s in [(1024, 1024, 1024), (256, 1024, 1024), (1024, 256, 1024)] {
        shape::<f64>("f64", s, rounds);
    }
    for s in [(1024, 1024, 1024), (256, 1024, 1024), (1024, 256, 1024)] {
        shape::<f32>("f32", s, rounds);
    }
}
