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

    /// `e^x` for `x` clamped to the range where the result is a normal number, within 2 ulp
    /// of `exp`. Written without branches or calls (range reduction, a polynomial, and the
    /// exponent built from bits) so a loop of it vectorizes, unlike a loop calling `exp`.
    fn exp_clamped(self) -> Self {
        self.exp_clamped_with::<false>()
    }

    /// [`exp_clamped`](Scalar::exp_clamped), evaluating the polynomial with fused
    /// multiply-adds when `FMA` (for code compiled with the `fma` target feature).
    fn exp_clamped_with<const FMA: bool>(self) -> Self;
}

/// The coefficients of `e^r`'s Taylor series below the leading `r^13/13!`, highest first.
pub(crate) const EXP_F64_TAYLOR: [f64; 13] = [
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// The same for f32, below `r^8/8!`.
pub(crate) const EXP_F32_TAYLOR: [f32; 8] = [
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

impl Scalar for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }

    #[inline(always)]
    fn exp_clamped_with<const FMA: bool>(self) -> Self {
        const LN2_HI: f64 = 0.693_147_180_369_123_8;
        const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
        // Adding 1.5·2^52 rounds to an integer and leaves it in the low mantissa bits.
        const ROUND: f64 = 6_755_399_441_055_744.0;
        let x = self.clamp(-708.0, 709.0);
        let t = x * std::f64::consts::LOG2_E + ROUND;
        let k = t - ROUND;
        let r = x - k * LN2_HI - k * LN2_LO;
        // Taylor series of e^r to degree 13; |r| <= ln2/2, so the tail is below 1e-17.
        let mut p = 1.0 / 6_227_020_800.0;
        for c in EXP_F64_TAYLOR {
            p = if FMA { p.mul_add(r, c) } else { p * r + c };
        }
        // 2^k: k sits in t's low bits; k + 1023 is in [2, 2046], a valid biased exponent.
        let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
        p * scale
    }
}

impl Scalar for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    #[inline(always)]
    fn exp_clamped_with<const FMA: bool>(self) -> Self {
        const LN2_HI: f32 = 0.693_359_4; // 0.693359375, exact in f32
        const LN2_LO: f32 = -2.121_944_4e-4;
        const ROUND: f32 = 12_582_912.0; // 1.5·2^23
        let x = self.clamp(-87.0, 88.0);
        let t = x * std::f32::consts::LOG2_E + ROUND;
        let k = t - ROUND;
        let r = x - k * LN2_HI - k * LN2_LO;
        let mut p = 1.0 / 40_320.0;
        for c in EXP_F32_TAYLOR {
            p = if FMA { p.mul_add(r, c) } else { p * r + c };
        }
        let scale = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
        p * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps64(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_clamped_f64_is_within_2_ulp() {
        let mut worst = 0;
        for i in -70_800..70_900 {
            let x = i as f64 * 0.01 + 0.003;
            worst = worst.max(ulps64(x.exp_clamped(), x.exp()));
            worst = worst.max(ulps64(x.exp_clamped_with::<true>(), x.exp()));
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(0.0f64.exp_clamped(), 1.0);
        assert!(1e6f64.exp_clamped().is_finite() && (-1e6f64).exp_clamped() > 0.0);
        assert!(f64::NAN.exp_clamped().is_nan());
    }

    #[test]
    fn exp_clamped_f32_is_within_2_ulp() {
        let mut worst = 0;
        for i in -8_700..8_800 {
            let x = i as f32 * 0.01 + 0.003;
            let (a, b) = (x.exp_clamped(), x.exp());
            worst = worst.max((a.to_bits() as i32 - b.to_bits() as i32).unsigned_abs());
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert!(1e6f32.exp_clamped().is_finite());
    }
}
