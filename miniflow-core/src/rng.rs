//! A small, seeded, deterministic pseudo-random number generator: xoshiro256** seeded through
//! SplitMix64, with uniform and normal floats, unbiased index sampling and a Fisher–Yates
//! shuffle.
//!
//! Everything miniflow draws at random (initial weights, shuffles, mini-batches, train/test
//! splits) goes through [`Rng`], so a run is fixed by its seed. The same seed gives a
//! bit-identical sequence on every platform: the generator is integer arithmetic, uniforms are
//! built from the top 53 bits, normals use the Marsaglia polar method with `sqrt` (correctly
//! rounded by IEEE 754) and a logarithm written here with plain arithmetic instead of the
//! platform's `ln` (whose last bit may differ between C libraries).
//!
//! [`Rng`] implements `rand_core`'s [`RngCore`] and [`SeedableRng`], so it works with `rand`'s
//! distributions, and every function that draws ([`init`](crate::init), the samplers of
//! [`data`](crate::data), [`Dataset::split_with`](crate::data::Dataset::split_with)) also
//! accepts any other `RngCore` generator.
//!
//! # The reproducibility guarantee
//!
//! A seeded run is a function of the seed alone: [`Rng::new`] (equal to
//! [`SeedableRng::seed_from_u64`]) fills the state by SplitMix64, and everything drawn is
//! computed from [`RngCore::next_u64`] outputs with integer arithmetic and correctly rounded
//! IEEE operations, so it is bit-identical on every platform and across miniflow versions that
//! keep the pinned sequences of this module's tests (the Boston run's losses with seed 42
//! included). With a generator of your own, the same holds for as long as it is deterministic:
//! miniflow only ever calls its `next_u64`.
//!
//! Not for cryptography.
//!
//! ```
//! use miniflow_core::rng::Rng;
//!
//! let mut a = Rng::new(42);
//! let mut b = Rng::new(42);
//! assert_eq!(a.next_u64(), b.next_u64());
//! let u = a.uniform();
//! assert!((0.0..1.0).contains(&u));
//! let mut order = [0, 1, 2, 3, 4];
//! a.shuffle(&mut order);
//! ```

/// The `rand_core` version miniflow implements (0.9, as `rand` 0.9 uses), so that a
/// generator of your own can be written without depending on it yourself.
pub use rand_core;
pub use rand_core::{RngCore, SeedableRng};

use rand_core::impls;

/// A xoshiro256** generator (Blackman and Vigna), seeded from a `u64` by SplitMix64.
///
/// Cloning gives a second generator that will produce the same sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Rng {
    pub(crate) s: [u64; 4],
    /// The second normal of the last polar-method pair, returned by the next `normal` call.
    pub(crate) spare: Option<f64>,
}

/// One step of SplitMix64: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`. Any seed is fine, 0 included: the
    /// state is filled by SplitMix64, so it is never all zero.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s, spare: None }
    }

    /// A new generator seeded from this one's next output: an independent-looking stream,
    /// still fixed by the original seed (e.g. one for initialisation and one for batches).
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }

    /// The next 64 uniformly distributed bits (the same as [`RngCore::next_u64`], callable
    /// without importing the trait).
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform `f64` in `[0, 1)`: the top 53 bits of [`next_u64`](Rng::next_u64) times
    /// 2⁻⁵³, so every value is a multiple of 2⁻⁵³.
    pub fn uniform(&mut self) -> f64 {
        uniform(self)
    }

    /// A uniform `f64` in `[low, high)` (`low + (high - low) · u`).
    pub fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// A standard normal `f64` (mean 0, standard deviation 1), by the Marsaglia polar method.
    /// Values come in pairs: every other call returns the second of the pair drawn before.
    pub fn normal(&mut self) -> f64 {
        let mut spare = self.spare.take();
        let z = normal(self, &mut spare);
        self.spare = spare;
        z
    }

    /// A normal `f64` with the given mean and standard deviation.
    pub fn normal_with(&mut self, mean: f64, std: f64) -> f64 {
        mean + std * self.normal()
    }

    /// A uniform index in `0..n`, without modulo bias (Lemire's multiply-and-reject method).
    ///
    /// There is no index below 0; for `n == 0` this returns 0 (and draws nothing), so callers
    /// must not use the result to index an empty collection.
    pub fn index(&mut self, n: usize) -> usize {
        index(self, n)
    }

    /// Fills `out` with indices drawn uniformly from `0..n` **with** replacement (the same
    /// index may appear several times), like the course's `resample`. For `n == 0` the slice
    /// is filled with zeros.
    pub fn indices_with_replacement(&mut self, n: usize, out: &mut [usize]) {
        indices_with_replacement(self, n, out);
    }

    /// Shuffles `items` in place (Fisher–Yates): every permutation is equally likely.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        shuffle(self, items);
    }
}

