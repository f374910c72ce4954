//! Compiling a loop twice: once for the baseline target and once for AVX2+FMA, chosen at run
//! time, so kernels vectorize on modern CPUs without `-C target-cpu` and still run anywhere.

use crate::Scalar;

/// `a·b + c`: fused in the FMA copy of a loop (`FMA = true`), separate multiply and add in the
/// baseline copy (where `mul_add` would be a slow library call).
#[inline(always)]
pub(crate) fn madd<T: Scalar, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Defines `pub(crate) fn $name<T>` running `$body` (generic over `T` and a `const $fma: bool`)
/// through an AVX2+FMA copy when the CPU has the features, and a baseline copy otherwise.
/// The body is plain safe code; only the dispatch is `unsafe`.
macro_rules! multiversion {
    ($(#[$attr:meta])* fn $name:ident<$T:ident: Scalar, $fma:ident>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        #[inline]
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name<$T: $crate::Scalar>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$T: $crate::Scalar, const $fma: bool>($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn fast<$T: $crate::Scalar>($($arg: $ty),*) {
                    body::<$T, true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: `fast` requires only the CPU features detected just above.
                    #[allow(unsafe_code)]
                    return unsafe { fast($($arg),*) };
                }
            }
            body::<$T, false>($($arg),*)
        }
    };
}

pub(crate) use multiversion;
