//! One training step of `linear -> sigmoid -> linear -> mse` + SGD, for the generated network,
//! the runtime graph, and a hand-written ndarray step (plain `dot` + `mapv`, as a careful user
//! would write it without miniflow), at several shapes, in f64 and f32, single thread.
//!
//! Also measures the machine's GEMM throughput at 1024³ in the same run, on three kernels:
//! miniflow's own (what the steps use), ndarray's `general_mat_mul` (`matrixmultiply`, with
//! its AVX-512 kernels on) and the `gemm` crate (faer's, AVX-512); the best of the three is
//! "the machine's GEMM rate" the table's last column divides by. It prints a table of
//! medians, ratios and that share after criterion's own output, then the large step's share
//! measured paired (rounds of a step and a 1024³ product per kernel, so host drift between
//! criterion's groups does not enter it; `MINIFLOW_PAIRED_ROUNDS`, 0 skips it).
//!
//! ```text
//! cargo bench --bench step                       # one thread
//! cargo bench --bench step --features threads    # large products on every core
//! MINIFLOW_SIMD=avx2 cargo bench --bench step    # a lower instruction-set level
//! ```

mod common;

use common::{fill, gemm_crate_nn};
use criterion::{criterion_group, BenchmarkId, Criterion};
use miniflow::ndarray::linalg::general_mat_mul;
use miniflow::ndarray::{Array1, Array2, ArrayView2, Axis};
use miniflow::ops::{matmul, SimdLevel};
use miniflow::{Graph, Network, Scalar};
use std::hint::black_box;
use std::time::Duration;

/// The generated networks' step on a borrowed batch (`sgd_step_on`, an inherent method of each).
trait StepOn: Network {
    fn step_on(
        &mut self,
        x: ArrayView2<'_, Self::Elem>,
        y: ArrayView2<'_, Self::Elem>,
        lr: Self::Elem,
    ) -> Self::Elem;
}

macro_rules! mlp {
    ($name:ident, $batch:ident, $elem:ident, $i:tt, $h:tt, $o:tt) => {
        miniflow::network! {
            #[elem($elem)]
            struct $name {
                input X: [batch, $i];
                input y: [batch, $o];
                param W1: [$i, $h];
                param b1: [$h];
                param W2: [$h, $o];
                param b2: [$o];
                l1 = linear(X, W1, b1);
                s1 = sigmoid(l1);
                l2 = linear(s1, W2, b2);
                loss cost = mse(y, l2);
            }
        }

        impl StepOn for $name {
            fn step_on(
                &mut self,
                x: ArrayView2<'_, $elem>,
                y: ArrayView2<'_, $elem>,
                lr: $elem,
            ) -> $elem {
                self.sgd_step_on($batch { X: x, y }, lr).expect("step")
            }
        }
    };
}

mlp!(Tiny64, Tiny64Batch, f64, 2, 1, 1);