impl RngCore for Rng {
    /// The high 32 bits of the next 64 (the better half of xoshiro's output).
    fn next_u32(&mut self) -> u32 {
        (Rng::next_u64(self) >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        Rng::next_u64(self)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        impls::fill_bytes_via_next(self, dst);
    }
}

impl SeedableRng for Rng {
    /// The state itself: four little-endian `u64` words.
    type Seed = [u8; 32];

    /// A generator whose state is `seed` read as four little-endian words. xoshiro's state
    /// must not be all zero, so an all-zero seed gives `Rng::new(0)` instead.
    fn from_seed(seed: [u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (w, chunk) in s.iter_mut().zip(seed.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            return Rng::new(0);
        }
        Rng { s, spare: None }
    }

    /// The same generator as [`Rng::new`] (SplitMix64, not `rand_core`'s default PCG), so
    /// that both ways of seeding give the same run.
    fn seed_from_u64(seed: u64) -> Self {
        Rng::new(seed)
    }
}

/// A uniform `f64` in `[0, 1)` from any generator: the top 53 bits of its next `u64` times
/// 2⁻⁵³ (what [`Rng::uniform`] does).
pub fn uniform<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal from any generator by the Marsaglia polar method, which makes them in
/// pairs: the second is kept in `spare` and returned by the next call with the same `spare`
/// (what [`Rng::normal`] does with its own).
pub fn normal<R: RngCore + ?Sized>(rng: &mut R, spare: &mut Option<f64>) -> f64 {
    if let Some(z) = spare.take() {
        return z;
    }
    loop {
        let u = 2.0 * uniform(rng) - 1.0;
        let v = 2.0 * uniform(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            let factor = (-2.0 * ln(s) / s).sqrt();
            *spare = Some(v * factor);
            return u * factor;
        }
    }
}

/// A uniform index in `0..n` from any generator, without modulo bias (what [`Rng::index`]
/// does; 0 for `n <= 1`, drawing nothing).
pub fn index<R: RngCore + ?Sized>(rng: &mut R, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let range = n as u64;
    let mut m = u128::from(rng.next_u64()) * u128::from(range);
    if (m as u64) < range {
        // Reject the few low products that would make some indices more likely.
        let threshold = range.wrapping_neg() % range;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(range);
        }
    }
    // The high half is < range <= usize::MAX, so the cast is exact.
    (m >> 64) as usize
}

/// Fills `out` with indices drawn from `0..n` with replacement, from any generator.
pub fn indices_with_replacement<R: RngCore + ?Sized>(rng: &mut R, n: usize, out: &mut [usize]) {
    for slot in out {
        *slot = index(rng, n);
    }
}

/// Shuffles `items` in place (Fisher–Yates) with any generator.
pub fn shuffle<R: RngCore + ?Sized, T>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = index(rng, i + 1);
        items.swap(i, j);
    }
}

