//! The instruction sets kernels run on, chosen once per process, and the vector type kernels
//! are written over.
//!
//! Each kernel that benefits is compiled three times, for AVX-512 (F, BW, DQ, VL), for
//! AVX2+FMA and for the portable baseline, and [`SimdLevel::current`] picks the copy at run
//! time: the best level the CPU has, unless the `MINIFLOW_SIMD` environment variable asks for
//! a lower one (`avx2` or `portable`; read once, on the first kernel call). A level above what
//! the CPU supports is never used, whatever is asked.
//!
//! Kernels are written once, generic over a [`Vek`] (one SIMD register of `T`): `Avx512<T>`
//! (8 f64 or 16 f32 lanes), `Avx2<T>` (4 or 8) and `Portable<T>` (8 lanes of plain arrays,
//! which the compiler maps onto the baseline's vector registers). The copies differ in their
//! rounding only where a fused multiply-add replaces a multiply and an add.

// The intrinsics are `unsafe`: each is called only from code compiled with the features it
// needs (the copies `multiversion!` makes, entered after checking the level), and the raw
// loads and stores stay inside the slices their callers pass.
#![allow(unsafe_code)]

use super::gemm::Epi;
use crate::Scalar;
use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level the kernels are compiled for, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SimdLevel {
    /// The target's baseline (SSE2 on x86-64): plain Rust, vectorized by the compiler.
    Portable = 1,
    /// AVX2 with fused multiply-add (x86-64, Haswell and Zen 1 onwards).
    Avx2 = 2,
    /// AVX-512 F, BW, DQ and VL (x86-64, Skylake-X and Zen 4 onwards).
    Avx512 = 3,
}

impl SimdLevel {
    /// Every level, lowest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512];

    /// The level's name, as `MINIFLOW_SIMD` spells it.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// The best level this CPU runs.
    pub fn detected() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
                    return SimdLevel::Avx512;
                }
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Portable
    }

    /// The levels this CPU runs, lowest first (always at least `Portable`).
    pub fn available() -> impl Iterator<Item = SimdLevel> {
        let best = SimdLevel::detected();
        SimdLevel::ALL.into_iter().filter(move |&l| l <= best)
    }

    /// The level kernels on this thread use: the process's (the detected one, or the lower
    /// one `MINIFLOW_SIMD` names), unless a test forced another on this thread.
    #[inline]
    pub fn current() -> SimdLevel {
        let forced = FORCED.with(Cell::get);
        let code = if forced != 0 {
            forced
        } else {
            match PROCESS.load(Ordering::Relaxed) {
                0 => init_process(),
                l => l,
            }
        };
        SimdLevel::from_code(code)
    }

    fn from_code(code: u8) -> SimdLevel {
        match code {
            3 => SimdLevel::Avx512,
            2 => SimdLevel::Avx2,
            _ => SimdLevel::Portable,
        }
    }

    fn parse(s: &str) -> Option<SimdLevel> {
        SimdLevel::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// The process's level, 0 until the first kernel call sets it.
static PROCESS: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// A level forced on this thread by [`with_simd_level`], 0 if none.
    static FORCED: Cell<u8> = const { Cell::new(0) };
}

#[cold]
fn init_process() -> u8 {
    let best = SimdLevel::detected();
    let asked = std::env::var("MINIFLOW_SIMD")
        .ok()
        .and_then(|s| SimdLevel::parse(&s));
    let level = asked.map_or(best, |a| a.min(best));
    PROCESS.store(level as u8, Ordering::Relaxed);
    level as u8
}

/// Runs `f` with the kernels of this thread on `level` (lowered to what the CPU has), then
/// restores the previous level. For tests comparing the levels on one machine without
/// touching the environment; a level applies to the calling thread only (the `threads`
/// feature's workers take the caller's).
#[doc(hidden)]
pub fn with_simd_level<R>(level: SimdLevel, f: impl FnOnce() -> R) -> R {
    struct Restore(u8);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let level = level.min(SimdLevel::detected());
    let _restore = Restore(FORCED.with(|c| c.replace(level as u8)));
    f()
}

