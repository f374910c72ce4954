//! The packed matrix product behind the large products: `c = beta·c + alpha·a·b (+ bias)`.
//!
//! The classic blocked scheme (Goto, BLIS): `b` is cut into blocks of `KC` rows and `NC`
//! columns, each packed once into panels `NR` columns wide; `a` is read `MR` rows at a time,
//! in place when its layout allows (rows contiguous, or columns contiguous in a narrow or
//! shallow product: [`a_in_place`]), else packed a block of rows at a time; a
//! register-blocked micro-kernel multiplies one `a` panel by one `b` panel into an `MR × NR`
//! tile of sums held in registers, and stores it once per `KC` block. `KC` and `NC` come from
//! the core's L1d and L2 sizes (CPUID, read once per process: [`Blocking::sized`]).
//! Tiles: 8 × 24 (f64) / 8 × 48 (f32) on AVX-512 (24 accumulators of the 32 registers),
//! 6 × 8 / 6 × 16 on AVX2 (12 of 16), 4 × 8 portable; the last column panel only as wide as
//! its columns need.
//!
//! Every element of `c` is the same sequence of operations wherever its tile falls (a fused
//! or unfused multiply-add per term, in the order of `k`, blocks of `KC` fixed by `k` and the
//! process's blocking alone), so splitting the rows or columns of `c` between threads gives
//! bit-identical results. (A CPU with other cache sizes may block the terms differently and
//! round differently in the last bits, as another SIMD level does.)
//!
//! The packing buffers are per thread and grow once: a steady loop of products allocates
//! nothing.

#![allow(unsafe_code)]

use super::caches::Caches;
use super::simd::{multiversion, SimdLevel, Vek};
use crate::Scalar;
use std::cell::RefCell;

/// A matrix operand: element `(i, j)` is at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

impl<T> Mat<T> {
    #[inline(always)]
    unsafe fn at(self, i: usize, j: usize) -> *const T {
        self.ptr.offset(i as isize * self.rs + j as isize * self.cs)
    }
}

/// The output: `c[i, j]` at `ptr + i·ldc + j`, rows contiguous.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out<T> {
    pub ptr: *mut T,
    pub ldc: usize,
}

// SAFETY: `Mat` and `Out` are plain views handed to threads that each touch a disjoint part
// of the output, while the caller keeps the underlying buffers borrowed.
unsafe impl<T: Sync> Send for Mat<T> {}
unsafe impl<T: Sync> Sync for Mat<T> {}
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

/// How a tile of sums lands in `c`: `c = beta·c + bias[j] + alpha·sum`, `beta` 0 or 1
/// (0: `c` is overwritten, never read).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epi<T> {
    pub alpha: T,
    pub beta: T,
    pub bias: Option<*const T>,
}

/// Cache blocking, in elements: `KC` rows of `b` per block (the depth of one pass over a
/// tile), `NC` columns of `b` per packed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocking {
    pub kc: usize,
    pub nc: usize,
    /// Bytes of `a` packed per block of terms (when `a` is packed at all), once for all of
    /// `b`'s column blocks.
    pub a_block: usize,
    /// The L1d's ways, for [`a_in_place`].
    pub l1d_ways: usize,
}

impl Blocking {
    /// The blocking for elements of type `T` on this CPU (from [`Caches::get`]).
    pub(crate) fn for_elem<T>() -> Blocking {
        Blocking::sized(Caches::get(), std::mem::size_of::<T>())
    }

