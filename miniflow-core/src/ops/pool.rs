//! The `threads` feature's workers: a few threads started on the first large product and kept,
//! so a step pays no thread start (and allocates nothing) in steady state.
//!
//! [`run`] hands parts `0..parts` of one job to the workers and the calling thread, and
//! returns when every part is done. Which thread computes a part never changes its result:
//! the callers split outputs (rows or columns of a product), never a sum, so the results are
//! bit-identical to one thread's. The number of threads is `MINIFLOW_THREADS` if set (1 turns
//! the feature off), else the machine's available parallelism.

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

/// A job: `f(part)` for each part; thread `t` of `threads` (the caller is 0, worker `w` is
/// `w + 1`) runs parts `t, t + threads, ...`, so a band of a product always lands on the same
/// thread (whose buffers are sized for it after the first step). It lives on the stack of
/// `run`, which returns only once every part is done and no worker holds the job any more.
struct Job {
    /// The work, its lifetime erased (see above).
    f: *const (dyn Fn(usize) + Sync),
    parts: usize,
    threads: usize,
    done: AtomicUsize,
    /// Workers that took the job and have not let go of it yet.
    users: AtomicUsize,
}

/// The current job, as the workers find it.
#[derive(Clone, Copy)]
struct JobRef(*const Job);

// SAFETY: a `Job` is `Sync` and outlives every `JobRef` handed out (see `Job`).
unsafe impl Send for JobRef {}

// SAFETY: `f` is `Sync` and outlives the job (see `Job`); the rest is atomics.
unsafe impl Sync for Job {}

impl Job {
    /// Runs the parts of thread `t`.
    fn work(&self, t: usize) {
        for part in (t..self.parts).step_by(self.threads) {
            // SAFETY: `run` keeps the closure alive until `done == parts`, which cannot
            // happen before this part is counted below.
            let f = unsafe { &*self.f };
            // A panic in a part is contained: the part counts as done (kernels do not panic
            // on shapes their callers checked).
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(part)));
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

struct Pool {
    /// The job being worked on, and a counter bumped for each new job.
    state: Mutex<(u64, Option<JobRef>)>,
    wake: Condvar,
    /// The workers started.
    workers: AtomicUsize,
    /// Whether a job is in flight: the pool runs one job at a time; a product on another
    /// thread meanwhile runs its parts itself.
    busy: std::sync::atomic::AtomicBool,
}

thread_local! {
    /// Parts a product on this thread is split into, if a test asked (0: `threads()`).
    static PARTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Into how many parts a product on this thread is split: [`threads`], unless
/// [`with_parts`] says otherwise.
pub(crate) fn parts() -> usize {
    match PARTS.with(|p| p.get()) {
        0 => threads(),
        n => n,
    }
}

/// Runs `f` with products on this thread split into `parts` parts (1: not split), whatever
/// the thread count; for tests comparing split and unsplit results.
#[doc(hidden)]
pub fn with_parts<R>(parts: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            PARTS.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PARTS.with(|p| p.replace(parts.max(1))));
    f()
}

/// How many threads a product may use (the caller included).
pub(crate) fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("MINIFLOW_THREADS")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 64)
    })
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            state: Mutex::new((0, None)),
            wake: Condvar::new(),
            workers: AtomicUsize::new(0),
            busy: std::sync::atomic::AtomicBool::new(false),
        }));
        for i in 0..threads() - 1 {
            let spawned = std::thread::Builder::new()
                .name(format!("miniflow-{i}"))
                .spawn(move || worker(pool, i + 1));
            if spawned.is_err() {
                break;
            }
            pool.workers.fetch_add(1, Ordering::Relaxed);
        }
        pool
    })
}

fn worker(pool: &'static Pool, me: usize) {
    let mut seen = 0;
    loop {
        let job = {
            let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.0 == seen {
                state = pool.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            seen = state.0;
            let job = state.1;
            if let Some(JobRef(job)) = job {
                // SAFETY: the job is published, so `run` is still waiting on it.
                unsafe { &*job }.users.fetch_add(1, Ordering::Relaxed);
            }
            job
        };
        if let Some(JobRef(job)) = job {
            // SAFETY: `run` does not return while `users` counts this thread.
            let job = unsafe { &*job };
            job.work(me);
            job.users.fetch_sub(1, Ordering::Release);
        }
    }
}

/// Runs `f(part)` for every part in `0..parts`, on the workers and this thread; returns when
/// all are done. Allocates nothing (after the pool's first start).
pub(crate) fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 || threads() <= 1 {
        // One thread: the parts one after the other (the same results).
        (0..parts).for_each(f);
        return;
    }
    let pool = pool();
    let threads = pool.workers.load(Ordering::Relaxed) + 1;
    let claimed = pool
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_ok();
    if threads == 1 || !claimed {
        (0..parts).for_each(f);
        return;
    }
    let f: *const (dyn Fn(usize) + Sync + '_) = f;
    // SAFETY: only the lifetime changes; the job never outlives this call (see `Job`).
    #[allow(clippy::missing_transmute_annotations)]
    let f: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
    let job = Job {
        f,
        parts,
        threads,
        done: AtomicUsize::new(0),
        users: AtomicUsize::new(0),
    };
    {
        let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        state.1 = Some(JobRef(&job));
    }
    pool.wake.notify_all();
    job.work(0);
    wait(|| job.done.load(Ordering::Acquire) >= parts);
    // No new worker may take the job now; wait for those that did to let go of it.
    pool.state.lock().unwrap_or_else(|e| e.into_inner()).1 = None;
    wait(|| job.users.load(Ordering::Acquire) == 0);
    pool.busy.store(false, Ordering::Release);
}

/// Spins briefly, then yields, until `ready`.
fn wait(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        if spins < 1 << 12 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}