/// `a·b + c`: fused in the copies compiled with FMA (`FMA = true`), separate multiply and add
/// in the portable copy (where `mul_add` would be a slow library call).
#[inline(always)]
pub(crate) fn madd<T: Scalar, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Whether `T` is `f64`. Folded at compile time.
#[inline(always)]
pub(crate) fn is_f64<T: Scalar>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>()
}

/// Whether `T` is `f64` or `f32`, the types the x86 copies are written for (any other
/// [`Scalar`] runs the portable copy). Folded at compile time.
#[inline(always)]
pub(crate) fn native<T: Scalar>() -> bool {
    is_f64::<T>() || std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
}

/// One SIMD register of `T`. The methods of the x86 types may only run in code compiled for
/// their level (the copies `multiversion!` makes); the kernels are private to this crate and
/// reach them only through it.
pub(crate) trait Vek<T: Scalar>: Copy {
    /// Lanes per register.
    const LANES: usize;
    /// Whether [`mul_add`](Vek::mul_add) is fused.
    const FMA: bool;
    /// Rows of the matrix product's register tile.
    const MR: usize;
    /// Columns of the matrix product's register tile (a multiple of `LANES`).
    const NR: usize;

    /// [`gemm::tile`](super::gemm::tile) at this level's tile size, `nv` registers wide
    /// (`nv·LANES <= NR`: the last, narrower column panel).
    ///
    /// # Safety
    /// As for `gemm::tile`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        nv: usize,
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
    );

    /// Every lane `x`.
    fn splat(x: T) -> Self;
    /// `LANES` elements from `p`.
    ///
    /// # Safety
    /// `p..p + LANES` must be readable.
    unsafe fn load(p: *const T) -> Self;
    /// Stores the lanes at `p`.
    ///
    /// # Safety
    /// `p..p + LANES` must be writable.
    unsafe fn store(self, p: *mut T);
    /// Every lane `*p` (a broadcast load, folded into the multiply-add that uses it).
    ///
    /// # Safety
    /// `p` must be readable.
    #[inline(always)]
    unsafe fn load_splat(p: *const T) -> Self {
        Self::splat(*p)
    }
    /// `self + b`.
    fn add(self, b: Self) -> Self;
    /// `self - b`.
    fn sub(self, b: Self) -> Self;
    /// `self · b`.
    fn mul(self, b: Self) -> Self;
    /// `self / b`.
    fn div(self, b: Self) -> Self;
    /// `self · b + c`, fused if [`FMA`](Vek::FMA).
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// Lanewise minimum (`b` where either is NaN).
    fn min(self, b: Self) -> Self;
    /// Lanewise maximum (`b` where either is NaN).
    fn max(self, b: Self) -> Self;
    /// Lanes below `t` set to 0, the others kept (NaN kept).
    fn zero_below(self, t: Self) -> Self;
    /// `2^k` for `t = k + 1.5·2^52` (f64) or `k + 1.5·2^23` (f32), `k` a valid exponent:
    /// the exponent built from the integer sitting in the low mantissa bits of `t`.
    fn pow2_of_rounded(t: Self) -> Self;

    /// The first `LANES` elements of `s` (which must hold that many).
    #[inline(always)]
    fn read(s: &[T]) -> Self {
        assert!(s.len() >= Self::LANES);
        // SAFETY: checked just above.
        unsafe { Self::load(s.as_ptr()) }
    }

    /// Stores the lanes into the first `LANES` elements of `s` (which must hold that many).
    #[inline(always)]
    fn write(self, s: &mut [T]) {
        assert!(s.len() >= Self::LANES);
        // SAFETY: checked just above.
        unsafe { self.store(s.as_mut_ptr()) }
    }

    /// All lanes 0.
    #[inline(always)]
    fn zero() -> Self {
        Self::splat(T::zero())
    }

    /// The first `n <= LANES` lanes from `p`, the rest 0.
    ///
    /// # Safety
    /// `p..p + n` must be readable.
    #[inline(always)]
    unsafe fn load_n(p: *const T, n: usize) -> Self {
        let mut buf = [T::zero(); 16];
        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n.min(16));
        Self::load(buf.as_ptr())
    }

    /// Stores the first `n <= LANES` lanes at `p`.
    ///
    /// # Safety
    /// `p..p + n` must be writable.
    #[inline(always)]
    unsafe fn store_n(self, p: *mut T, n: usize) {
        let mut buf = [T::zero(); 16];
        self.store(buf.as_mut_ptr());
        std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n.min(16));
    }

    /// The first `s.len() < LANES` lanes from `s`, the rest 0.
    #[inline(always)]
    fn load_part(s: &[T]) -> Self {
        // SAFETY: `s` holds the elements read.
        unsafe { Self::load_n(s.as_ptr(), s.len().min(Self::LANES)) }
    }

    /// Stores the first `s.len() < LANES` lanes into `s`.
    #[inline(always)]
    fn store_part(self, s: &mut [T]) {
        // SAFETY: `s` holds the elements written.
        unsafe { self.store_n(s.as_mut_ptr(), s.len().min(Self::LANES)) }
    }

    /// The sum of the lanes, added pairwise in a fixed order.
    #[inline(always)]
    fn sum(self) -> T {
        let mut buf = [T::zero(); 16];
        // SAFETY: `buf` holds 16 >= LANES elements.
        unsafe { self.store(buf.as_mut_ptr()) };
        let mut n = Self::LANES;
        while n > 1 {
            n /= 2;
            for l in 0..n {
                buf[l] = buf[l] + buf[l + n];
            }
        }
        buf[0]
    }
}