    /// Sized from the caches, for elements of `size` bytes:
    /// - `KC`: an `a` panel (8 rows, the most any level's tile has, × `KC` terms) fills at
    ///   most 2/3 of L1d, so it stays there while `b` streams past: 512 f64 on a 48 KiB L1d
    ///   (32 KiB panel), 320 on a 32 KiB one; between 128 and 512. The longer the block,
    ///   the fewer passes over `c` (each reloads and stores every tile).
    /// - `NC`: the packed block of `b` (`KC × NC`) fills at most 7/8 of L2, so each tile's
    ///   `b` panel comes from L2, not L3; a multiple of 192 bytes (24 f64 / 48 f32), every
    ///   level's widest tile.
    /// - When `a` is packed, up to 4 MiB of it per block of terms (all of it at the networks'
    ///   shapes), so each of its panels is copied once per product, not once per `NC`.
    ///
    /// On the Zen 5 (48 KiB L1d, 1 MiB L2), 2026-12-01: `KC` 512 / `NC` 216 (f64) against the
    /// earlier fixed 128 / 2048, whose 1 MiB block of `b` did not fit in L2 beside the rest.
    pub(crate) fn sized(caches: Caches, size: usize) -> Blocking {
        let kc = (caches.l1d * 2 / 3 / (8 * size) / 64 * 64).clamp(128, 512);
        let unit = 192 / size;
        let nc = (caches.l2 * 7 / 8 / (kc * size) / unit * unit).max(unit);
        Blocking {
            kc,
            nc,
            a_block: 4 << 20,
            l1d_ways: caches.l1d_ways,
        }
    }

    /// The depth of each block of terms for a product of depth `k`: nearly equal blocks of
    /// at most `KC` (784 = 2 × 392, not 512 + 272).
    fn kc_for(self, k: usize) -> usize {
        k.div_ceil(k.div_ceil(self.kc).max(1)).max(1)
    }

    /// The most rows of `a` packed per block of `kc` terms of `size` bytes.
    fn mc_for(self, m: usize, kc: usize, size: usize) -> usize {
        (self.a_block / (kc * size)).clamp(8, m.max(8))
    }
}

/// A 64-byte aligned chunk of packing buffer.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u64; 8]);

thread_local! {
    /// This thread's packing buffers for `a` and `b`.
    static BUFS: RefCell<(Vec<Line>, Vec<Line>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// This thread's scratch buffer for kernels that need a temporary.
    static SCRATCH: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a scratch slice of `len` elements of this thread, zeroed the first time and
/// holding whatever the last user left after that; it grows once to the largest size asked,
/// so a steady loop allocates nothing. (Not reentrant: `f` must not ask for scratch again.)
pub(crate) fn with_scratch<T: Scalar, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    if !super::simd::native::<T>() {
        return f(&mut vec![T::zero(); len]);
    }
    SCRATCH.with(|buf| {
        let mut buf = buf.borrow_mut();
        let p = grow(&mut buf, len * std::mem::size_of::<T>()).cast::<T>();
        // SAFETY: the buffer holds at least `len` elements of T, 64-byte aligned; T is f32
        // or f64, for which any bits (zero included) are a value.
        let slice = unsafe { std::slice::from_raw_parts_mut(p, len) };
        f(slice)
    })
}

fn grow(buf: &mut Vec<Line>, bytes: usize) -> *mut u8 {
    let lines = bytes.div_ceil(64);
    if buf.len() < lines {
        buf.resize(lines, Line([0; 8]));
    }
    buf.as_mut_ptr().cast()
}

// SAFETY: as for `Mat`: the bias is read-only and outlives the product.
unsafe impl<T: Sync> Send for Epi<T> {}
unsafe impl<T: Sync> Sync for Epi<T> {}

/// Products with at least this many multiply-adds are split between threads (with the
/// `threads` feature).
#[cfg(feature = "threads")]
const PAR_MACS: usize = 1 << 20;

/// `c[m×n] = beta·c + bias + alpha·a[m×k]·b[k×n]` on the current level; with the `threads`
/// feature a large product is split into bands of columns (or rows, when `c` is taller than
/// wide) computed on separate threads, each band exactly as one thread would compute it.
///
/// # Safety
/// `a`, `b` must address `m×k` and `k×n` readable elements, `c` `m×n` writable ones that
/// overlap neither, `bias` (if any) `n` readable elements.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: Mat<T>,
    b: Mat<T>,
    c: Out<T>,
    epi: Epi<T>,
    blocking: Blocking,
) {
    #[cfg(feature = "threads")]
    {
        let threads = super::pool::parts();
        if threads > 1 && m * n * k >= PAR_MACS {
            let level = SimdLevel::current();
            // Bands aligned to every level's tile (48 columns, 24 rows), so no band adds
            // partial tiles; the split is along the larger side of `c`.
            let by_cols = n >= m;
            let (len, align) = if by_cols { (n, 48) } else { (m, 24) };
            let band = len.div_ceil(threads).div_ceil(align) * align;
            let parts = len.div_ceil(band);
            let part = |p: usize| {
                // Whole structs captured (they are `Sync`), not their pointer fields.
                let (a, b, c, epi) = (a, b, c, epi);
                let (lo, hi) = (p * band, ((p + 1) * band).min(len));
                super::simd::with_simd_level(level, || {
                    // SAFETY: the bands are disjoint parts of `c`, within `gemm`'s contract.
                    unsafe {
                        if by_cols {
                            let b = Mat {
                                ptr: b.ptr.offset(lo as isize * b.cs),
                                ..b
                            };
                            let c = Out {
                                ptr: c.ptr.add(lo),
                                ..c
                            };
                            let epi = Epi {
                                bias: epi.bias.map(|p| p.add(lo)),
                                ..epi
                            };
                            gemm_one(m, hi - lo, k, a, b, c, epi, blocking)
                        } else {
                            let a = Mat {
                                ptr: a.ptr.offset(lo as isize * a.rs),
                                ..a
                            };
                            let c = Out {
                                ptr: c.ptr.add(lo * c.ldc),
                                ..c
                            };
                            gemm_one(hi - lo, n, k, a, b, c, epi, blocking)
                        }
                    }
                })
            };
            return super::pool::run(parts, &part);
        }
    }
    gemm_one(m, n, k, a, b, c, epi, blocking)
}

