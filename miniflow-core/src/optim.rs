//! Optimizers over any [`Network`]: plain [`Sgd`] (the course's `sgd_update`), SGD with
//! [`Momentum`], and [`Adam`].
//!
//! An optimizer's [`step`](Optimizer::step) reads the gradients of the **last backward**:
//!
//! ```
//! use miniflow_core::{Adam, Network, Optimizer};
//! # fn demo<N: Network<Elem = f64>>(net: &mut N) -> miniflow_core::Result<()> {
//! let mut adam = Adam::new(1e-3);
//! let loss = net.forward_backward()?; // fills every param's gradient
//! adam.step(net)?; // updates every param from it
//! # let _ = loss; Ok(()) }
//! ```
//!
//! # Gradients are overwritten, not accumulated
//!
//! Each [`backward`](Network::backward) **overwrites** every gradient with d loss / d param of
//! the current batch; nothing is summed across calls. There is no `zero_grad` to call before a
//! step (unlike PyTorch), and calling `backward` twice gives the same gradient, not twice it.
//! To accumulate over several batches, copy the gradients out between backwards.
//!
//! [`Network::sgd_step`] is a fused forward/backward/SGD step: it may leave a param's gradient
//! buffer stale (see its documentation), so an optimizer must follow
//! [`forward_backward`](Network::forward_backward), not `sgd_step`.
//!
//! # State
//!
//! [`Momentum`] and [`Adam`] keep per-param state (velocities, moments) keyed by
//! [`ParamMut::index`](crate::ParamMut::index), with each param's shape. It is allocated on
//! the first step and reused afterwards, so steady-state steps allocate nothing. Using one
//! optimizer on another network reallocates the state of any param whose shape differs, but
//! keeps the rest: call `reset` first to start from scratch. (A slot also remembers its
//! param's name, and is started afresh if a param of another name takes its index.)
//!
//! # A failed step changes nothing
//!
//! Every optimizer checks before it writes: if a param's gradient does not have its value's
//! shape (impossible for networks made by `network!`, possible for a hand-written
//! [`Network`]) the step returns [`Error::GradShape`], and if a hyperparameter is not finite
//! [`Error::InvalidArgument`]; either way no param and no optimizer state (moments, velocities,
//! Adam's step count) has changed, bit for bit. The free function [`sgd`], which returns
//! nothing, does nothing in those cases.

use crate::error::{Error, Result};
use crate::{Network, Scalar};
use ndarray::{ArrayD, ArrayView, ArrayViewMut, Dimension, IxDyn, Zip};

/// Updates a network's params from their gradients. Written once, works for every network.
pub trait Optimizer<T: Scalar> {
    /// Applies one update to every param of `net`, using the gradients of the last backward.
    ///
    /// Checks every param first and fails without changing anything (see the
    /// [module docs](self#a-failed-step-changes-nothing)).
    fn step<N: Network<Elem = T> + ?Sized>(&mut self, net: &mut N) -> Result<()>;
}

/// The first param whose gradient does not have its value's shape, as an error.
fn check_grads<N: Network + ?Sized>(net: &mut N) -> Result<()> {
    let mut bad = None;
    net.visit_params(&mut |p| {
        if bad.is_none() && p.grad.shape() != p.value.shape() {
            bad = Some(Error::GradShape {
                param: p.name.to_string(),
                value: p.value.shape().to_vec(),
                grad: p.grad.shape().to_vec(),
            });
        }
    });
    bad.map_or(Ok(()), Err)
}

/// An error unless every hyperparameter is finite.
fn check_finite<T: Scalar>(function: &'static str, values: &[(&str, T)]) -> Result<()> {
    match values.iter().find(|(_, v)| !v.is_finite()) {
        Some((name, v)) => Err(Error::InvalidArgument {
            function,
            what: format!("{name} is {v}; it must be a finite number (nothing was updated)"),
        }),
        None => Ok(()),
    }
}

/// Plain stochastic gradient descent, as in the course: `value -= lr * grad`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd<T> {
    /// The learning rate.
    pub lr: T,
}

impl<T: Scalar> Sgd<T> {
    /// SGD with learning rate `lr`.
    pub fn new(lr: T) -> Self {
        Sgd { lr }
    }

    /// The learning rate.
    pub fn lr(&self) -> T {
        self.lr
    }

    /// Sets the learning rate for the next steps.
    pub fn set_lr(&mut self, lr: T) {
        self.lr = lr;
    }
}

