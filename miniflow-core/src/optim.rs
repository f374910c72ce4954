//! Optimizers over any [`Network`].

use crate::{Network, Scalar};
use ndarray::{ArrayView, ArrayViewMut, Dimension, Zip};

/// Updates a network's params from their gradients. Written once, works for every network.
pub trait Optimizer<T: Scalar> {
    /// Applies one update to every param of `net`, using the gradients of the last backward.
    fn step<N: Network<Elem = T> + ?Sized>(&mut self, net: &mut N);
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
}

impl<T: Scalar> Default for Sgd<T> {
    /// The course's default learning rate, `1e-2`.
    fn default() -> Self {
        Sgd::new(T::from_f64(1e-2))
    }
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    fn step<N: Network<Elem = T> + ?Sized>(&mut self, net: &mut N) {
        sgd(net, self.lr);
    }
}

/// The course's `sgd_update`: `value -= lr * grad` for every param of `net`.
pub fn sgd<N: Network + ?Sized>(net: &mut N, lr: N::Elem) {
    net.visit_params(&mut |p| sgd_update(p.value, p.grad, lr));
}

/// `value -= lr * grad` for one array (shapes must match).
pub fn sgd_update<T: Scalar, D: Dimension>(
    value: ArrayViewMut<'_, T, D>,
    grad: ArrayView<'_, T, D>,
    lr: T,
) {
    Zip::from(value)
        .and(&grad)
        .for_each(|v, &g| *v = *v - lr * g);
}