/// `LANES` values of `T` in a plain array: the portable copy's register.
#[derive(Clone, Copy)]
pub(crate) struct Portable<T>([T; 8]);

#[allow(clippy::needless_range_loop)] // lanewise loops over three arrays read clearer indexed
impl<T: Scalar> Portable<T> {
    #[inline(always)]
    fn map2(self, b: Self, f: impl Fn(T, T) -> T) -> Self {
        let mut r = self.0;
        for l in 0..8 {
            r[l] = f(self.0[l], b.0[l]);
        }
        Portable(r)
    }
}

#[allow(clippy::needless_range_loop)]
impl<T: Scalar> Vek<T> for Portable<T> {
    const LANES: usize = 8;
    const FMA: bool = false;
    const MR: usize = 4;
    const NR: usize = 8;

    #[inline(always)]
    unsafe fn tile(
        _nv: usize,
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
        super::gemm::tile::<T, Self, 4, 1>(kc, a, ars, acs, b, c, ldc, rows, cols, epi)
    }

    #[inline(always)]
    fn splat(x: T) -> Self {
        Portable([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        Portable(std::ptr::read_unaligned(p.cast::<[T; 8]>()))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        std::ptr::write_unaligned(p.cast::<[T; 8]>(), self.0)
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        self.map2(b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        self.map2(b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        self.map2(b, |x, y| x * y)
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        self.map2(b, |x, y| x / y)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        let mut r = c.0;
        for l in 0..8 {
            r[l] = self.0[l] * b.0[l] + c.0[l];
        }
        Portable(r)
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        self.map2(b, |x, y| if x < y { x } else { y })
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        self.map2(b, |x, y| if x > y { x } else { y })
    }
    #[inline(always)]
    fn zero_below(self, t: Self) -> Self {
        self.map2(t, |x, t| if x < t { T::zero() } else { x })
    }
    #[inline(always)]
    fn pow2_of_rounded(t: Self) -> Self {
        let mut r = t.0;
        for l in 0..8 {
            r[l] = pow2_of_rounded_scalar(t.0[l]);
        }
        Portable(r)
    }
}

/// [`Vek::pow2_of_rounded`] on one value.
#[inline(always)]
pub(crate) fn pow2_of_rounded_scalar<T: Scalar>(t: T) -> T {
    if is_f64::<T>() {
        let t = t.to_f64();
        T::from_f64(f64::from_bits(t.to_bits().wrapping_add(1023) << 52))
    } else {
        let t = t.to_f64() as f32;
        T::from_f64(f64::from(f32::from_bits(
            t.to_bits().wrapping_add(127) << 23,
        )))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{is_f64, Epi, Vek};
    use crate::Scalar;
    use std::arch::x86_64::*;
    use std::marker::PhantomData;

    /// An AVX-512 register: 8 f64 or 16 f32 (kept as `__m512d`, reinterpreted for f32).
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512<T>(__m512d, PhantomData<T>);

    /// An AVX2 register: 4 f64 or 8 f32.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2<T>(__m256d, PhantomData<T>);

    macro_rules! both {
        ($T:ident, $d:expr, $s:expr) => {
            if is_f64::<$T>() {
                $d
            } else {
                $s
            }
        };
    }

    impl<T: Scalar> Avx512<T> {
        #[inline(always)]
        fn w(v: __m512d) -> Self {
            Avx512(v, PhantomData)
        }
        #[inline(always)]
        fn s(self) -> __m512 {
            unsafe { _mm512_castpd_ps(self.0) }
        }
        #[inline(always)]
        fn ws(v: __m512) -> Self {
            Self::w(unsafe { _mm512_castps_pd(v) })
        }
    }

    impl<T: Scalar> Vek<T> for Avx512<T> {
        const LANES: usize = 64 / std::mem::size_of::<T>();
        const FMA: bool = true;
        const MR: usize = 8;
        const NR: usize = 3 * Self::LANES;

        #[inline(always)]
        unsafe fn tile(
            nv: usize,
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
            use super::super::gemm::tile;
            match nv {
                3 => tile::<T, Self, 8, 3>(kc, a, ars, acs, b, c, ldc, rows, cols, epi),
                2 => tile::<T, Self, 8, 2>(kc, a, ars, acs, b, c, ldc, rows, cols, epi),
                _ => tile::<T, Self, 8, 1>(kc, a, ars, acs, b, c, ldc, rows, cols, epi),
            }
        }

        #[inline(always)]
        fn splat(x: T) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_set1_pd(x.to_f64())),
                    Self::ws(_mm512_set1_ps(x.to_f64() as f32))
                )
            }
        }
        #[inline(always)]
        unsafe fn load(p: *const T) -> Self {
            Self::w(_mm512_loadu_pd(p.cast()))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut T) {
            _mm512_storeu_pd(p.cast(), self.0)
        }
        #[inline(always)]
        unsafe fn load_splat(p: *const T) -> Self {
            both!(
                T,
                Self::w(_mm512_set1_pd(*p.cast::<f64>())),
                Self::ws(_mm512_set1_ps(*p.cast::<f32>()))
            )
        }
        #[inline(always)]
        unsafe fn load_n(p: *const T, n: usize) -> Self {
            // Masked-off lanes are not read (and cannot fault).
            let mask = (1u32 << n.min(Self::LANES)) - 1;
            both!(
                T,
                Self::w(_mm512_maskz_loadu_pd(mask as u8, p.cast())),
                Self::ws(_mm512_maskz_loadu_ps(mask as u16, p.cast()))
            )
        }
        #[inline(always)]
        unsafe fn store_n(self, p: *mut T, n: usize) {
            let mask = (1u32 << n.min(Self::LANES)) - 1;
            both!(
                T,
                _mm512_mask_storeu_pd(p.cast(), mask as u8, self.0),
                _mm512_mask_storeu_ps(p.cast(), mask as u16, self.s())
            )
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_add_pd(self.0, b.0)),
                    Self::ws(_mm512_add_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_sub_pd(self.0, b.0)),
                    Self::ws(_mm512_sub_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn mul(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_mul_pd(self.0, b.0)),
                    Self::ws(_mm512_mul_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn div(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_div_pd(self.0, b.0)),
                    Self::ws(_mm512_div_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_fmadd_pd(self.0, b.0, c.0)),
                    Self::ws(_mm512_fmadd_ps(self.s(), b.s(), c.s()))
                )
            }
        }
        #[inline(always)]
        fn min(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_min_pd(self.0, b.0)),
                    Self::ws(_mm512_min_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn max(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm512_max_pd(self.0, b.0)),
                    Self::ws(_mm512_max_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn zero_below(self, t: Self) -> Self {
            unsafe {
                both!(
                    T,
                    {
                        let keep = _mm512_cmp_pd_mask::<_CMP_NLT_UQ>(self.0, t.0);
                        Self::w(_mm512_maskz_mov_pd(keep, self.0))
                    },
                    {
                        let keep = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(self.s(), t.s());
                        Self::ws(_mm512_maskz_mov_ps(keep, self.s()))
                    }
                )
            }
        }
        #[inline(always)]
        fn pow2_of_rounded(t: Self) -> Self {
            unsafe {
                let bits = _mm512_castpd_si512(t.0);
                both!(
                    T,
                    Self::w(_mm512_castsi512_pd(_mm512_slli_epi64::<52>(
                        _mm512_add_epi64(bits, _mm512_set1_epi64(1023))
                    ))),
                    Self::w(_mm512_castsi512_pd(_mm512_slli_epi32::<23>(
                        _mm512_add_epi32(bits, _mm512_set1_epi32(127))
                    )))
                )
            }
        }
    }

    /// Lanes `0..n` of 4 × 64 bits set.
    #[inline(always)]
    unsafe fn mask64(n: usize) -> __m256i {
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3))
    }

