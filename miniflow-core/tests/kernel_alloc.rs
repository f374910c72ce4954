//! The large-product kernels allocate nothing in steady state: the packed GEMM's buffers and
//! the fused sigmoid backward's scratch are per thread and grow once (counted with a counting
//! global allocator, on every SIMD level). The generated networks' own zero-allocation tests
//! (`tests/allocations.rs`) cover the small kernels.

use miniflow_core::ndarray::{Array1, Array2};
use miniflow_core::ops::{linear, matmul, sigmoid, with_simd_level, GradOut, SimdLevel};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn large_kernels_allocate_nothing_in_steady_state() {
    let (m, k, n) = (96, 200, 150);
    let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 3 + j) % 7) as f64 * 0.1);
    let w = Array2::from_shape_fn((k, n), |(i, j)| ((i + 2 * j) % 5) as f64 * 0.1);
    let w1 = Array2::from_shape_fn((n, 1), |(i, _)| i as f64 * 0.01);
    let b = Array1::from_elem(n, 0.5);
    let g = Array2::from_elem((m, n), 0.25);
    let g1 = Array2::from_elem((m, 1), 0.25);
    let mut out = Array2::zeros((m, n));
    let mut s = Array2::zeros((m, n));
    let mut dw = Array2::zeros((k, n));
    let mut dx = Array2::zeros((m, k));
    let mut dl = Array2::zeros((m, n));
    let mut db = Array1::zeros(n);
    let mut step = || {
        matmul::nn_bias(x.view(), w.view(), b.view(), out.view_mut());
        sigmoid::forward(out.view(), s.view_mut());
        matmul::tn(-0.1, x.view(), g.view(), 1.0, dw.view_mut());
        matmul::nt(1.0, g.view(), w.view(), 0.0, dx.view_mut());
        matmul::col_sums(1.0, g.view(), 0.0, db.view_mut());
        linear::backward_through_sigmoid(
            s.view(),
            w1.view(),
            g1.view(),
            GradOut::add(dl.view_mut()),
        );
        linear::backward_through_sigmoid(
            x.view(),
            w.view(),
            out.view(),
            GradOut::add_scaled(dx.view_mut(), -0.1),
        );
    };
    for level in SimdLevel::available() {
        with_simd_level(level, || {
            step();
            let before = ALLOCS.load(Ordering::Relaxed);
            for _ in 0..20 {
                step();
            }
            let after = ALLOCS.load(Ordering::Relaxed);
            assert_eq!(after - before, 0, "{}: 20 steps allocated", level.name());
        })
    }
}
