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
//! inputs named by [`Fit::inputs`] (`X` and `y` by default), so with batches of a constant
//! size the loop allocates nothing per step.
//!
//! A progress bar (epoch, batch, running loss) is drawn on stderr during long runs when stderr
//! is a terminal ([`Progress::Auto`]); output that is piped or captured stays clean.

use crate::data::{Batch, Dataset, Sampler};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::{Network, Scalar};
use ndarray::RemoveAxis;
use std::io::{IsTerminal, Write};
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
    /// The epoch just finished, counting from 0.
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
    /// The mean loss of each epoch run.
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
}

impl<'a> Fit<'a> {
    /// `epochs` epochs feeding inputs `X` and `y`, with [`Progress::Auto`].
    pub fn new(epochs: usize) -> Self {
        Fit {
            epochs,
            input: "X",
            target: "y",
            progress: Progress::Auto,
        }
    }

    /// Feeds the features to input `input` and the targets to input `target`.
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

    /// Trains `net` on `data`: for each epoch, for each batch of `sampler`, gathers the rows,
    /// feeds them, and calls `update` (which runs one training step and returns the loss
    /// before it, e.g. [`sgd_step`] or [`optimizer_step`]). After each epoch `on_epoch` gets
    /// the [`EpochStats`]; returning [`ControlFlow::Break`] stops the run.
    ///
    /// Fails on the first error of feeding or `update`, or if the sampler yields an epoch with
    /// no batches.
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
        U: FnMut(&mut N) -> Result<N::Elem>,
        C: FnMut(&EpochStats) -> ControlFlow<()>,
    {
        let start = Instant::now();
        let mut bar = Bar::new(self.progress, start, sampler.batches_per_epoch());
        let mut batch: Batch<N::Elem, D> = data.batch(0);
        let mut history = History {
            losses: Vec::with_capacity(self.epochs),
            stopped_early: false,
        };
        for epoch in 0..self.epochs {
            sampler.start_epoch();
            let (mut sum, mut batches) = (0.0f64, 0usize);
            while let Some(rows) = sampler.next_batch() {
                data.gather(rows, &mut batch)?;
                net.set_input(self.input, batch.x().into_dyn())?;
                net.set_input(self.target, batch.y().into_dyn())?;
                let loss = Scalar::to_f64(update(net)?);
                sum += loss;
                batches += 1;
                bar.draw(epoch, self.epochs, batches, sum / batches as f64);
            }
            if batches == 0 {
                bar.clear();
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
            bar.clear();
            if on_epoch(&stats).is_break() {
                history.stopped_early = epoch + 1 < self.epochs;
                break;
            }
        }
        bar.clear();
        Ok(history)
    }
}

/// An update that runs the fused [`Network::sgd_step`] with learning rate `lr`.
pub fn sgd_step<N: Network + ?Sized>(lr: N::Elem) -> impl FnMut(&mut N) -> Result<N::Elem> {
    move |net: &mut N| net.sgd_step(lr)
}

/// An update that runs [`Network::forward_backward`] then `optimizer`'s step.
pub fn optimizer_step<N, O>(optimizer: &mut O) -> impl FnMut(&mut N) -> Result<N::Elem> + '_
where
    N: Network + ?Sized,
    O: Optimizer<N::Elem>,
{
    move |net: &mut N| {
        let loss = net.forward_backward()?;
        optimizer.step(net);
        Ok(loss)
    }
}

/// The progress bar: drawn on one stderr line, redrawn at most every 100 ms.
struct Bar {
    enabled: bool,
    /// Whether to wait for the run to be long before drawing.
    delayed: bool,
    start: Instant,
    last: Option<Instant>,
    drawn: bool,
    per_epoch: usize,
}

const BAR_WIDTH: usize = 30;
const FILLED: &str = "==============================";
const EMPTY: &str = "                              ";

/// Writes one frame of the progress bar: `\r`, clear line, then
/// `epoch 2/10 batch 23/46 [====          ] loss 12.3457 1.2s`, the bar filled in proportion
/// to the whole run (epochs and batches).
fn render(
    out: &mut impl Write,
    epoch: usize,
    epochs: usize,
    batch: usize,
    per_epoch: usize,
    loss: f64,
    secs: f64,
) -> std::io::Result<()> {
    let within = if per_epoch == 0 {
        0.0
    } else {
        batch as f64 / per_epoch as f64
    };
    let done = ((epoch as f64 + within) / epochs.max(1) as f64).clamp(0.0, 1.0);
    let filled = ((done * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    write!(
        out,
        "\r\x1b[2Kepoch {}/{} batch {}/{} [{}{}] loss {:.4} {:.1}s",
        epoch + 1,
        epochs,
        batch,
        per_epoch,
        FILLED.get(..filled).unwrap_or(""),
        EMPTY.get(filled..).unwrap_or(""),
        loss,
        secs
    )
}

impl Bar {
    fn new(progress: Progress, start: Instant, per_epoch: usize) -> Self {
        let enabled = match progress {
            Progress::Auto => std::io::stderr().is_terminal(),
            Progress::Always => true,
            Progress::Never => false,
        };
        Bar {
            enabled,
            delayed: progress == Progress::Auto,
            start,
            last: None,
            drawn: false,
            per_epoch,
        }
    }

    fn draw(&mut self, epoch: usize, epochs: usize, batch: usize, loss: f64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.delayed && now.duration_since(self.start) < Duration::from_millis(500) {
            return;
        }
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let per_epoch = self.per_epoch.max(batch);
        let secs = now.duration_since(self.start).as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = render(&mut err, epoch, epochs, batch, per_epoch, loss, secs);
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            // `last` is kept: the bar comes back at the next tick, not after every epoch.
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_frames() {
        let frame = |epoch, epochs, batch, per_epoch| {
            let mut out = Vec::new();
            render(&mut out, epoch, epochs, batch, per_epoch, 12.345_67, 1.25).unwrap();
            String::from_utf8(out).unwrap()
        };
        // Epoch 2 of 4, half way: 1.5 / 4 of the run, 11 of 30 marks.
        assert_eq!(
            frame(1, 4, 23, 46),
            format!(
                "\r\x1b[2Kepoch 2/4 batch 23/46 [{}{}] loss 12.3457 1.2s",
                "=".repeat(11),
                " ".repeat(19)
            )
        );
        assert!(frame(3, 4, 46, 46).contains(&format!("[{}]", "=".repeat(30))));
        assert!(frame(0, 4, 0, 46).contains(&format!("[{}]", " ".repeat(30))));
        assert!(frame(0, 0, 0, 0).contains(&format!("[{}]", " ".repeat(30))));
    }

    #[test]
    fn quiet_unless_asked() {
        let mut bar = Bar::new(Progress::Never, Instant::now(), 3);
        bar.draw(0, 1, 1, 1.0);
        assert!(!bar.drawn);
        // Auto waits for the run to be long, even on a terminal.
        let mut bar = Bar::new(Progress::Auto, Instant::now(), 3);
        bar.draw(0, 1, 1, 1.0);
        assert!(!bar.drawn);
    }
}