    /// Lanes `0..n` of 8 × 32 bits set.
    #[inline(always)]
    unsafe fn mask32(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    impl<T: Scalar> Avx2<T> {
        #[inline(always)]
        fn w(v: __m256d) -> Self {
            Avx2(v, PhantomData)
        }
        #[inline(always)]
        fn s(self) -> __m256 {
            unsafe { _mm256_castpd_ps(self.0) }
        }
        #[inline(always)]
        fn ws(v: __m256) -> Self {
            Self::w(unsafe { _mm256_castps_pd(v) })
        }
    }

    impl<T: Scalar> Vek<T> for Avx2<T> {
        const LANES: usize = 32 / std::mem::size_of::<T>();
        const FMA: bool = true;
        const MR: usize = 6;
        const NR: usize = 2 * Self::LANES;

        #[inline(always)]
        unsafe fn tile(
            nv: usize,
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
            use super::super::gemm::tile;
            match nv {
                2 => tile::<T, Self, 6, 2>(kc, a, ars, acs, b, c, ldc, rows, cols, epi),
                _ => tile::<T, Self, 6, 1>(kc, a, ars, acs, b, c, ldc, rows, cols, epi),
            }
        }

        #[inline(always)]
        fn splat(x: T) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_set1_pd(x.to_f64())),
                    Self::ws(_mm256_set1_ps(x.to_f64() as f32))
                )
            }
        }
        #[inline(always)]
        unsafe fn load(p: *const T) -> Self {
            Self::w(_mm256_loadu_pd(p.cast()))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut T) {
            _mm256_storeu_pd(p.cast(), self.0)
        }
        #[inline(always)]
        unsafe fn load_splat(p: *const T) -> Self {
            both!(
                T,
                Self::w(_mm256_set1_pd(*p.cast::<f64>())),
                Self::ws(_mm256_set1_ps(*p.cast::<f32>()))
            )
        }
        #[inline(always)]
        unsafe fn load_n(p: *const T, n: usize) -> Self {
            // Masked-off lanes are not read (and cannot fault).
            both!(
                T,
                Self::w(_mm256_maskload_pd(p.cast(), mask64(n))),
                Self::ws(_mm256_maskload_ps(p.cast(), mask32(n)))
            )
        }
        #[inline(always)]
        unsafe fn store_n(self, p: *mut T, n: usize) {
            both!(
                T,
                _mm256_maskstore_pd(p.cast(), mask64(n), self.0),
                _mm256_maskstore_ps(p.cast(), mask32(n), self.s())
            )
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_add_pd(self.0, b.0)),
                    Self::ws(_mm256_add_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_sub_pd(self.0, b.0)),
                    Self::ws(_mm256_sub_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn mul(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_mul_pd(self.0, b.0)),
                    Self::ws(_mm256_mul_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn div(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_div_pd(self.0, b.0)),
                    Self::ws(_mm256_div_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_fmadd_pd(self.0, b.0, c.0)),
                    Self::ws(_mm256_fmadd_ps(self.s(), b.s(), c.s()))
                )
            }
        }
        #[inline(always)]
        fn min(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_min_pd(self.0, b.0)),
                    Self::ws(_mm256_min_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn max(self, b: Self) -> Self {
            unsafe {
                both!(
                    T,
                    Self::w(_mm256_max_pd(self.0, b.0)),
                    Self::ws(_mm256_max_ps(self.s(), b.s()))
                )
            }
        }
        #[inline(always)]
        fn zero_below(self, t: Self) -> Self {
            unsafe {
                both!(
                    T,
                    {
                        let keep = _mm256_cmp_pd::<_CMP_NLT_UQ>(self.0, t.0);
                        Self::w(_mm256_and_pd(keep, self.0))
                    },
                    {
                        let keep = _mm256_cmp_ps::<_CMP_NLT_UQ>(self.s(), t.s());
                        Self::ws(_mm256_and_ps(keep, self.s()))
                    }
                )
            }
        }
        #[inline(always)]
        fn pow2_of_rounded(t: Self) -> Self {
            unsafe {
                let bits = _mm256_castpd_si256(t.0);
                both!(
                    T,
                    Self::w(_mm256_castsi256_pd(_mm256_slli_epi64::<52>(
                        _mm256_add_epi64(bits, _mm256_set1_epi64x(1023))
                    ))),
                    Self::w(_mm256_castsi256_pd(_mm256_slli_epi32::<23>(
                        _mm256_add_epi32(bits, _mm256_set1_epi32(127))
                    )))
                )
            }
        }
    }
}

