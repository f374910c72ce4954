//! A small training loop: epochs of mini-batches from a [`Sampler`], one update per batch
//! (the fused [`sgd_step`] or any [`Optimizer`]), and a callback after each epoch that sees
//! the mean loss and may stop the run.
//!
//! ```no_run
//! use miniflow_core::data::{Dataset, WithReplacement};
//! use miniflow_core::train::{self, Fit};
//! use std::ops::ControlFlow;
//! # fn demo<N: miniflow_core::Network<Elem = f64>>(net: &mut N, data: &Dataset<f64>) -> miniflow_core::Result<()> {
//! let mut sampler = WithReplacement::new(data.len(), 11, 42)?;
//! let history = Fit::new(10).run(net, data, &mut sampler, train::sgd_step(1e-2), |e| {
//!     println!("Epoch: {}, Loss: {:.3}", e.epoch + 1, e.mean_loss);
//!     ControlFlow::Continue(())
//! })?;
//! # let _ = history; Ok(()) }
//! ```
//!
//! Each batch is gathered into buffers allocated once ([`Dataset::gather`]) and fed to the
//! inputs named by [`Fit::inputs`] (`X` and `y` by default; checked before the first batch),
//! so with batches of a constant size the loop allocates nothing per step.
//!
//! A run can resume: [`Fit::first_epoch`] starts the epoch count where a saved run stopped
//! (the sampler, optimizer and network restored from a checkpoint carry the rest; see
//! `persist`).
//!
//! With the `progress` feature (on by default), a progress bar (`indicatif`: epoch, running
//! loss, batches, rate and ETA) is drawn on stderr during long runs when stderr is a terminal
//! ([`Progress::Auto`]); output that is piped or captured stays clean. Without the feature
//! there is no bar and [`Progress`] is ignored.

use crate::data::{Batch, Dataset, Sampler};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::{Network, NodeKind, Scalar};
use ndarray::RemoveAxis;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// When to draw the progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Progress {
    /// When stderr is a terminal, and only once the run has taken more than half a second.
    #[default]
    Auto,
    /// Always (to stderr, even when it is not a terminal).
    Always,
    /// Never.
    Never,
}

/// What the epoch callback receives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// The epoch just finished, counting from 0 (from the start of the whole run, when it
    /// resumed with [`Fit::first_epoch`]).
    pub epoch: usize,
    /// The number of epochs asked for.
    pub epochs: usize,
    /// The mean over the epoch's batches of each batch's loss **before** its update (what the
    /// course's nn.py prints).
    pub mean_loss: f64,
    /// How many batches the epoch had.
    pub batches: usize,
    /// The time since the run started.
    pub elapsed: Duration,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The mean loss of each epoch run (by this call: from [`Fit::first_epoch`] on).
    pub losses: Vec<f64>,
    /// Whether the callback stopped the run before the last epoch.
    pub stopped_early: bool,
}

/// A training run's settings. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit<'a> {
    /// How many epochs to run.
    pub epochs: usize,
    /// The input fed with each batch's features.
    pub input: &'a str,
    /// The input fed with each batch's targets.
    pub target: &'a str,
    /// When to draw a progress bar.
    pub progress: Progress,
    /// The epoch to start at (0 unless the run resumes).
    pub first_epoch: usize,
}

impl<'a> Fit<'a> {
    /// `epochs` epochs feeding inputs `X` and `y`, with [`Progress::Auto`].
    pub fn new(epochs: usize) -> Self {
        Fit {
            epochs,
            input: "X",
            target: "y",
            progress: Progress::Auto,
            first_epoch: 0,
        }
    }

    /// Feeds the features to input `input` and the targets to input `target` (`X` and `y`
    /// unless set). [`run`](Fit::run) checks that the network has both inputs before it
    /// starts.
    pub fn inputs(mut self, input: &'a str, target: &'a str) -> Self {
        self.input = input;
        self.target = target;
        self
    }

    /// Sets when to draw the progress bar.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Resumes a run: epochs `first..epochs` are run (so `Fit::new(10).first_epoch(5)` runs
    /// the last 5 of 10), numbered as in the whole run.
    pub fn first_epoch(mut self, first: usize) -> Self {
        self.first_epoch = first;
        self
    }