/// The natural logarithm of a positive, finite `x`, with basic arithmetic only so that it is
/// bit-identical on every platform (within a few ulp of the correctly rounded value).
///
/// `x = m · 2^e` with `m` in `[√2/2, √2)`, and `ln m = 2 atanh(s)` with `s = (m-1)/(m+1)`,
/// `|s| <= 0.1716`, summed as the odd series of atanh up to `s²⁵` (the next term is below
/// 10⁻¹⁹ of the sum).
fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let mut bits = x.to_bits();
    let mut e: i64 = 0;
    if bits >> 52 == 0 {
        // Subnormal: scale into the normal range first (exact).
        bits = (x * (1u64 << 54) as f64).to_bits();
        e -= 54;
    }
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let mut p = 1.0 / 25.0;
    for k in (0..12).rev() {
        p = p * z + 1.0 / (2 * k + 1) as f64;
    }
    let k = e as f64;
    k * LN2_HI + (2.0 * s * p + k * LN2_LO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_vectors() {
        // The reference outputs of SplitMix64 for seed 1234567 (Vigna's splitmix64.c).
        let mut s = 1_234_567;
        let got: Vec<u64> = (0..5).map(|_| splitmix64(&mut s)).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423,
                4593380528125082431,
                16408922859458223821
            ]
        );
    }

    #[test]
    fn xoshiro_sequence_is_pinned() {
        // Computed by an independent Python transcription of xoshiro256** / SplitMix64. If
        // these change, every seeded result in the project changes.
        let mut r = Rng::new(42);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                1546998764402558742,
                6990951692964543102,
                12544586762248559009,
                17057574109182124193
            ]
        );
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 11091344671253066420);
        assert_eq!(r.next_u64(), 13793997310169335082);
        let mut r = Rng::new(42);
        assert_eq!(r.uniform(), 0.08386297105988216);
        assert_eq!(r.uniform(), 0.3789802506626686);
    }

    #[test]
    fn same_seed_same_sequence_different_seed_different() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..100)
            .map(|_| a.normal().to_bits() ^ a.next_u64())
            .collect();
        let ys: Vec<u64> = (0..100)
            .map(|_| b.normal().to_bits() ^ b.next_u64())
            .collect();
        let zs: Vec<u64> = (0..100)
            .map(|_| c.normal().to_bits() ^ c.next_u64())
            .collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn ln_is_close_to_std() {
        let mut worst = 0u64;
        let mut r = Rng::new(1);
        for i in 0..20_000 {
            let x = if i % 2 == 0 {
                r.uniform() + f64::MIN_POSITIVE
            } else {
                (r.uniform() * 1400.0 - 700.0).exp()
            };
            let (a, b) = (ln(x), x.ln());
            let ulps = (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
            assert!(
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1e-300) || ulps <= 4,
                "ln({x}) = {a}, std {b}"
            );
            worst = worst.max(ulps);
        }
        assert!(worst <= 4, "worst {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
        assert!(ln(0.0) == f64::NEG_INFINITY && ln(-1.0).is_nan());
        assert!((ln(5e-324) - 5e-324f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(3);
        let n = 200_000;
        let (mut s1, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let u = r.uniform();
            assert!((0.0..1.0).contains(&u));
            s1 += u;
        }
        assert!((s1 / n as f64 - 0.5).abs() < 0.005);
        s1 = 0.0;
        let mut s4 = 0.0;
        for _ in 0..n {
            let z = r.normal();
            s1 += z;
            s2 += z * z;
            s4 += z * z * z * z;
        }
        let nf = n as f64;
        assert!((s1 / nf).abs() < 0.01, "mean {}", s1 / nf);
        assert!((s2 / nf - 1.0).abs() < 0.015, "variance {}", s2 / nf);
        assert!((s4 / nf - 3.0).abs() < 0.1, "kurtosis {}", s4 / nf);
        let x = r.normal_with(10.0, 0.0);
        assert_eq!(x, 10.0);
        let y = r.uniform_range(-2.0, -1.0);
        assert!((-2.0..-1.0).contains(&y));
    }

    #[test]
    fn index_is_in_range_and_unbiased() {
        let mut r = Rng::new(5);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.index(7)] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
        assert_eq!(r.index(0), 0);
        assert_eq!(r.index(1), 0);
        // A range that is not a power of two and close to 2^64 exercises the rejection.
        for _ in 0..1000 {
            assert!(r.index(usize::MAX - 3) < usize::MAX - 3);
        }
        let mut out = [99; 50];
        r.indices_with_replacement(3, &mut out);
        assert!(out.iter().all(|&i| i < 3));
        assert!(out.contains(&0) && out.contains(&1) && out.contains(&2));
    }

    #[test]
    fn shuffle_is_a_permutation_and_uniform() {
        let mut r = Rng::new(9);
        let mut v: Vec<usize> = (0..100).collect();
        r.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, sorted, "a shuffle of 100 items left them in order");

        // All 6 orders of 3 items appear about equally often.
        let mut seen = std::collections::HashMap::new();
        for _ in 0..60_000 {
            let mut a = [0, 1, 2];
            r.shuffle(&mut a);
            *seen.entry(a).or_insert(0usize) += 1;
        }
        assert_eq!(seen.len(), 6);
        assert!(
            seen.values().all(|&c| (9_400..10_600).contains(&c)),
            "{seen:?}"
        );
        r.shuffle::<u8>(&mut []);
    }

    #[test]
    fn rand_core_traits_give_the_same_streams() {
        // seed_from_u64 is Rng::new, not rand_core's PCG-based default.
        assert_eq!(Rng::seed_from_u64(42), Rng::new(42));
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        assert_eq!(RngCore::next_u64(&mut a), 1546998764402558742);
        assert_eq!(b.next_u64(), 1546998764402558742);
        assert_eq!(a.next_u32(), (6990951692964543102u64 >> 32) as u32);
        let mut bytes = [0u8; 12];
        let mut c = Rng::new(0);
        c.fill_bytes(&mut bytes);
        assert_eq!(bytes[..8], 11091344671253066420u64.to_le_bytes());
        // The last 4 bytes come from next_u32: the high half of the next u64.
        assert_eq!(
            bytes[8..],
            ((13793997310169335082u64 >> 32) as u32).to_le_bytes()
        );
        // from_seed is the raw state; all zeros is not a valid xoshiro state.
        let r = Rng::new(9);
        let mut seed = [0u8; 32];
        for (k, w) in r.s.iter().enumerate() {
            seed[8 * k..8 * k + 8].copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(Rng::from_seed(seed), r);
        assert_eq!(Rng::from_seed([0; 32]), Rng::new(0));
    }

    #[test]
    fn rands_distributions_accept_our_generator() {
        use rand::distr::{Distribution, Uniform};
        use rand::Rng as _;
        let mut r = Rng::new(1);
        let d = Uniform::new(10u32, 20).unwrap();
        let xs: Vec<u32> = (0..100).map(|_| d.sample(&mut r)).collect();
        assert!(xs.iter().all(|x| (10..20).contains(x)));
        let f: f64 = r.random();
        assert!((0.0..1.0).contains(&f));
        // Seeded, so the same again.
        let mut s = Rng::new(1);
        assert_eq!(xs[0], d.sample(&mut s));
    }

    #[test]
    fn the_free_functions_equal_the_methods_on_any_generator() {
        // The generic helpers, given an Rng through the trait, draw what the methods draw.
        let (mut a, mut b) = (Rng::new(5), Rng::new(5));
        let dyn_b: &mut dyn RngCore = &mut b;
        let mut spare = None;
        for _ in 0..5 {
            assert_eq!(a.normal().to_bits(), normal(dyn_b, &mut spare).to_bits());
            assert_eq!(a.index(17), index(dyn_b, 17));
        }
        let (mut x, mut y) = ([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]);
        a.shuffle(&mut x);
        shuffle(dyn_b, &mut y);
        assert_eq!(x, y);
    }

    #[test]
    fn fork_is_deterministic_and_distinct() {
        let mut a = Rng::new(11);
        let mut b = Rng::new(11);
        let (mut fa, mut fb) = (a.fork(), b.fork());
        assert_eq!(fa.next_u64(), fb.next_u64());
        assert_ne!(fa.next_u64(), a.next_u64());
    }
}