miniflow::network! {
    /// The seed's network: `X [2, 2]`, `linear -> sigmoid -> mse`, where per-step overhead is
    /// all there is to measure.
    struct Course {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}
mlp!(Course64, Course64Batch, f64, 13, 10, 1);
mlp!(Mnist64, Mnist64Batch, f64, 784, 256, 1);
mlp!(Wide64, Wide64Batch, f64, 1024, 1024, 1);
mlp!(Tiny32, Tiny32Batch, f32, 2, 1, 1);
mlp!(Course32, Course32Batch, f32, 13, 10, 1);
mlp!(Mnist32, Mnist32Batch, f32, 784, 256, 1);
mlp!(Wide32, Wide32Batch, f32, 1024, 1024, 1);

/// (batch, in, hidden, out).
type Shape = (usize, usize, usize, usize);

const SHAPES: [Shape; 4] = [
    (2, 2, 1, 1),
    (11, 13, 10, 1),
    (64, 784, 256, 1),
    (256, 1024, 1024, 1),
];

struct Data<T> {
    x: Array2<T>,
    y: Array2<T>,
    w1: Array2<T>,
    b1: Array1<T>,
    w2: Array2<T>,
    b2: Array1<T>,
}

impl<T: Scalar> Data<T> {
    fn new((m, i, h, o): Shape) -> Self {
        Data {
            x: fill(1, m, i),
            y: fill(2, m, o),
            w1: fill(3, i, h),
            b1: fill(4, 1, h).remove_axis(Axis(0)),
            w2: fill(5, h, o),
            b2: fill(6, 1, o).remove_axis(Axis(0)),
        }
    }
}

/// The step as a careful ndarray user writes it.
struct Hand<T> {
    w1: Array2<T>,
    b1: Array1<T>,
    w2: Array2<T>,
    b2: Array1<T>,
}

impl<T: Scalar> Hand<T> {
    fn step(&mut self, x: &Array2<T>, y: &Array2<T>, lr: T) -> T {
        let one = T::one();
        let l1 = x.dot(&self.w1) + &self.b1;
        let s1 = l1.mapv(|v| one / (one + (-v).exp()));
        let l2 = s1.dot(&self.w2) + &self.b2;
        let diff = y - &l2;
        let m = T::from_f64(diff.len() as f64);
        let loss = diff.mapv(|d| d * d).sum() / m;
        let g2 = diff.mapv(|d| d * T::from_f64(-2.0) / m);
        let dw2 = s1.t().dot(&g2);
        let db2 = g2.sum_axis(Axis(0));
        let ds1 = g2.dot(&self.w2.t());
        let dl1 = ds1 * &s1.mapv(|s| s * (one - s));
        let dw1 = x.t().dot(&dl1);
        let db1 = dl1.sum_axis(Axis(0));
        self.w1.scaled_add(-lr, &dw1);
        self.b1.scaled_add(-lr, &db1);
        self.w2.scaled_add(-lr, &dw2);
        self.b2.scaled_add(-lr, &db2);
        loss
    }
}

/// The runtime graph, used as a `Network` (planned and fused like generated code).
struct Runtime<T> {
    g: Graph<T>,
}

impl<T: Scalar> Runtime<T> {
    fn new(d: &Data<T>) -> Self {
        let mut g = Graph::new();
        let (x, y) = (g.input("X").expect("graph"), g.input("y").expect("graph"));
        let (w1, b1, w2, b2) = (
            g.param("W1", d.w1.shape()).expect("graph"),
            g.param("b1", d.b1.shape()).expect("graph"),
            g.param("W2", d.w2.shape()).expect("graph"),
            g.param("b2", d.b2.shape()).expect("graph"),
        );
        let l1 = g.linear("l1", x, w1, b1).expect("graph");
        let s1 = g.sigmoid("s1", l1).expect("graph");
        let l2 = g.linear("l2", s1, w2, b2).expect("graph");
        let cost = g.mse("cost", y, l2).expect("graph");
        g.set_loss(cost).expect("graph");
        g.set("W1", &d.w1).expect("W1");
        g.set("b1", &d.b1).expect("b1");
        g.set("W2", &d.w2).expect("W2");
        g.set("b2", &d.b2).expect("b2");
        Runtime { g }
    }

    fn step(&mut self, x: &Array2<T>, y: &Array2<T>, lr: T) -> T {
        self.g.feed("X", x).expect("x");
        self.g.feed("y", y).expect("y");
        self.g.sgd_step(lr).expect("step")
    }
}

fn generated<N: Network + Default>(d: &Data<N::Elem>) -> N {
    let mut net = N::default();
    net.set_param("W1", d.w1.view().into_dyn()).expect("W1");
    net.set_param("b1", d.b1.view().into_dyn()).expect("b1");
    net.set_param("W2", d.w2.view().into_dyn()).expect("W2");
    net.set_param("b2", d.b2.view().into_dyn()).expect("b2");
    net
}

fn gen_step<N: Network>(
    net: &mut N,
    x: &Array2<N::Elem>,
    y: &Array2<N::Elem>,
    lr: N::Elem,
) -> N::Elem {
    net.feed("X", x).expect("X");
    net.feed("y", y).expect("y");
    net.sgd_step(lr).expect("step")
}

/// Benchmarks the three implementations of one shape, after checking they agree.
fn bench_shape<N: StepOn + Default>(c: &mut Criterion, dtype: &str, shape: Shape) {
    let d = Data::<N::Elem>::new(shape);
    let lr = N::Elem::from_f64(1e-3);
    let mut net: N = generated(&d);
    let mut on: N = generated(&d);
    let mut hand = Hand {
        w1: d.w1.clone(),
        b1: d.b1.clone(),
        w2: d.w2.clone(),
        b2: d.b2.clone(),
    };
    let mut rt = Runtime::new(&d);
    // Same work: two steps from the same start give the same losses.
    for _ in 0..2 {
        let (a, b, r) = (
            gen_step(&mut net, &d.x, &d.y, lr).to_f64(),
            hand.step(&d.x, &d.y, lr).to_f64(),
            rt.step(&d.x, &d.y, lr).to_f64(),
        );
        let borrowed = on.step_on(d.x.view(), d.y.view(), lr).to_f64();
        assert_eq!(
            a.to_bits(),
            borrowed.to_bits(),
            "a borrowed batch, the same step"
        );
        let tol = if dtype == "f32" { 1e-3 } else { 1e-9 };
        assert!(
            (a - b).abs() <= tol * b.abs().max(1.0) && (a - r).abs() <= tol * r.abs().max(1.0),
            "{a} {b} {r}"
        );
    }

    let (m, i, h, o) = shape;
    let id = format!("{m}x{i}x{h}x{o}");
    let mut group = c.benchmark_group(format!("step_{dtype}"));
    if m * i * h > 1 << 20 {
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(4));
    } else {
        group.measurement_time(Duration::from_secs(2));
    }
    group.warm_up_time(Duration::from_millis(500));
    group.bench_function(BenchmarkId::new("generated", &id), |b| {
        b.iter(|| gen_step(&mut net, black_box(&d.x), black_box(&d.y), lr))
    });
    group.bench_function(BenchmarkId::new("borrowed", &id), |b| {
        b.iter(|| on.step_on(black_box(d.x.view()), black_box(d.y.view()), lr))
    });
    group.bench_function(BenchmarkId::new("hand", &id), |b| {
        b.iter(|| hand.step(black_box(&d.x), black_box(&d.y), lr))
    });
    group.bench_function(BenchmarkId::new("graph", &id), |b| {
        b.iter(|| rt.step(black_box(&d.x), black_box(&d.y), lr))
    });
    group.finish();
}

