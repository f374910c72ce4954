//! Mini-batch samplers: which rows each batch of an epoch holds.

use crate::error::{Error, Result};
use crate::rng::{self, Rng};
use rand_core::RngCore;

/// Yields the row indices of each mini-batch of an epoch. The slices are borrowed from the
/// sampler and reused, so sampling allocates nothing after construction.
///
/// ```
/// use miniflow_core::data::{Sampler, Shuffled};
///
/// let mut s = Shuffled::new(10, 4, 7)?.drop_last(true);
/// assert_eq!(s.batches_per_epoch(), 2);
/// s.start_epoch();
/// while let Some(rows) = s.next_batch() {
///     assert_eq!(rows.len(), 4);
/// }
/// # Ok::<(), miniflow_core::Error>(())
/// ```
pub trait Sampler {
    /// How many batches each epoch yields.
    fn batches_per_epoch(&self) -> usize;

    /// Starts an epoch (reshuffling, if the sampler shuffles).
    fn start_epoch(&mut self);

    /// The next batch of this epoch, or `None` when the epoch is over.
    fn next_batch(&mut self) -> Option<&[usize]>;
}

fn check_batch(function: &'static str, n: usize, batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::InvalidArgument {
            function,
            what: "the batch size must be at least 1".to_string(),
        });
    }
    if n == 0 {
        return Err(Error::InvalidArgument {
            function,
            what: "there are no samples to draw batches from".to_string(),
        });
    }
    Ok(())
}

/// Each epoch visits every sample once, in a new random order (or in order, for
/// [`Shuffled::sequential`]), in batches of `batch_size`. The last, partial batch is kept
/// unless [`drop_last`](Shuffled::drop_last) is set.
///
/// Each epoch shuffles the previous epoch's order, drawing from the sampler's generator: an
/// [`Rng`] seeded by [`new`](Shuffled::new), or any `rand_core` generator given to
/// [`with_rng`](Shuffled::with_rng).
#[derive(Clone, Debug)]
pub struct Shuffled<R = Rng> {
    pub(crate) order: Vec<usize>,
    pub(crate) batch_size: usize,
    pub(crate) drop_last: bool,
    pub(crate) shuffle: bool,
    pub(crate) pos: usize,
    pub(crate) rng: R,
}

impl Shuffled<Rng> {
    /// Batches of `batch_size` over `n` samples, reshuffled each epoch from `seed`.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Result<Self> {
        check_batch("Shuffled::new", n, batch_size)?;
        Self::with_rng(n, batch_size, Rng::new(seed))
    }

    /// Batches of `batch_size` over `n` samples, in order, the same every epoch (for
    /// evaluation).
    pub fn sequential(n: usize, batch_size: usize) -> Result<Self> {
        check_batch("Shuffled::sequential", n, batch_size)?;
        Ok(Shuffled {
            shuffle: false,
            ..Shuffled::new(n, batch_size, 0)?
        })
    }
}

impl<R: RngCore> Shuffled<R> {
    /// Batches of `batch_size` over `n` samples, reshuffled each epoch by `rng`.
    pub fn with_rng(n: usize, batch_size: usize, rng: R) -> Result<Self> {
        check_batch("Shuffled::with_rng", n, batch_size)?;
        Ok(Shuffled {
            order: (0..n).collect(),
            batch_size,
            drop_last: false,
            shuffle: true,
            pos: n,
            rng,
        })
    }

    /// Whether to drop the last batch of an epoch when it is smaller than `batch_size`
    /// (keeping every batch the same size lets a network keep its buffers).
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// The generator the sampler draws from.
    pub fn rng(&self) -> &R {
        &self.rng
    }
}

impl<R: RngCore> Sampler for Shuffled<R> {
    fn batches_per_epoch(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    fn start_epoch(&mut self) {
        if self.shuffle {
            rng::shuffle(&mut self.rng, &mut self.order);
        }
        self.pos = 0;
    }

    fn next_batch(&mut self) -> Option<&[usize]> {
        let start = self.pos;
        let end = start.saturating_add(self.batch_size).min(self.order.len());
        if start >= end || (self.drop_last && end - start < self.batch_size) {
            return None;
        }
        self.pos = end;
        self.order.get(start..end)
    }
}

/// The course's sampler: each batch is `batch_size` rows drawn uniformly **with
/// replacement** (sklearn's `resample`), and an epoch is `n / batch_size` batches (integer
/// division: 506 / 11 = 46), so an epoch need not visit every sample.
#[derive(Clone, Debug)]
pub struct WithReplacement<R = Rng> {
    pub(crate) n: usize,
    pub(crate) steps: usize,
    pub(crate) step: usize,
    pub(crate) buf: Vec<usize>,
    pub(crate) rng: R,
}

impl WithReplacement<Rng> {
    /// Batches of `batch_size` drawn from `n` samples, `n / batch_size` per epoch, from
    /// `seed`. Fails if that is 0 batches.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Result<Self> {
        Self::check("WithReplacement::new", n, batch_size)?;
        Self::with_rng(n, batch_size, Rng::new(seed))
    }
}

impl<R: RngCore> WithReplacement<R> {
    fn check(function: &'static str, n: usize, batch_size: usize) -> Result<()> {
        check_batch(function, n, batch_size)?;
        if n < batch_size {
            return Err(Error::InvalidArgument {
                function,
                what: format!(
                    "{n} sample(s) / batch size {batch_size} gives 0 batches per epoch; use with_steps"
                ),
            });
        }
        Ok(())
    }