/// [`gemm`] on this thread.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_one<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: Mat<T>,
    b: Mat<T>,
    c: Out<T>,
    epi: Epi<T>,
    blocking: Blocking,
) {
    if m == 0 || n == 0 {
        return;
    }
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (abuf, bbuf) = &mut *bufs;
        let sz = std::mem::size_of::<T>();
        // Large enough for any level's tiles (MR <= 8, NR from 8 to 48): one panel of `a`
        // when every level reads it in place (the largest MR and the smallest NR are the
        // strictest case of `a_in_place`), else a block of it rounded up to whole panels; and
        // a block of `b`.
        let kc = blocking.kc_for(k);
        let a_rows = if a_in_place(a, 8, n, 8, kc, blocking.l1d_ways) {
            8
        } else {
            (blocking.mc_for(m, kc, sz).div_ceil(8) + 1) * 8
        };
        let (pa_len, pb_len) = (a_rows * kc, (blocking.nc.min(n) + 48) * kc);
        let pa = grow(abuf, pa_len * sz).cast::<T>();
        let pb = grow(bbuf, pb_len * sz).cast::<T>();
        let job = Job {
            m,
            n,
            k,
            a,
            b,
            c,
            epi,
            blocking,
            pa: pa as usize,
            pb: pb as usize,
            pa_len,
            pb_len,
        };
        run(job);
    });
}

/// One product with its packing buffers, as `run` takes it (pointers as integers so the
/// struct is plain data for `multiversion!`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Job<T> {
    m: usize,
    n: usize,
    k: usize,
    a: Mat<T>,
    b: Mat<T>,
    c: Out<T>,
    epi: Epi<T>,
    blocking: Blocking,
    pa: usize,
    pb: usize,
    /// Capacities of `pa` and `pb`, in elements (checked in debug builds).
    pa_len: usize,
    pb_len: usize,
}

multiversion!(
    fn run<T: Scalar, V, FMA>(job: Job<T>) {
        // SAFETY: `gemm`'s contract, and buffers sized for these blockings.
        unsafe { driver::<T, V>(job) }
    }
);