/// The seed's network, generated and as a runtime graph (group `course`): the fixed cost of
/// a step, feeds included.
fn bench_course(c: &mut Criterion) {
    let x = Array2::from_shape_vec((2, 2), vec![-1.0, -2.0, -1.0, -2.0]).expect("X");
    let y = Array1::from_vec(vec![1.0, 2.0]);
    let w = Array2::from_shape_vec((2, 1), vec![2.0, 3.0]).expect("W");
    let b = Array1::from_vec(vec![-3.0]);
    let mut net = Course::default();
    net.set_param("W", w.view().into_dyn()).expect("W");
    net.set_param("b", b.view().into_dyn()).expect("b");
    let mut g = Graph::<f64>::new();
    let (gx, gy) = (g.input("X").expect("graph"), g.input("y").expect("graph"));
    let gw = g.param("W", &[2, 1]).expect("graph");
    let gb = g.param("b", &[1]).expect("graph");
    let f = g.linear("f", gx, gw, gb).expect("graph");
    let a = g.sigmoid("a", f).expect("graph");
    let cost = g.mse("cost", gy, a).expect("graph");
    g.set_loss(cost).expect("graph");
    g.set("W", &w).expect("W");
    g.set("b", &b).expect("b");
    fn step<N: Network<Elem = f64>>(n: &mut N, x: &Array2<f64>, y: &Array1<f64>) -> f64 {
        n.feed("X", x).expect("X");
        n.feed("y", y).expect("y");
        n.sgd_step(1e-3).expect("step")
    }
    // Same work, bit for bit.
    for _ in 0..2 {
        let (l, r) = (step(&mut net, &x, &y), step(&mut g, &x, &y));
        assert_eq!(l.to_bits(), r.to_bits(), "{l} {r}");
    }
    let mut group = c.benchmark_group("course");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_millis(500));
    group.bench_function("generated", |bench| {
        bench.iter(|| step(&mut net, black_box(&x), black_box(&y)))
    });
    group.bench_function("graph", |bench| {
        bench.iter(|| step(&mut g, black_box(&x), black_box(&y)))
    });
    group.finish();
}

/// The GEMM references at 1024³: `c = a·b` on each kernel.
const GEMMS: [&str; 3] = ["miniflow", "matrixmultiply", "gemm-crate"];