/// Defines `pub(crate) fn $name<T: Scalar>(args) -> ret` running `$body` through the copy for
/// [`SimdLevel::current`]: the body is generic over `T`, a vector type `$V: Vek<T>` and a
/// `const $fma: bool` (whether that copy has fused multiply-add), and is compiled once per
/// level with that level's target features. The body is plain code; only the dispatch (and
/// whatever intrinsics `Vek` wraps) is `unsafe`.
macro_rules! multiversion {
    (ymm; $($rest:tt)*) => {
        $crate::ops::simd::multiversion!(@cap true; $($rest)*);
    };
    (@cap $ymm:literal; $(#[$attr:meta])* fn $name:ident<$T:ident: Scalar, $V:ident, $fma:ident>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        #[inline]
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name<$T: $crate::Scalar>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments, unused_variables, dead_code)]
            fn body<$T: $crate::Scalar, $V: $crate::ops::simd::Vek<$T>, const $fma: bool>(
                $($arg: $ty),*
            ) $(-> $ret)? $body

            let mut level = if $crate::ops::simd::native::<$T>() {
                $crate::ops::simd::SimdLevel::current()
            } else {
                $crate::ops::simd::SimdLevel::Portable
            };
            if $ymm && level == $crate::ops::simd::SimdLevel::Avx512 {
                level = $crate::ops::simd::SimdLevel::Avx2;
            }
            match level {
                #[cfg(target_arch = "x86_64")]
                $crate::ops::simd::SimdLevel::Avx512 => {
                    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                    #[allow(clippy::too_many_arguments)]
                    fn avx512<$T: $crate::Scalar>($($arg: $ty),*) $(-> $ret)? {
                        body::<$T, $crate::ops::simd::Avx512<$T>, true>($($arg),*)
                    }
                    // SAFETY: the level is at most the detected one: the CPU has the features.
                    #[allow(unsafe_code)]
                    unsafe { avx512($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                $crate::ops::simd::SimdLevel::Avx2 => {
                    #[target_feature(enable = "avx2,fma")]
                    #[allow(clippy::too_many_arguments)]
                    fn avx2<$T: $crate::Scalar>($($arg: $ty),*) $(-> $ret)? {
                        body::<$T, $crate::ops::simd::Avx2<$T>, true>($($arg),*)
                    }
                    // SAFETY: as above.
                    #[allow(unsafe_code)]
                    unsafe { avx2($($arg),*) }
                }
                _ => body::<$T, $crate::ops::simd::Portable<$T>, false>($($arg),*),
            }
        }
    };
    ($($rest:tt)*) => {
        $crate::ops::simd::multiversion!(@cap false; $($rest)*);
    };
}

pub(crate) use multiversion;

/// `e^x` for `x` clamped to the range where the result is a normal number, on a register:
/// the same algorithm as [`Scalar::exp_clamped`] (within 2 ulp of `exp`).
#[inline(always)]
pub(crate) fn exp_clamped<T: Scalar, V: Vek<T>>(x: V) -> V {
    if is_f64::<T>() {
        let c = |v: f64| V::splat(T::from_f64(v));
        // Bounds first: `max`/`min` return their second operand for NaN, so NaN flows through.
        let x = c(709.0).min(c(-708.0).max(x));
        let round = c(6_755_399_441_055_744.0);
        let t = x.mul_add(c(std::f64::consts::LOG2_E), round);
        let k = t.sub(round);
        let r = k.mul_add(c(-0.693_147_180_369_123_8), x);
        let r = k.mul_add(c(-1.908_214_929_270_587_7e-10), r);
        let mut p = c(1.0 / 6_227_020_800.0);
        for coef in crate::scalar::EXP_F64_TAYLOR {
            p = p.mul_add(r, c(coef));
        }
        p.mul(V::pow2_of_rounded(t))
    } else {
        let c = |v: f32| V::splat(T::from_f64(f64::from(v)));
        let x = c(88.0).min(c(-87.0).max(x));
        let round = c(12_582_912.0);
        let t = x.mul_add(c(std::f32::consts::LOG2_E), round);
        let k = t.sub(round);
        let r = k.mul_add(c(-0.693_359_4), x);
        let r = k.mul_add(c(2.121_944_4e-4), r);
        let mut p = c(1.0 / 40_320.0);
        for coef in crate::scalar::EXP_F32_TAYLOR {
            p = p.mul_add(r, c(coef));
        }
        p.mul(V::pow2_of_rounded(t))
    }
}

/// A function applied lane by lane, on a register of any level. (A trait with an
/// `#[inline(always)]` method rather than a closure: a closure may be left out of line,
/// compiled without the level's features, where the intrinsics it calls cannot inline.)
pub(crate) trait Lanewise<T: Scalar>: Copy {
    /// The function on each lane of `x`.
    fn apply<V: Vek<T>>(self, x: V) -> V;
}

/// `out[i] = f(x[i])` a register at a time, four independent registers per pass (so a long
/// dependency chain in `f`, like `exp`'s polynomial, overlaps with its neighbours'), the last
/// few elements through a partial register.
#[inline(always)]
pub(crate) fn map<T: Scalar, V: Vek<T>, F: Lanewise<T>>(x: &[T], out: &mut [T], f: F) {
    let lanes = V::LANES;
    let n = x.len().min(out.len());
    let (x, out) = (&x[..n], &mut out[..n]);
    let wide = n / (4 * lanes) * (4 * lanes);
    let (xw, xr) = x.split_at(wide);
    let (ow, or) = out.split_at_mut(wide);
    for (x, o) in xw
        .chunks_exact(4 * lanes)
        .zip(ow.chunks_exact_mut(4 * lanes))
    {
        let (x0, x1, x2, x3) = (
            V::read(x),
            V::read(&x[lanes..]),
            V::read(&x[2 * lanes..]),
            V::read(&x[3 * lanes..]),
        );
        let (y0, y1, y2, y3) = (f.apply(x0), f.apply(x1), f.apply(x2), f.apply(x3));
        y0.write(o);
        y1.write(&mut o[lanes..]);
        y2.write(&mut o[2 * lanes..]);
        y3.write(&mut o[3 * lanes..]);
    }
    let one = xr.len() / lanes * lanes;
    let (x1, xr) = xr.split_at(one);
    let (o1, or) = or.split_at_mut(one);
    for (x, o) in x1.chunks_exact(lanes).zip(o1.chunks_exact_mut(lanes)) {
        f.apply(V::read(x)).write(o);
    }
    if !xr.is_empty() {
        f.apply(V::load_part(xr)).store_part(or);
    }
}
