//! Parameter initialisation over any [`Network`]: the course's `randn`, Xavier/Glorot and He
//! (uniform or normal), constants, all seeded.
//!
//! Every scheme treats a param by its rank, read from the param's current shape:
//!
//! - rank 0 or 1 (a bias such as `b: [10]`, or a scalar): set to **zero**, as the course does
//!   (`b = np.zeros(...)`);
//! - rank 2 (a weight `W: [fan_in, fan_out]`, the layout `linear(x, W, b) = x·W + b` uses):
//!   drawn from the scheme's distribution;
//! - rank 3 or more: drawn too, with `fan_out` the last dim and `fan_in` the product of the
//!   others.
//!
//! Params are visited in source order ([`Network::visit_params`]) and each one's elements in
//! row-major order, so a seed fixes every value on every platform (see [`crate::rng`]).
//! Values are drawn in `f64` and rounded to the network's element type.
//!
//! [`Init::apply`] takes any `rand_core` generator ([`RngCore`]), ours or your own; the
//! seeded functions use [`Rng`]. Normals are drawn in pairs by the polar method from the
//! generator's `u64`s, within one call (a normal left pending by an earlier [`Rng::normal`]
//! is not used), so the values depend only on the generator's stream.
//!
//! ```
//! use miniflow_core::{init, Network};
//! # fn demo<N: Network>(net: &mut N) {
//! init::randn(net, 42); // W ~ N(0, 1), b = 0: the course's nn.py
//! init::xavier_uniform(net, 42); // W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out))
//! init::he_normal(net, 42); // W ~ N(0, 2 / fan_in)
//! # }
//! ```

use crate::rng::{self, Rng};
use crate::{Network, Scalar};
use rand_core::RngCore;

/// The seed of [`Init::Default`] in a generated network's `new()`: the bytes of "miniflow".
pub const DEFAULT_SEED: u64 = 0x6d69_6e69_666c_6f77;

/// A distribution for weights (params of rank 2 or more). Biases (rank 0 and 1) are always
/// set to zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// What a generated network's `new()` does (with [`DEFAULT_SEED`]), chosen per param from
    /// how the network uses it, as PyTorch's `nn.Linear` does:
    ///
    /// - the weight of a `linear` or the right factor of a `matmul` (`W: [fan_in, fan_out]`):
    ///   `U(-a, a)` with `a = 1 / sqrt(fan_in)`, or He uniform `a = sqrt(6 / fan_in)` when
    ///   every node it computes feeds only `relu` / `leaky_relu`;
    /// - any other param of rank 2 or more: `U(-a, a)`, `a = 1 / sqrt(fan_in)`;
    /// - rank 0 and 1 (biases): zero.
    ///
    /// The draws: params in source order ([`Network::visit_params`]), each one's elements in
    /// row-major order, one [`rng::uniform`] each (`-a + 2a·u`); zeroed params draw nothing.
    /// A runtime [`Graph`](crate::Graph) with the same params and ops reproduces them.
    Default,
    /// `N(0, 1)`: the course's `np.random.randn`.
    Randn,
    /// `N(0, std²)`.
    Normal {
        /// The standard deviation.
        std: f64,
    },
    /// `U(low, high)`.
    Uniform {
        /// The lower bound (included).
        low: f64,
        /// The upper bound (excluded).
        high: f64,
    },
    /// Xavier/Glorot uniform: `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// Xavier/Glorot normal: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// He (Kaiming) uniform: `U(-a, a)` with `a = sqrt(6 / fan_in)`, for ReLU-like layers.
    HeUniform,
    /// He (Kaiming) normal: `N(0, 2 / fan_in)`.
    HeNormal,
    /// Every element zero (weights included).
    Zeros,
}

/// A weight's `(fan_in, fan_out)` from its shape: `[fan_in, fan_out]` for rank 2; for higher
/// ranks the last dim is `fan_out` and the product of the others `fan_in`. `None` for rank 0
/// and 1 (biases).
pub fn fans(shape: &[usize]) -> Option<(usize, usize)> {
    match shape.split_last() {
        Some((&fan_out, rest)) if !rest.is_empty() => Some((rest.iter().product(), fan_out)),
        _ => None,
    }
}

impl Init {
    /// How to draw one weight element for a param of the given fans.
    fn sampler(self, fan_in: usize, fan_out: usize) -> Draw {
        // An empty dim gives a param with no elements: nothing is drawn, so any finite
        // parameters will do.
        let fan_in = fan_in.max(1) as f64;
        let fans = (fan_in + fan_out.max(1) as f64).max(1.0);
        match self {
            // Chosen per param in `apply`; this is its plain-weight case.
            Init::Default => {
                let a = 1.0 / fan_in.sqrt();
                Draw::Uniform(-a, a)
            }
            Init::Randn => Draw::Normal(1.0),
            Init::Normal { std } => Draw::Normal(std),
            Init::Uniform { low, high } => Draw::Uniform(low, high),
            Init::XavierUniform => {
                let a = (6.0 / fans).sqrt();
                Draw::Uniform(-a, a)
            }
            Init::XavierNormal => Draw::Normal((2.0 / fans).sqrt()),
            Init::HeUniform => {
                let a = (6.0 / fan_in).sqrt();
                Draw::Uniform(-a, a)
            }
            Init::HeNormal => Draw::Normal((2.0 / fan_in).sqrt()),
            Init::Zeros => Draw::Zero,
        }
    }

