//! `add(x1, x2, ...)`: the elementwise sum of inputs of one shape (the course's `Add`).

use super::{DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use ndarray::{ArrayView, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn, Zip};

/// `out = x1 + x2 + ...`.
pub fn forward<T: Scalar, D: Dimension>(
    xs: &[ArrayView<'_, T, D>],
    mut out: ArrayViewMut<'_, T, D>,
) {
    let Some((first, rest)) = xs.split_first() else {
        out.fill(T::zero());
        return;
    };
    out.assign(first);
    for x in rest {
        Zip::from(&mut out).and(x).for_each(|o, &x| *o = *o + x);
    }
}

/// `dxi (+)= g` for one input: the sum passes its gradient through unchanged.
pub fn backward<T: Scalar, D: Dimension>(g: ArrayView<'_, T, D>, dxi: GradOut<'_, T, D>) {
    dxi.zip_with(g, |g| g);
}

/// The runtime graph's forward.
pub(crate) fn forward_dyn<T: Scalar>(
    n: &DynNode<'_, T>,
    out: ArrayViewMutD<'_, T>,
) -> Result<(), KernelError> {
    n.with_views(|xs| forward(xs, out))
}

/// The runtime graph's backward (the same for every argument).
pub(crate) fn backward_dyn<T: Scalar>(
    b: &DynBackward<'_, T>,
    _k: usize,
    dx: GradOut<'_, T, IxDyn>,
) -> Result<(), KernelError> {
    backward(b.g::<IxDyn>()?, dx);
    Ok(())
}