impl<T: Scalar> Default for Sgd<T> {
    /// The course's default learning rate, `1e-2`.
    fn default() -> Self {
        Sgd::new(T::from_f64(1e-2))
    }
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    fn step<N: Network<Elem = T> + ?Sized>(&mut self, net: &mut N) -> Result<()> {
        check_finite("Sgd::step", &[("the learning rate", self.lr)])?;
        check_grads(net)?;
        net.visit_params(&mut |p| sgd_update(p.value, p.grad, self.lr));
        Ok(())
    }
}

/// The course's `sgd_update`: `value -= lr * grad` for every param of `net` (what
/// [`Sgd::step`] does, without the optimizer value).
///
/// Checks first, like every optimizer: a non-finite `lr` or a gradient of another shape than
/// its param is an error, and nothing is updated.
pub fn sgd<N: Network + ?Sized>(net: &mut N, lr: N::Elem) -> Result<()> {
    Sgd::new(lr).step(net)
}

/// `value -= lr * grad` for one array. Does nothing if the shapes differ (it never panics);
/// the optimizers check shapes first and report them.
pub fn sgd_update<T: Scalar, D: Dimension>(
    value: ArrayViewMut<'_, T, D>,
    grad: ArrayView<'_, T, D>,
    lr: T,
) {
    if value.shape() != grad.shape() {
        return;
    }
    Zip::from(value)
        .and(&grad)
        .for_each(|v, &g| *v = *v - lr * g);
}

/// One state buffer per param, keyed by [`ParamMut::index`](crate::ParamMut::index), each with
/// its param's shape: allocated on first use, reused while the shape stays the same.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Slots<T> {
    pub(crate) bufs: Vec<ArrayD<T>>,
    /// The name of the param each buffer belongs to ("" for none yet).
    pub(crate) names: Vec<String>,
}

impl<T: Scalar> Slots<T> {
    /// The buffer of param `index` called `name`, zeroed and (re)allocated if it does not
    /// have `shape` or belonged to another param.
    fn get(&mut self, index: usize, name: &str, shape: &[usize]) -> Option<&mut ArrayD<T>> {
        if self.bufs.len() <= index {
            // An empty array does not allocate.
            self.bufs
                .resize_with(index + 1, || ArrayD::zeros(IxDyn(&[0])));
            self.names.resize_with(index + 1, String::new);
        }
        let buf = self.bufs.get_mut(index)?;
        let owner = self.names.get_mut(index)?;
        if buf.shape() != shape || owner != name {
            *buf = ArrayD::zeros(IxDyn(shape));
            name.clone_into(owner);
        }
        Some(buf)
    }

    fn clear(&mut self) {
        self.bufs.clear();
        self.names.clear();
    }
}

/// SGD with momentum (PyTorch's convention, no dampening):
/// `v = momentum · v + grad`, then `value -= lr · v`, or with Nesterov momentum
/// `value -= lr · (grad + momentum · v)`. The velocity `v` starts at zero, so the first step
/// is a plain SGD step.
#[derive(Clone, Debug)]
pub struct Momentum<T> {
    /// The learning rate; change it between steps for a schedule.
    pub lr: T,
    /// The momentum coefficient, usually 0.9 (0 gives plain SGD).
    pub momentum: T,
    /// Whether to use Nesterov momentum.
    pub nesterov: bool,
    pub(crate) velocity: Slots<T>,
}

impl<T: Scalar> Momentum<T> {
    /// SGD with learning rate `lr` and momentum coefficient `momentum`.
    pub fn new(lr: T, momentum: T) -> Self {
        Momentum {
            lr,
            momentum,
            nesterov: false,
            velocity: Slots::default(),
        }
    }