/// The blocked loops: for each block of `KC` terms, pack a block of `a`'s rows (unless it is
/// read in place), then for each block of `NC` columns pack that block of `b` once and run
/// the tiles row panel by row panel, so a panel of `a` stays in L1 while the `b` panels
/// stream past it from L2.
///
/// `a` is read in place (the panel then has a row and a term stride, no copy) when
/// [`a_in_place`] says so, and packed otherwise, and always for a partial last panel (which
/// would read past its last row).
#[inline(always)]
unsafe fn driver<T: Scalar, V: Vek<T>>(job: Job<T>) {
    let Job {
        m,
        n,
        k,
        a,
        b,
        c,
        epi,
        blocking,
        ..
    } = job;
    let (pa, pb) = (job.pa as *mut T, job.pb as *mut T);
    let (mr, nr) = (V::MR, V::NR);
    if k == 0 {
        return epilogue_only::<T, V>(m, n, c, epi);
    }
    let kc = blocking.kc_for(k);
    let in_place = a_in_place(a, mr, n, nr, kc, blocking.l1d_ways);
    // Rows of `a` per packed block, in nearly equal blocks of whole panels.
    // (Read in place, `a` needs no blocks: one block, so `b` is packed once per block.)
    let mc_max = if in_place {
        m.div_ceil(mr) * mr
    } else {
        let mblocks = m.div_ceil(blocking.mc_for(m, kc, std::mem::size_of::<T>()));
        m.div_ceil(mblocks).div_ceil(mr) * mr
    };
    let nc_max = blocking.nc.div_ceil(nr) * nr;
    debug_assert!(
        (if in_place { mr } else { mc_max }) * kc <= job.pa_len,
        "a's packing buffer"
    );
    debug_assert!(
        (nc_max.min(n.div_ceil(V::LANES) * V::LANES)) * kc <= job.pb_len,
        "b's packing buffer"
    );
    let mut pc = 0;
    while pc < k {
        let kcb = kc.min(k - pc);
        // The first block of terms applies beta and the bias; later ones add.
        let e = if pc == 0 {
            epi
        } else {
            Epi {
                alpha: epi.alpha,
                beta: T::one(),
                bias: None,
            }
        };
        let mut ic = 0;
        while ic < m {
            let mc = mc_max.min(m - ic);
            if !in_place {
                // Every panel of this block of `a`, once for all of `b`'s column blocks.
                let mut ir = 0;
                while ir < mc {
                    pack_a::<T, V>(a, ic + ir, pc, mr.min(mc - ir), kcb, pa.add(ir * kcb));
                    ir += mr;
                }
            }
            let mut jc = 0;
            while jc < n {
                let nc = nc_max.min(n - jc);
                pack_b::<T, V>(b, pc, jc, kcb, nc, nr, pb);
                let mut ir = 0;
                while ir < mc {
                    let rows = mr.min(mc - ir);
                    let (ap, ars, acs) = if !in_place {
                        (pa.add(ir * kcb) as *const T, 1, mr)
                    } else if rows == mr {
                        (a.at(ic + ir, pc), a.rs as usize, a.cs as usize)
                    } else {
                        // The last, partial panel: packed, so no row past the end is read.
                        pack_a::<T, V>(a, ic + ir, pc, rows, kcb, pa);
                        (pa as *const T, 1, mr)
                    };
                    let mut jr = 0;
                    while jr < nc {
                        let cols = nr.min(nc - jr);
                        let e = Epi {
                            bias: e.bias.map(|p| p.add(jc + jr)),
                            ..e
                        };
                        V::tile(
                            cols.div_ceil(V::LANES),
                            kcb,
                            ap,
                            ars,
                            acs,
                            pb.add(jr * kcb),
                            c.ptr.add((ic + ir) * c.ldc + jc + jr),
                            c.ldc,
                            rows,
                            cols,
                            e,
                        );
                        jr += nr;
                    }
                    ir += mr;
                }
                jc += nc;
            }
            ic += mc;
        }
        pc += kcb;
    }
}