    /// Batches of `batch_size` drawn from `n` samples by `rng`, `n / batch_size` per epoch.
    pub fn with_rng(n: usize, batch_size: usize, rng: R) -> Result<Self> {
        Self::check("WithReplacement::with_rng", n, batch_size)?;
        Ok(WithReplacement {
            n,
            steps: n / batch_size,
            step: n / batch_size,
            buf: vec![0; batch_size],
            rng,
        })
    }

    /// Sets the number of batches per epoch (at least 1).
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps.max(1);
        self.step = self.steps;
        self
    }

    /// The generator the sampler draws from.
    pub fn rng(&self) -> &R {
        &self.rng
    }
}

impl<R: RngCore> Sampler for WithReplacement<R> {
    fn batches_per_epoch(&self) -> usize {
        self.steps
    }

    fn start_epoch(&mut self) {
        self.step = 0;
    }

    fn next_batch(&mut self) -> Option<&[usize]> {
        if self.step >= self.steps {
            return None;
        }
        self.step += 1;
        rng::indices_with_replacement(&mut self.rng, self.n, &mut self.buf);
        Some(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_batches_cover_each_epoch_once() {
        let mut s = Shuffled::new(10, 4, 3).unwrap();
        assert_eq!(s.batches_per_epoch(), 3);
        let mut epochs = Vec::new();
        for _ in 0..2 {
            s.start_epoch();
            let mut seen = Vec::new();
            let mut sizes = Vec::new();
            while let Some(b) = s.next_batch() {
                sizes.push(b.len());
                seen.extend_from_slice(b);
            }
            assert_eq!(sizes, [4, 4, 2]);
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
            epochs.push(seen);
        }
        assert_ne!(epochs[0], epochs[1], "reshuffled each epoch");

        let mut s = Shuffled::new(10, 4, 3).unwrap().drop_last(true);
        assert_eq!(s.batches_per_epoch(), 2);
        s.start_epoch();
        let mut n = 0;
        while let Some(b) = s.next_batch() {
            assert_eq!(b.len(), 4);
            n += 1;
        }
        assert_eq!(n, 2);

        let mut s = Shuffled::sequential(5, 2).unwrap();
        s.start_epoch();
        assert_eq!(s.next_batch(), Some(&[0, 1][..]));
        assert!(s.next_batch().is_some() && s.next_batch() == Some(&[4][..]));
        assert_eq!(s.next_batch(), None);

        // Before the first start_epoch there is nothing.
        let mut s = Shuffled::new(3, 1, 0).unwrap();
        assert_eq!(s.next_batch(), None);
        assert!(Shuffled::new(3, 0, 0).is_err() && Shuffled::new(0, 2, 0).is_err());
    }

    #[test]
    fn with_replacement_is_the_course_sampler() {
        let mut s = WithReplacement::new(506, 11, 1).unwrap();
        assert_eq!(s.batches_per_epoch(), 46);
        s.start_epoch();
        let mut n = 0;
        let mut repeats = false;
        let mut seen = std::collections::HashSet::new();
        while let Some(b) = s.next_batch() {
            assert_eq!(b.len(), 11);
            assert!(b.iter().all(|&i| i < 506));
            for &i in b {
                repeats |= !seen.insert(i);
            }
            n += 1;
        }
        assert_eq!(n, 46);
        assert!(
            repeats,
            "46 x 11 draws from 506 with replacement repeat some row"
        );
        assert!(seen.len() < 506, "an epoch does not visit every row");
        let mut a = WithReplacement::new(20, 5, 9).unwrap();
        let mut b = WithReplacement::new(20, 5, 9).unwrap();
        a.start_epoch();
        b.start_epoch();
        assert_eq!(a.next_batch(), b.next_batch());
        assert!(WithReplacement::new(3, 5, 0).is_err());
        assert_eq!(
            WithReplacement::new(3, 5, 0).unwrap_err().to_string(),
            "WithReplacement::new: 3 sample(s) / batch size 5 gives 0 batches per epoch; use with_steps"
        );
        let s = WithReplacement::new(10, 5, 0).unwrap().with_steps(7);
        assert_eq!(s.batches_per_epoch(), 7);
    }

    /// A user's own `rand_core` generator drives the samplers; our `Rng` given that way
    /// draws exactly what the seeded constructors draw.
    #[test]
    fn samplers_take_any_rand_core_generator() {
        /// A deliberately simple generator (a counter through SplitMix-like mixing).
        struct Counter(u64);
        impl RngCore for Counter {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                (self.0 ^ (self.0 >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                rand_core::impls::fill_bytes_via_next(self, dst)
            }
        }
        let mut own = Shuffled::with_rng(10, 3, Counter(1)).unwrap();
        own.start_epoch();
        let mut seen: Vec<usize> = Vec::new();
        while let Some(b) = own.next_batch() {
            seen.extend_from_slice(b);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let mut w = WithReplacement::with_rng(10, 5, Counter(2)).unwrap();
        w.start_epoch();
        assert!(w.next_batch().unwrap().iter().all(|&i| i < 10));

        let (mut a, mut b) = (
            Shuffled::new(50, 7, 4).unwrap(),
            Shuffled::with_rng(50, 7, Rng::new(4)).unwrap(),
        );
        a.start_epoch();
        b.start_epoch();
        assert_eq!(a.next_batch(), b.next_batch());
    }
}