    /// Checks that `net` has inputs named as this run feeds them.
    fn check_inputs<N: Network + ?Sized>(&self, net: &N) -> Result<()> {
        let spec = net.spec();
        let inputs: Vec<&str> = spec
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Input { .. }))
            .map(|n| n.name)
            .collect();
        for (role, name) in [("features", self.input), ("targets", self.target)] {
            let problem = match spec.nodes.iter().find(|n| n.name == name) {
                Some(n) if matches!(n.kind, NodeKind::Input { .. }) => continue,
                Some(n) if n.kind == NodeKind::Param => format!("`{name}` is a param"),
                Some(_) => format!("`{name}` is computed by an op"),
                None => format!("{} has no node named `{name}`", spec.name),
            };
            let others = inputs
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let example = match inputs.as_slice() {
                [a, b, ..] => format!("Fit::new(epochs).inputs(\"{a}\", \"{b}\")"),
                _ => "Fit::new(epochs).inputs(\"features\", \"targets\")".to_string(),
            };
            return Err(Error::InvalidArgument {
                function: "Fit::run",
                what: format!(
                    "the {role} are fed to input `{name}`, but {problem}; the network's inputs are {others}: name them with {example} (features first, then targets)"
                ),
            });
        }
        Ok(())
    }

    /// Trains `net` on `data`: for each epoch, for each batch of `sampler`, gathers the rows,
    /// feeds them, and calls `update` (which runs one training step and returns the loss
    /// before it: [`sgd_step`], [`optimizer_step`] or a closure; see [`Update`]). After each epoch `on_epoch` gets
    /// the [`EpochStats`]; returning [`ControlFlow::Break`] stops the run.
    ///
    /// Fails before training if the network lacks the inputs named by [`Fit::inputs`]; then on
    /// the first error of feeding or `update`, or if the sampler yields an epoch with no
    /// batches.
    pub fn run<N, D, S, U, C>(
        &self,
        net: &mut N,
        data: &Dataset<N::Elem, D>,
        sampler: &mut S,
        mut update: U,
        mut on_epoch: C,
    ) -> Result<History>
    where
        N: Network + ?Sized,
        D: RemoveAxis,
        S: Sampler + ?Sized,
        U: Update<N>,
        C: FnMut(&EpochStats) -> ControlFlow<()>,
    {
        self.check_inputs(net)?;
        let start = Instant::now();
        let first = self.first_epoch.min(self.epochs);
        let mut bar = Bar::new(
            self.progress,
            start,
            (self.epochs - first).saturating_mul(sampler.batches_per_epoch()),
        );
        let mut batch: Batch<N::Elem, D> = data.batch(0);
        let mut history = History {
            losses: Vec::with_capacity(self.epochs - first),
            stopped_early: false,
        };
        for epoch in first..self.epochs {
            sampler.start_epoch();
            let (mut sum, mut batches) = (0.0f64, 0usize);
            while let Some(rows) = sampler.next_batch() {
                data.gather(rows, &mut batch)?;
                net.set_input(self.input, batch.x().into_dyn())?;
                net.set_input(self.target, batch.y().into_dyn())?;
                let loss = Scalar::to_f64(update.update(net)?);
                sum += loss;
                batches += 1;
                bar.tick(epoch, self.epochs, sum / batches as f64);
            }
            if batches == 0 {
                bar.finish();
                return Err(Error::InvalidArgument {
                    function: "Fit::run",
                    what: format!("the sampler yielded no batches in epoch {epoch}"),
                });
            }
            let stats = EpochStats {
                epoch,
                epochs: self.epochs,
                mean_loss: sum / batches as f64,
                batches,
                elapsed: start.elapsed(),
            };
            history.losses.push(stats.mean_loss);
            // The callback may print: the bar steps aside meanwhile.
            if bar.suspend(|| on_epoch(&stats)).is_break() {
                history.stopped_early = epoch + 1 < self.epochs;
                break;
            }
        }
        bar.finish();
        Ok(history)
    }
}

/// One training step on the batch just fed, returning the loss before the update: what
/// [`Fit::run`] calls for each batch. [`sgd_step`] and [`optimizer_step`] make the usual
/// two; any closure `FnMut(&mut N) -> Result<N::Elem>` is one too.
pub trait Update<N: Network + ?Sized> {
    /// Runs the step on `net`, whose inputs hold the batch, and returns the loss before it.
    fn update(&mut self, net: &mut N) -> Result<N::Elem>;
}

impl<N, F> Update<N> for F
where
    N: Network + ?Sized,
    F: FnMut(&mut N) -> Result<N::Elem>,
{
    fn update(&mut self, net: &mut N) -> Result<N::Elem> {
        self(net)
    }
}