    /// Initialises every param of `net` with this scheme, drawing from `rng` (an [`Rng`] or
    /// any other `rand_core` generator).
    pub fn apply<N: Network + ?Sized, R: RngCore + ?Sized>(self, net: &mut N, rng: &mut R) {
        let mut spare = None;
        let relu_fed = match self {
            Init::Default => relu_fed_weights(net.spec()),
            _ => Vec::new(),
        };
        net.visit_params(&mut |mut p| {
            let draw = match (self, fans(p.value.shape())) {
                (_, None) => Draw::Zero,
                (Init::Default, Some((fan_in, _))) => {
                    let fan_in = fan_in.max(1) as f64;
                    let a = if relu_fed.contains(&p.name) {
                        (6.0 / fan_in).sqrt()
                    } else {
                        1.0 / fan_in.sqrt()
                    };
                    Draw::Uniform(-a, a)
                }
                (_, Some((fan_in, fan_out))) => self.sampler(fan_in, fan_out),
            };
            for v in p.value.iter_mut() {
                *v = N::Elem::from_f64(draw.sample(rng, &mut spare));
            }
        });
    }

    /// Initialises every param of `net` with this scheme from a fresh [`Rng`] seeded by `seed`.
    pub fn apply_seeded<N: Network + ?Sized>(self, net: &mut N, seed: u64) {
        self.apply(net, &mut Rng::new(seed));
    }
}

#[derive(Clone, Copy, Debug)]
enum Draw {
    Zero,
    Normal(f64),
    Uniform(f64, f64),
}

impl Draw {
    fn sample<R: RngCore + ?Sized>(self, rng: &mut R, spare: &mut Option<f64>) -> f64 {
        match self {
            Draw::Zero => 0.0,
            Draw::Normal(std) => std * rng::normal(rng, spare),
            Draw::Uniform(low, high) => low + (high - low) * rng::uniform(rng),
        }
    }
}

/// The params [`Init::Default`] draws with He's bound: weights (of a `linear`, or the right
/// factor of a `matmul`) every one of whose products feeds only `relu` / `leaky_relu`.
fn relu_fed_weights(spec: &crate::NetworkSpec) -> Vec<&'static str> {
    use crate::NodeKind;
    use miniflow_ops::Op;
    let weight_of = |n: &crate::NodeSpec, p: &str| match n.kind {
        NodeKind::Op(Op::Linear | Op::Matmul) => n.args.get(1) == Some(&p),
        _ => false,
    };
    let only_relu = |product: &str| {
        let mut consumers = spec
            .nodes
            .iter()
            .filter(|c| c.args.contains(&product))
            .peekable();
        consumers.peek().is_some()
            && consumers.all(|c| matches!(c.kind, NodeKind::Op(Op::Relu | Op::LeakyRelu)))
    };
    spec.nodes
        .iter()
        .filter(|p| p.kind == NodeKind::Param)
        .filter(|p| {
            let mut products = spec
                .nodes
                .iter()
                .filter(|n| weight_of(n, p.name))
                .peekable();
            products.peek().is_some() && products.all(|n| only_relu(n.name))
        })
        .map(|p| p.name)
        .collect()
}

/// What a generated network's `new()` does: [`Init::Default`] from `seed`.
pub fn default<N: Network + ?Sized>(net: &mut N, seed: u64) {
    Init::Default.apply_seeded(net, seed);
}

/// The course's initialisation: weights `~ N(0, 1)` (`np.random.randn`), biases zero.
pub fn randn<N: Network + ?Sized>(net: &mut N, seed: u64) {
    Init::Randn.apply_seeded(net, seed);
}

/// Xavier/Glorot uniform weights, `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`; biases
/// zero. Suits sigmoid and tanh layers.
pub fn xavier_uniform<N: Network + ?Sized>(net: &mut N, seed: u64) {
    Init::XavierUniform.apply_seeded(net, seed);
}

/// Xavier/Glorot normal weights, `N(0, 2 / (fan_in + fan_out))`; biases zero.
pub fn xavier_normal<N: Network + ?Sized>(net: &mut N, seed: u64) {
    Init::XavierNormal.apply_seeded(net, seed);
}

/// He uniform weights, `U(-a, a)` with `a = sqrt(6 / fan_in)`; biases zero.
pub fn he_uniform<N: Network + ?Sized>(net: &mut N, seed: u64) {
    Init::HeUniform.apply_seeded(net, seed);
}

/// He normal weights, `N(0, 2 / fan_in)`; biases zero. Suits ReLU layers.
pub fn he_normal<N: Network + ?Sized>(net: &mut N, seed: u64) {
    Init::HeNormal.apply_seeded(net, seed);
}

/// Sets every param (weights and biases) to zero.
pub fn zeros<N: Network + ?Sized>(net: &mut N) {
    Init::Zeros.apply(net, &mut Rng::new(0));
}