/// `out = a·b` on kernel `GEMMS[kernel]`.
fn gemm_on<T: Scalar>(kernel: usize, a: &Array2<T>, b: &Array2<T>, out: &mut Array2<T>) {
    match kernel {
        0 => matmul::nn(T::one(), a.view(), b.view(), T::zero(), out.view_mut()),
        1 => general_mat_mul(T::one(), a, b, T::zero(), out),
        _ => gemm_crate_nn(a, b, out),
    }
}

/// The GEMM references, in group `gemm_{dtype}{when}`: measured before and after the steps,
/// and the best rate of either run is the one the table divides by (on a shared machine,
/// the conservative choice).
fn gemm<T: Scalar>(c: &mut Criterion, dtype: &str, when: &str) {
    let n = 1024;
    let (a, b) = (fill::<T>(7, n, n), fill::<T>(8, n, n));
    let mut out = Array2::<T>::zeros((n, n));
    let mut group = c.benchmark_group(format!("gemm_{dtype}{when}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    for (kernel, name) in GEMMS.iter().enumerate() {
        group.bench_function(BenchmarkId::new(*name, "1024"), |bench| {
            bench.iter(|| gemm_on(kernel, &a, &b, &mut out))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_course(c);
    gemm::<f64>(c, "f64", "");
    bench_shape::<Tiny64>(c, "f64", SHAPES[0]);
    bench_shape::<Course64>(c, "f64", SHAPES[1]);
    bench_shape::<Mnist64>(c, "f64", SHAPES[2]);
    bench_shape::<Wide64>(c, "f64", SHAPES[3]);
    gemm::<f64>(c, "f64", "_after");
    gemm::<f32>(c, "f32", "");
    bench_shape::<Tiny32>(c, "f32", SHAPES[0]);
    bench_shape::<Course32>(c, "f32", SHAPES[1]);
    bench_shape::<Mnist32>(c, "f32", SHAPES[2]);
    bench_shape::<Wide32>(c, "f32", SHAPES[3]);
    gemm::<f32>(c, "f32", "_after");
}

criterion_group!(group, benches);

/// When this process started: estimates written before it are an earlier run's.
static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// criterion's median for `group/function/param`, in nanoseconds, if this run measured it
/// (with a filter, the files of the benchmarks it skipped hold an earlier run's, perhaps of
/// another build or feature set).
fn median_ns(group: &str, function: &str, param: &str) -> Option<f64> {
    let path = format!("target/criterion/{group}/{function}/{param}/new/estimates.json");
    let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if written < *STARTED.get()? {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let median = &text[text.find("\"median\"")?..];
    let start = median.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let rest = &median[start..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

fn time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// The table the README shows: medians, ratios, and the generated step's share of the best
/// GEMM rate measured in this run.
fn report() {
    println!(
        "\nSIMD level: {}; threads: {}",
        SimdLevel::current().name(),
        if cfg!(feature = "threads") {
            "all cores"
        } else {
            "one"
        }
    );
    println!("\n| dtype | batch x in x hidden x out | generated | generated, borrowed batch | hand-written ndarray | runtime graph | generated / hand | generated / graph | % of best GEMM |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for dtype in ["f64", "f32"] {
        // Each kernel's best rate over the runs before and after the steps.
        let rates: Vec<Option<f64>> = GEMMS
            .iter()
            .map(|g| {
                ["", "_after"]
                    .iter()
                    .filter_map(|when| median_ns(&format!("gemm_{dtype}{when}"), g, "1024"))
                    .map(|ns| 2.0 * 1024f64.powi(3) / ns)
                    .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
            })
            .collect();
        let peak = rates
            .iter()
            .flatten()
            .copied()
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        for (m, i, h, o) in SHAPES {
            let id = format!("{m}x{i}x{h}x{o}");
            let group = format!("step_{dtype}");
            let borrowed = median_ns(&group, "borrowed", &id).map_or("n/a".to_string(), time);
            let (Some(g), Some(hand), Some(graph)) = (
                median_ns(&group, "generated", &id),
                median_ns(&group, "hand", &id),
                median_ns(&group, "graph", &id),
            ) else {
                continue;
            };
            // Multiply-adds of the step: forward l1 and l2; backward dW2, ds1, dW1 (no dX).
            let flops = 2.0 * (2 * m * i * h + 3 * m * h * o) as f64;
            let share = peak.map_or("n/a".to_string(), |p| {
                format!("{:.0}%", 100.0 * flops / g / p)
            });
            println!(
                "| {dtype} | {id} | {} | {borrowed} | {} | {} | {:.2} | {:.3} | {share} |",
                time(g),
                time(hand),
                time(graph),
                g / hand,
                g / graph
            );
        }
        for (name, rate) in GEMMS.iter().zip(&rates) {
            if let Some(r) = rate {
                let best = if Some(*r) == peak { " (best)" } else { "" };
                println!("| {dtype} | GEMM 1024³, {name}{best} | {r:.1} GFLOP/s | | | | | | |");
            }
        }
    }
}

/// The large step's share of the GEMM rate measured **paired**: each round times a step on a
/// borrowed batch, a step with `feed`, and a 1024³ product on each kernel (each the second of
/// two calls), so the steps and the GEMMs see the same state of a shared host; the share
/// divides a step's median rate by the best kernel's median rate. (The table's share compares
/// medians measured minutes apart and divides by the best of six of them: a host drifting by
/// a few percent between groups moves it by as much.) `MINIFLOW_PAIRED_ROUNDS` rounds (25 by
/// default; 0 skips).
fn paired<N: StepOn + Default>(dtype: &str, shape: Shape, rounds: usize) {
    if rounds == 0 {
        return;
    }
    let d = Data::<N::Elem>::new(shape);
    let lr = N::Elem::from_f64(1e-3);
    let mut net: N = generated(&d);
    let mut fed: N = generated(&d);
    let n = 1024;
    let (a, b) = (fill::<N::Elem>(7, n, n), fill::<N::Elem>(8, n, n));
    let mut out = Array2::<N::Elem>::zeros((n, n));
    // Each call runs twice and the second is timed, so every one starts with its own data
    // in cache as it would in a loop (the step after the GEMMs' 24 MiB would otherwise start
    // cold, about 10% slower on the Zen 5).
    let timed = |f: &mut dyn FnMut()| {
        f();
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let mut times: [Vec<f64>; 5] = Default::default();
    for round in 0..=rounds {
        let t = [
            timed(&mut || {
                black_box(net.step_on(d.x.view(), d.y.view(), lr));
            }),
            timed(&mut || {
                black_box(gen_step(&mut fed, &d.x, &d.y, lr));
            }),
            timed(&mut || gemm_on(0, &a, &b, &mut out)),
            timed(&mut || gemm_on(1, &a, &b, &mut out)),
            timed(&mut || gemm_on(2, &a, &b, &mut out)),
        ];
        // Round 0 warms up.
        if round > 0 {
            for (v, t) in times.iter_mut().zip(t) {
                v.push(t);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m, i, h, o) = shape;
    let flops = 2.0 * (2 * m * i * h + 3 * m * h * o) as f64;
    let step = median(&mut times[0]);
    let step_fed = median(&mut times[1]);
    let rates: Vec<f64> = times[2..]
        .iter_mut()
        .map(|v| 2.0 * (n as f64).powi(3) / median(v) / 1e9)
        .collect();
    let (best, name) =
        rates.iter().zip(GEMMS).fold(
            (0.0, ""),
            |acc, (&r, g)| if r > acc.0 { (r, g) } else { acc },
        );
    let share = |t: f64| 100.0 * flops / t / 1e9 / best;
    println!(
        "| {dtype} | {m}x{i}x{h}x{o} | {} / {} | {best:.1} GFLOP/s ({name}) | {:.0}% / {:.0}% |",
        time(step * 1e9),
        time(step_fed * 1e9),
        share(step),
        share(step_fed)
    );
}

fn main() {
    STARTED.get_or_init(std::time::SystemTime::now);
    group();
    Criterion::default().configure_from_args().final_summary();
    report();
    let rounds = std::env::var("MINIFLOW_PAIRED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    if rounds > 0 {
        println!("\nPaired, {rounds} rounds of a step (borrowed batch, then fed) and a 1024³ product per kernel, each the second of two calls:\n");
        println!("| dtype | batch x in x hidden x out | step, borrowed / fed batch (medians) | best GEMM (median) | share, borrowed / fed |");
        println!("|---|---|---|---|---|");
        paired::<Wide64>("f64", SHAPES[3], rounds);
        paired::<Wide32>("f32", SHAPES[3], rounds);
    }
}