/// Whether [`driver`] reads `a` in place at a tile of `mr × nr`, for a product `n` wide in
/// blocks of `kc` terms.
///
/// - Rows contiguous: yes, unless the row stride is a multiple of 4 KiB on an L1d with fewer
///   than `mr + 4` ways (the `mr` rows' lines would share every set they touch, with little
///   room left for `b`).
/// - Columns contiguous: each term's values are one line, a whole stride from the last
///   term's. A tile reads each line once, so in place costs nothing until later tiles come
///   back for a panel spread over more pages than the TLB's first level holds: in place
///   when at most two tiles meet each panel (`n <= 2·nr`) or a panel spans at most 256 KiB.
///   (Zen 5, 2026-12-01: the 1024 x 256 x 1024 weight gradient, 2 MiB a panel, ran at 0.84
///   of the `gemm` crate's rate in place and 0.95 packed; packing at 13 x 4096 x 10 and
///   256 x 64 x 16 made the Boston step at batch 4,096 and the width-16 step 4% and 25%
///   slower, and at 256 x 64 x 64, 128 KiB a panel, the width-64 step 6% slower.)
fn a_in_place<T>(a: Mat<T>, mr: usize, n: usize, nr: usize, kc: usize, l1d_ways: usize) -> bool {
    let size = std::mem::size_of::<T>();
    if a.cs == 1 && a.rs > 0 {
        let aliasing = (a.rs.unsigned_abs() * size).is_multiple_of(4096);
        !aliasing || l1d_ways >= mr + 4
    } else {
        a.rs == 1 && a.cs > 0 && (n <= 2 * nr || kc * a.cs.unsigned_abs() * size <= 256 << 10)
    }
}

/// `k == 0`: `c = beta·c + bias`.
#[inline(always)]
unsafe fn epilogue_only<T: Scalar, V: Vek<T>>(m: usize, n: usize, c: Out<T>, epi: Epi<T>) {
    for i in 0..m {
        for j in 0..n {
            let p = c.ptr.add(i * c.ldc + j);
            let base = if epi.beta == T::zero() { T::zero() } else { *p };
            *p = match epi.bias {
                Some(b) => base + *b.add(j),
                None => base,
            };
        }
    }
}

/// Packs rows `i0..i0 + rows` (`rows <= MR`), columns `pc..pc + kcb` of `a` into one panel
/// of `MR` rows: for each `p`, the `MR` values `a[i0 + i, pc + p]` (0 past the last row).
///
/// Term by term, so the panel is written in order and the `rows` source rows (or the one
/// source column) are read as parallel streams.
#[inline(always)]
unsafe fn pack_a<T: Scalar, V: Vek<T>>(
    a: Mat<T>,
    i0: usize,
    pc: usize,
    rows: usize,
    kcb: usize,
    dst: *mut T,
) {
    let mr = V::MR;
    if a.rs == 1 && rows == mr {
        // Each term's `MR` values are contiguous in `a`.
        for p in 0..kcb {
            // Each term is on another line (often another page): ask for them ahead.
            prefetch(a.at(i0, pc + (p + 16).min(kcb - 1)));
            std::ptr::copy_nonoverlapping(a.at(i0, pc + p), dst.add(p * mr), mr);
        }
        return;
    }
    for p in 0..kcb {
        let d = dst.add(p * mr);
        for i in 0..mr {
            *d.add(i) = if i < rows {
                *a.at(i0 + i, pc + p)
            } else {
                T::zero()
            };
        }
    }
}

/// Packs rows `pc..pc + kcb`, columns `jc..jc + nc` of `b` into panels of `nr` columns: panel
/// `q` holds, for each `p`, the `nr` values `b[pc + p, jc + q·nr + j]` (0 past the last
/// column).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_b<T: Scalar, V: Vek<T>>(
    b: Mat<T>,
    pc: usize,
    jc: usize,
    kcb: usize,
    nc: usize,
    nr: usize,
    dst: *mut T,
) {
    let mut q = 0;
    if b.cs == 1 {
        // Rows of `b` are contiguous: walk them term by term, each row segment one
        // sequential read scattered over the full panels (panel by panel, every term would be
        // a new page: a row stride is usually >= 4 KiB, which the prefetchers do not follow).
        let full = nc / nr * nr;
        if full > 0 {
            let src = b.at(pc, jc);
            for p in 0..kcb {
                let s = src.offset(p as isize * b.rs);
                let mut q = 0;
                while q < full {
                    let d = dst.add(q * kcb + p * nr);
                    let mut j = 0;
                    while j < nr {
                        V::load(s.add(q + j)).store(d.add(j));
                        j += V::LANES;
                    }
                    q += nr;
                }
            }
        }
        q = full;
    }
    while q < nc {
        let cols = nr.min(nc - q);
        let panel = dst.add(q * kcb);
        // The last panel is only as wide as the registers its columns need.
        let nr = cols.div_ceil(V::LANES) * V::LANES;
        if b.cs == 1 && cols == nr {
            // Rows of `b` are contiguous: copy a row segment per `p`, a register at a time.
            let src = b.at(pc, jc + q);
            for p in 0..kcb {
                let (s, d) = (src.offset(p as isize * b.rs), panel.add(p * nr));
                let mut j = 0;
                while j < nr {
                    V::load(s.add(j)).store(d.add(j));
                    j += V::LANES;
                }
            }
        } else if b.cs == 1 {
            for p in 0..kcb {
                let d = panel.add(p * nr);
                let s = b.at(pc + p, jc + q);
                for j in 0..nr {
                    *d.add(j) = if j < cols { *s.add(j) } else { T::zero() };
                }
            }
        } else {
            for j in 0..nr {
                if j < cols {
                    let src = b.at(pc, jc + q + j);
                    for p in 0..kcb {
                        *panel.add(p * nr + j) = *src.offset(p as isize * b.rs);
                    }
                } else {
                    for p in 0..kcb {
                        *panel.add(p * nr + j) = T::zero();
                    }
                }
            }
        }
        q += cols;
    }
}