    /// The same, with Nesterov momentum.
    pub fn nesterov(lr: T, momentum: T) -> Self {
        Momentum {
            nesterov: true,
            ..Momentum::new(lr, momentum)
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> T {
        self.lr
    }

    /// Sets the learning rate for the next steps (the velocities are kept).
    pub fn set_lr(&mut self, lr: T) {
        self.lr = lr;
    }

    /// Forgets the velocities: the next step is a plain SGD step again.
    pub fn reset(&mut self) {
        self.velocity.clear();
    }

    /// The velocity of param `index` (by [`ParamMut::index`](crate::ParamMut::index)), if a
    /// step has created it.
    pub fn velocity(&self, index: usize) -> Option<ArrayView<'_, T, IxDyn>> {
        self.velocity.bufs.get(index).map(|b| b.view())
    }
}

impl<T: Scalar> Optimizer<T> for Momentum<T> {
    fn step<N: Network<Elem = T> + ?Sized>(&mut self, net: &mut N) -> Result<()> {
        check_finite(
            "Momentum::step",
            &[("the learning rate", self.lr), ("momentum", self.momentum)],
        )?;
        check_grads(net)?;
        let (lr, mu, nesterov) = (self.lr, self.momentum, self.nesterov);
        let velocity = &mut self.velocity;
        net.visit_params(&mut |p| {
            let Some(v) = velocity.get(p.index, p.name, p.value.shape()) else {
                return;
            };
            Zip::from(p.value).and(&p.grad).and(v).for_each(|w, &g, v| {
                *v = mu * *v + g;
                let d = if nesterov { g + mu * *v } else { *v };
                *w = *w - lr * d;
            });
        });
        Ok(())
    }
}

/// Adam (Kingma and Ba, 2015), bias-corrected:
///
/// ```text
/// m = β1·m + (1-β1)·g          v = β2·v + (1-β2)·g²
/// m̂ = m / (1 - β1^t)           v̂ = v / (1 - β2^t)
/// value -= lr · m̂ / (sqrt(v̂) + ε)
/// ```
///
/// with `t` the number of steps taken, counting this one. The moments start at zero.
#[derive(Clone, Debug)]
pub struct Adam<T> {
    /// The learning rate (step size); change it between steps for a schedule.
    pub lr: T,
    /// β1, the decay of the first moment (default 0.9).
    pub beta1: T,
    /// β2, the decay of the second moment (default 0.999).
    pub beta2: T,
    /// ε, added to the denominator (default 1e-8).
    pub eps: T,
    pub(crate) t: u64,
    pub(crate) m: Slots<T>,
    pub(crate) v: Slots<T>,
}

impl<T: Scalar> Adam<T> {
    /// Adam with learning rate `lr` and the usual β1 = 0.9, β2 = 0.999, ε = 1e-8.
    pub fn new(lr: T) -> Self {
        Adam {
            lr,
            beta1: T::from_f64(0.9),
            beta2: T::from_f64(0.999),
            eps: T::from_f64(1e-8),
            t: 0,
            m: Slots::default(),
            v: Slots::default(),
        }
    }

    /// Sets β1 and β2.
    pub fn with_betas(mut self, beta1: T, beta2: T) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets ε.
    pub fn with_eps(mut self, eps: T) -> Self {
        self.eps = eps;
        self
    }

    /// The learning rate.
    pub fn lr(&self) -> T {
        self.lr
    }

    /// Sets the learning rate for the next steps (the moments are kept).
    pub fn set_lr(&mut self, lr: T) {
        self.lr = lr;
    }

    /// How many steps have been taken since creation or the last [`reset`](Adam::reset).
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// Forgets the moments and the step count.
    pub fn reset(&mut self) {
        self.t = 0;
        self.m.clear();
        self.v.clear();
    }
}

impl<T: Scalar> Optimizer<T> for Adam<T> {
    fn step<N: Network<Elem = T> + ?Sized>(&mut self, net: &mut N) -> Result<()> {
        check_finite(
            "Adam::step",
            &[
                ("the learning rate", self.lr),
                ("beta1", self.beta1),
                ("beta2", self.beta2),
                ("eps", self.eps),
            ],
        )?;
        check_grads(net)?;
        self.t = self.t.saturating_add(1);
        // β^t underflows to 0 long before t leaves i32.
        let t = i32::try_from(self.t).unwrap_or(i32::MAX);
        let one = T::one();
        let (b1, b2, lr, eps) = (self.beta1, self.beta2, self.lr, self.eps);
        let (bc1, bc2) = (one - b1.powi(t), one - b2.powi(t));
        let (m, v) = (&mut self.m, &mut self.v);
        net.visit_params(&mut |p| {
            let (Some(m), Some(v)) = (
                m.get(p.index, p.name, p.value.shape()),
                v.get(p.index, p.name, p.value.shape()),
            ) else {
                return;
            };
            Zip::from(p.value)
                .and(&p.grad)
                .and(m)
                .and(v)
                .for_each(|w, &g, m, v| {
                    *m = b1 * *m + (one - b1) * g;
                    *v = b2 * *v + (one - b2) * g * g;
                    let m_hat = *m / bc1;
                    let v_hat = *v / bc2;
                    *w = *w - lr * m_hat / (v_hat.sqrt() + eps);
                });
        });
        Ok(())
    }
}
