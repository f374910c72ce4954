//! The element types networks compute in.

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::Float;
use std::fmt::{Debug, Display};

/// A floating-point element type: `f64` (the default, as in the seed) or `f32`.
pub trait Scalar:
    LinalgScalar + Float + ScalarOperand + Debug + Display + Default + Send + Sync + 'static
{
    /// Converts from `f64`, rounding to the nearest value of `Self`.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
}

impl Scalar for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Scalar for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}