/// One term of the micro-kernel: a column of the `a` panel times a row of the `b` panel.
#[inline(always)]
unsafe fn step<T: Scalar, V: Vek<T>, const MR: usize, const NV: usize>(
    acc: &mut [[V; NV]; MR],
    a: *const T,
    ars: usize,
    b: *const T,
) {
    let mut bv = [V::zero(); NV];
    for (v, bv) in bv.iter_mut().enumerate() {
        *bv = V::load(b.add(v * V::LANES));
    }
    for (i, acc) in acc.iter_mut().enumerate() {
        let av = V::load_splat(a.add(i * ars));
        for v in 0..NV {
            acc[v] = av.mul_add(bv[v], acc[v]);
        }
    }
}

/// The micro-kernel: the `MR × NV·LANES` tile `Σ_p a[·, p]·b[p, ·]` over `kc` packed terms,
/// stored into the `rows × cols` top-left part of the tile at `c` through `epi`.
///
/// # Safety
/// `a` and `b` must hold `kc·MR` and `kc·NV·LANES` packed values; `c` must address a
/// `rows × cols` block with row stride `ldc`; `epi.bias`, `cols` values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile<T: Scalar, V: Vek<T>, const MR: usize, const NV: usize>(
    kc: usize,
    a: *const T,
    ars: usize,
    acs: usize,
    b: *const T,
    c: *mut T,
    ldc: usize,
    rows: usize,
    cols: usize,
    epi: Epi<T>,
) {
    let lanes = V::LANES;
    let nr = NV * lanes;
    if epi.beta != T::zero() {
        // The tile of `c` is read at the end: start bringing it in now.
        for i in 0..rows {
            let row = c.add(i * ldc);
            let mut off = 0;
            while off < cols {
                prefetch(row.add(off));
                off += 64 / std::mem::size_of::<T>();
            }
            prefetch(row.add(cols - 1));
        }
    }
    let mut acc = [[V::zero(); NV]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        step::<T, V, MR, NV>(&mut acc, a, ars, b);
        a = a.add(acs);
        b = b.add(nr);
    }
    let alpha = V::splat(epi.alpha);
    let read_c = epi.beta != T::zero();
    if rows == MR && cols == nr {
        for (i, acc) in acc.iter().enumerate() {
            let crow = c.add(i * ldc);
            for (v, &s) in acc.iter().enumerate() {
                let cp = crow.add(v * lanes);
                let mut base = if read_c { V::load(cp) } else { V::zero() };
                if let Some(bias) = epi.bias {
                    base = base.add(V::load(bias.add(v * lanes)));
                }
                s.mul_add(alpha, base).store(cp);
            }
        }
    } else {
        // A partial tile: the same formula, element by element.
        let mut buf = [[T::zero(); 64]; MR];
        for (i, acc) in acc.iter().enumerate() {
            for (v, &s) in acc.iter().enumerate() {
                s.store(buf[i].as_mut_ptr().add(v * lanes));
            }
        }
        for (i, row) in buf.iter().enumerate().take(rows) {
            let crow = c.add(i * ldc);
            for (j, &s) in row.iter().enumerate().take(cols) {
                let cp = crow.add(j);
                let mut base = if read_c { *cp } else { T::zero() };
                if let Some(bias) = epi.bias {
                    base = base + *bias.add(j);
                }
                *cp = if V::FMA {
                    s.mul_add(epi.alpha, base)
                } else {
                    s * epi.alpha + base
                };
            }
        }
    }
}