/// The fused SGD update made by [`sgd_step`]: [`Network::sgd_step`] with learning rate `lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep<T> {
    /// The learning rate.
    pub lr: T,
}

impl<N: Network + ?Sized> Update<N> for SgdStep<N::Elem> {
    fn update(&mut self, net: &mut N) -> Result<N::Elem> {
        net.sgd_step(self.lr)
    }
}

/// An update that runs the fused [`Network::sgd_step`] with learning rate `lr`.
pub fn sgd_step<T: Scalar>(lr: T) -> SgdStep<T> {
    SgdStep { lr }
}

/// The update made by [`optimizer_step`]: [`Network::forward_backward`] then the
/// optimizer's step.
#[derive(Debug)]
pub struct OptimizerStep<'a, O> {
    optimizer: &'a mut O,
}

impl<N, O> Update<N> for OptimizerStep<'_, O>
where
    N: Network + ?Sized,
    O: Optimizer<N::Elem>,
{
    fn update(&mut self, net: &mut N) -> Result<N::Elem> {
        let loss = net.forward_backward()?;
        self.optimizer.step(net)?;
        Ok(loss)
    }
}

/// An update that runs [`Network::forward_backward`] then `optimizer`'s step.
pub fn optimizer_step<O>(optimizer: &mut O) -> OptimizerStep<'_, O> {
    OptimizerStep { optimizer }
}

/// The bar's message: `epoch 2/10 loss 12.3457`.
#[cfg(any(feature = "progress", test))]
fn message(epoch: usize, epochs: usize, loss: f64) -> String {
    format!("epoch {}/{epochs} loss {loss:.4}", epoch + 1)
}

/// The progress bar, on `indicatif`.
#[cfg(feature = "progress")]
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    /// Whether to wait for the run to be long before drawing, and to draw on a terminal only.
    auto: bool,
    start: Instant,
    total: usize,
}

#[cfg(feature = "progress")]
impl Bar {
    fn new(progress: Progress, start: Instant, total: usize) -> Self {
        let mut bar = Bar {
            bar: None,
            auto: progress == Progress::Auto,
            start,
            total,
        };
        if progress == Progress::Always {
            // Drawn even when stderr is not a terminal, which indicatif's stderr target is not.
            bar.show(indicatif::ProgressDrawTarget::term_like_with_hz(
                Box::new(console::Term::stderr()),
                10,
            ));
        }
        bar
    }

    fn show(&mut self, target: indicatif::ProgressDrawTarget) {
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} batches {per_sec} ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let bar = indicatif::ProgressBar::with_draw_target(Some(self.total as u64), target)
            .with_style(style);
        self.bar = Some(bar);
    }

    fn tick(&mut self, epoch: usize, epochs: usize, loss: f64) {
        if self.bar.is_none() && self.auto && self.start.elapsed() >= Duration::from_millis(500) {
            // indicatif's stderr target hides itself unless stderr is a terminal.
            self.show(indicatif::ProgressDrawTarget::stderr());
            self.auto = false;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(message(epoch, epochs, loss));
            bar.inc(1);
        }
    }

    /// Runs `f` (which may print) with the bar cleared, then redraws it.
    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Without the `progress` feature there is no bar.
#[cfg(not(feature = "progress"))]
struct Bar;

#[cfg(not(feature = "progress"))]
impl Bar {
    fn new(_: Progress, _: Instant, _: usize) -> Self {
        Bar
    }
    fn tick(&mut self, _: usize, _: usize, _: f64) {}
    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
    fn finish(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_message() {
        assert_eq!(message(1, 4, 12.345_67), "epoch 2/4 loss 12.3457");
    }

    #[cfg(feature = "progress")]
    #[test]
    fn quiet_unless_asked() {
        let mut bar = Bar::new(Progress::Never, Instant::now(), 3);
        bar.tick(0, 1, 1.0);
        assert!(bar.bar.is_none());
        // Auto waits for the run to be long, even on a terminal.
        let mut bar = Bar::new(Progress::Auto, Instant::now(), 3);
        bar.tick(0, 1, 1.0);
        assert!(bar.bar.is_none());
        let mut bar = Bar::new(Progress::Always, Instant::now(), 3);
        bar.tick(0, 1, 1.0);
        assert_eq!(bar.bar.as_ref().map(|b| b.position()), Some(1));
        bar.finish();
    }
}
