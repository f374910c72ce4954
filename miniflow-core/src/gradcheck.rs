//! Gradient checking: compares the gradients [`Network::backward`] computes with central
//! finite differences of the loss, for every element of every param (or a sample of each).
//!
//! For a param element `w`, the numerical gradient is `(L(w + h) - L(w - h)) / 2h`; the check
//! reports the element where it disagrees most with the analytic one. The error of an element
//! is relative, with a floor so that near-zero gradients are compared absolutely:
//!
//! ```text
//! error = |analytic - numeric| / max(|analytic|, |numeric|, min_scale)
//! ```
//!
//! The inputs must be fed first; params are restored bit for bit afterwards, and a final
//! forward and backward leaves the network's values and gradients those of the original
//! params.
//!
//! ```
//! use miniflow_core::gradcheck::{self, GradCheck};
//! # fn demo<N: miniflow_core::Network<Elem = f64>>(net: &mut N) -> miniflow_core::Result<()> {
//! let report = gradcheck::check(net, &GradCheck::default())?;
//! assert!(report.passed(), "{report}");
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::Network;
use ndarray::ArrayD;
use std::fmt;

/// Settings of a gradient check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheck {
    /// The finite-difference step `h` (default `1e-5`: truncation error `O(h²)` and
    /// rounding error `O(ε·|loss| / h)` are both about `1e-11` for a loss near 1).
    pub step: f64,
    /// Below this magnitude, gradients are compared absolutely (default `1e-3`).
    pub min_scale: f64,
    /// The largest error [`GradReport::passed`] accepts (default `1e-5`; raise it, or
    /// `min_scale`, for losses much larger than 1, whose rounding error grows with them).
    pub tolerance: f64,
    /// Check at most this many elements of each param, chosen at random without repeats
    /// (`None`, the default, checks every element).
    pub sample: Option<usize>,
    /// The seed of the sample.
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            step: 1e-5,
            min_scale: 1e-3,
            tolerance: 1e-5,
            sample: None,
            seed: 0,
        }
    }
}

impl GradCheck {
    /// Checks that the settings make sense: a finite `step` above 0, a finite `min_scale`
    /// above 0 (it divides), a finite `tolerance` of at least 0, and a `sample` of at least 1.
    /// [`check`] calls it first and fails, with [`Error::InvalidArgument`], before touching
    /// the network.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| {
            Err(Error::InvalidArgument {
                function: "gradcheck::check",
                what,
            })
        };
        if !(self.step.is_finite() && self.step > 0.0) {
            return bad(format!(
                "the finite-difference step must be a finite number above 0, not {}; the default is 1e-5",
                self.step
            ));
        }
        if !(self.min_scale.is_finite() && self.min_scale > 0.0) {
            return bad(format!(
                "`min_scale` must be a finite number above 0 (errors are divided by it), not {}; the default is 1e-3",
                self.min_scale
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return bad(format!(
                "the tolerance must be a finite number of at least 0, not {}; the default is 1e-5",
                self.tolerance
            ));
        }
        if self.sample == Some(0) {
            return bad(
                "a sample of 0 elements checks nothing; use `None` to check every element".into(),
            );
        }
        Ok(())
    }

    /// Checks at most `n` elements per param (a sampled check for big params).
    pub fn sampled(n: usize, seed: u64) -> Self {
        GradCheck {
            sample: Some(n),
            seed,
            ..GradCheck::default()
        }
    }
}

/// The element where analytic and numerical gradients disagree most.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    /// The param's name.
    pub param: &'static str,
    /// The element's index in the param, flattened in row-major order.
    pub index: usize,
    /// The gradient `backward` computed.
    pub analytic: f64,
    /// The central finite difference.
    pub numeric: f64,
    /// The element's error (see the [module docs](self)).
    pub error: f64,
}

/// What a gradient check found.
#[derive(Clone, Debug, PartialEq)]
pub struct GradReport {
    /// The worst element, or `None` if no element was checked (no params).
    pub worst: Option<Worst>,
    /// How many elements were checked.
    pub checked: usize,
    /// The tolerance [`passed`](GradReport::passed) compares with.
    pub tolerance: f64,
}

impl GradReport {
    /// The largest error found (0 if nothing was checked; NaN if a loss was not finite).
    pub fn max_error(&self) -> f64 {
        self.worst.as_ref().map_or(0.0, |w| w.error)
    }

    /// Whether every checked element is within the tolerance (a NaN error fails).
    pub fn passed(&self) -> bool {
        self.max_error() <= self.tolerance
    }
}

impl fmt::Display for GradReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.worst {
            None => write!(f, "gradient check: no param elements to check"),
            Some(w) => write!(
                f,
                "gradient check {}: {} element(s), worst error {:.3e} (tolerance {:.0e}) at `{}`[{}]: analytic {:.10e}, numeric {:.10e}",
                if self.passed() { "passed" } else { "FAILED" },
                self.checked,
                w.error,
                self.tolerance,
                w.param,
                w.index,
                w.analytic,
                w.numeric
            ),
        }
    }
}

/// Sets element `flat` of param `index` to `value`; returns the previous value.
fn poke<N: Network<Elem = f64> + ?Sized>(
    net: &mut N,
    index: usize,
    flat: usize,
    value: f64,
) -> Option<f64> {
    let mut old = None;
    net.visit_params(&mut |mut p| {
        if p.index == index {
            if let Some(v) = p.value.iter_mut().nth(flat) {
                old = Some(*v);
                *v = value;
            }
        }
    });
    old
}

/// Runs a gradient check of every param of `net` on the inputs already fed. Errors are
/// [`Error::InvalidArgument`] for settings that make no sense ([`GradCheck::validate`]),
/// checked before anything runs, and those of [`Network::forward`] and [`Network::backward`]
/// (e.g. an input not fed).
pub fn check<N: Network<Elem = f64> + ?Sized>(
    net: &mut N,
    options: &GradCheck,
) -> Result<GradReport> {
    options.validate()?;
    net.forward_backward()?;
    let mut params: Vec<(usize, &'static str, ArrayD<f64>)> = Vec::new();
    net.visit_params(&mut |p| params.push((p.index, p.name, p.grad.to_owned())));

    let mut rng = Rng::new(options.seed);
    let h = options.step;
    let mut worst: Option<Worst> = None;
    let mut checked = 0;
    for (index, name, grad) in &params {
        let mut elements: Vec<usize> = (0..grad.len()).collect();
        if let Some(k) = options.sample {
            rng.shuffle(&mut elements);
            elements.truncate(k);
            elements.sort_unstable();
        }
        for &flat in &elements {
            let Some(&analytic) = grad.iter().nth(flat) else {
                continue;
            };
            let Some(w) = poke(net, *index, flat, 0.0) else {
                continue;
            };
            poke(net, *index, flat, w + h);
            let plus = net.forward();
            poke(net, *index, flat, w - h);
            let minus = net.forward();
            poke(net, *index, flat, w);
            let numeric = (plus? - minus?) / (2.0 * h);
            let scale = analytic.abs().max(numeric.abs()).max(options.min_scale);
            let error = (analytic - numeric).abs() / scale;
            checked += 1;
            // A NaN error (a non-finite loss) is the worst and stays so.
            let replace = worst
                .as_ref()
                .is_none_or(|w| !w.error.is_nan() && (error.is_nan() || error > w.error));
            if replace {
                worst = Some(Worst {
                    param: name,
                    index: flat,
                    analytic,
                    numeric,
                    error,
                });
            }
        }
    }
    net.forward_backward()?;
    Ok(GradReport {
        worst,
        checked,
        tolerance: options.tolerance,
    })
}