/// The level a product runs on (for tests and benchmarks).
#[allow(dead_code)]
pub(crate) fn level() -> SimdLevel {
    SimdLevel::current()
}

/// Asks the cache for the line holding `p` (a hint: no effect on results).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{with_simd_level, SimdLevel};

    /// Blockings as the caches of three machine classes give them.
    #[test]
    fn blocking_follows_the_caches() {
        let zen5 = Caches {
            l1d: 48 << 10,
            l1d_ways: 12,
            l2: 1 << 20,
        };
        let zen4 = Caches {
            l1d: 32 << 10,
            l1d_ways: 8,
            l2: 1 << 20,
        };
        let spr = Caches {
            l1d: 48 << 10,
            l1d_ways: 12,
            l2: 2 << 20,
        };
        let got = |c, size| {
            let b = Blocking::sized(c, size);
            (b.kc, b.nc)
        };
        assert_eq!(got(zen5, 8), (512, 216));
        assert_eq!(got(zen5, 4), (512, 432));
        assert_eq!(got(zen4, 8), (320, 336));
        assert_eq!(got(spr, 8), (512, 432));
        assert_eq!(got(Caches::FALLBACK, 8), got(zen4, 8));
        // A tiny cache still gives usable blocks.
        let tiny = Caches {
            l1d: 8 << 10,
            l1d_ways: 2,
            l2: 64 << 10,
        };
        let b = Blocking::sized(tiny, 8);
        assert_eq!((b.kc, b.nc), (128, 48));
        // Nearly equal blocks of terms, never deeper than KC.
        let b = Blocking::sized(zen5, 8);
        assert_eq!(b.kc_for(784), 392);
        assert_eq!(b.kc_for(512), 512);
        assert_eq!(b.kc_for(1030), 344);
        assert_eq!(b.kc_for(1), 1);
    }

    /// `beta·c0 + alpha·a·b` in plain loops.
    fn naive(
        alpha: f64,
        beta: f64,
        a: &[f64],
        b: &[f64],
        c0: &[f64],
        (m, k, n): (usize, usize, usize),
    ) -> Vec<f64> {
        (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                let s: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                beta * c0[ij] + alpha * s
            })
            .collect()
    }

    fn values(len: usize, seed: f64) -> Vec<f64> {
        (0..len).map(|i| (i as f64 * 0.61 + seed).sin()).collect()
    }

    /// Blockings far smaller than any cache's, so small products cross every kind of block
    /// edge (several blocks of terms, of `a`'s rows and of `b`'s columns, partial panels
    /// and tiles), with `a` read in place and packed and `b` by rows and by columns, on every
    /// level.
    #[test]
    fn every_block_edge_matches_the_naive_product() {
        // An L1d of one way packs `a` at a 4 KiB row stride; of twelve, reads it in place.
        let blockings = [
            Blocking {
                kc: 64,
                nc: 48,
                a_block: 24 * 64 * 8,
                l1d_ways: 1,
            },
            Blocking {
                kc: 64,
                nc: 48,
                a_block: 24 * 64 * 8,
                l1d_ways: 12,
            },
            Blocking {
                kc: 40,
                nc: 24,
                a_block: 8 * 40 * 8,
                l1d_ways: 1,
            },
            Blocking {
                kc: 512,
                nc: 2048,
                a_block: 4 << 20,
                l1d_ways: 12,
            },
        ];
        for level in SimdLevel::available() {
            with_simd_level(level, || {
                for &(m, k, n) in &[(50, 150, 70), (9, 64, 25), (33, 129, 100)] {
                    let (a, b, c0) = (values(m * k, 0.1), values(k * n, 0.2), values(m * n, 0.3));
                    let at: Vec<f64> = (0..k * m).map(|pi| a[(pi % m) * k + pi / m]).collect();
                    let want = naive(-0.5, 1.0, &a, &b, &c0, (m, k, n));
                    let bias = values(n, 0.4);
                    let want_bias: Vec<f64> = naive(1.0, 0.0, &a, &b, &c0, (m, k, n))
                        .iter()
                        .enumerate()
                        .map(|(ij, v)| v + bias[ij % n])
                        .collect();
                    // `a` by rows (in place); by columns, `m` apart (in place: a panel spans
                    // at most 256 KiB here); by rows 4 KiB apart (in place or packed, by the
                    // L1d's ways); by columns 32 KiB apart (packed when more than two tiles
                    // meet a panel).
                    let wide: Vec<f64> = (0..m * 512)
                        .map(|x| {
                            if x % 512 < k {
                                a[(x / 512) * k + x % 512]
                            } else {
                                f64::NAN
                            }
                        })
                        .collect();
                    let tall: Vec<f64> = (0..4096 * k)
                        .map(|x| {
                            if x % 4096 < m {
                                a[(x % 4096) * k + x / 4096]
                            } else {
                                f64::NAN
                            }
                        })
                        .collect();
                    let layouts = [
                        Mat {
                            ptr: a.as_ptr(),
                            rs: k as isize,
                            cs: 1,
                        },
                        Mat {
                            ptr: at.as_ptr(),
                            rs: 1,
                            cs: m as isize,
                        },
                        Mat {
                            ptr: wide.as_ptr(),
                            rs: 512,
                            cs: 1,
                        },
                        Mat {
                            ptr: tall.as_ptr(),
                            rs: 1,
                            cs: 4096,
                        },
                    ];
                    // `b` by rows (packed a term at a time over full panels) and by columns
                    // (packed a column at a time).
                    let bt: Vec<f64> = (0..n * k).map(|jp| b[(jp % k) * n + jp / k]).collect();
                    let b_layouts = [
                        Mat {
                            ptr: b.as_ptr(),
                            rs: n as isize,
                            cs: 1,
                        },
                        Mat {
                            ptr: bt.as_ptr(),
                            rs: 1,
                            cs: k as isize,
                        },
                    ];
                    for blocking in blockings {
                        for ((l, &am), (lb, &bm)) in layouts
                            .iter()
                            .enumerate()
                            .flat_map(|la| b_layouts.iter().enumerate().map(move |lb| (la, lb)))
                        {
                            if l == 2 && k > 512 {
                                continue;
                            }
                            let tag = format!(
                                "{} {m}x{k}x{n} layout {l}, b layout {lb}, {blocking:?}",
                                level.name()
                            );
                            let mut c = c0.clone();
                            let out = Out {
                                ptr: c.as_mut_ptr(),
                                ldc: n,
                            };
                            let epi = Epi {
                                alpha: -0.5,
                                beta: 1.0,
                                bias: None,
                            };
                            // SAFETY: the operands hold m×k, k×n and m×n values at these strides.
                            unsafe { gemm(m, n, k, am, bm, out, epi, blocking) };
                            let err = c
                                .iter()
                                .zip(&want)
                                .map(|(x, y)| (x - y).abs())
                                .fold(0.0, f64::max);
                            assert!(err < 1e-12, "{tag}: off by {err}");
                            let mut c = vec![f64::NAN; m * n];
                            let out = Out {
                                ptr: c.as_mut_ptr(),
                                ldc: n,
                            };
                            let epi = Epi {
                                alpha: 1.0,
                                beta: 0.0,
                                bias: Some(bias.as_ptr()),
                            };
                            // SAFETY: as above; `c` is not read (beta 0).
                            unsafe { gemm(m, n, k, am, bm, out, epi, blocking) };
                            let err = c
                                .iter()
                                .zip(&want_bias)
                                .map(|(x, y)| (x - y).abs())
                                .fold(0.0, f64::max);
                            assert!(err < 1e-12, "{tag} with bias: off by {err}");
                        }
                    }
                }
            })
        }
    }
}
