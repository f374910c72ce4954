//! The step in candle as its examples write one: `Var` parameters, `matmul` +
//! `broadcast_add`, `candle_nn`'s sigmoid and mse, and `candle_nn::SGD` (`p - grad * lr`).

use candle_core::{Device, Result, Tensor, Var, WithDType};
use candle_nn::{Optimizer, SGD, loss::mse, ops::sigmoid};

use crate::{Data, Elem, LR, Shape, Step};

pub struct CandleStep {
    shape: Shape,
    params: [Var; 4],
    sgd: SGD,
}

impl CandleStep {
    fn try_new<T: Elem + WithDType>(d: &Data<T>) -> Result<Self> {
        let (_, n_in, hidden, n_out) = d.shape;
        let dev = &Device::Cpu;
        let params = [
            Var::from_slice(&d.w1, (n_in, hidden), dev)?,
            Var::from_slice(&d.b1, hidden, dev)?,
            Var::from_slice(&d.w2, (hidden, n_out), dev)?,
            Var::from_slice(&d.b2, n_out, dev)?,
        ];
        let sgd = SGD::new(params.to_vec(), LR)?;
        Ok(CandleStep {
            shape: d.shape,
            params,
            sgd,
        })
    }

    fn try_step<T: Elem + WithDType>(&mut self, x: &[T], y: &[T]) -> Result<f64> {
        let (m, n_in, _, n_out) = self.shape;
        let x = Tensor::from_slice(x, (m, n_in), &Device::Cpu)?;
        let y = Tensor::from_slice(y, (m, n_out), &Device::Cpu)?;
        let [w1, b1, w2, b2] = &self.params;
        let l1 = x.matmul(w1)?.broadcast_add(b1)?;
        let l2 = sigmoid(&l1)?.matmul(w2)?.broadcast_add(b2)?;
        let loss = mse(&l2, &y)?;
        self.sgd.backward_step(&loss)?;
        Ok(Elem::to_f64(loss.to_scalar::<T>()?))
    }

    fn try_params<T: Elem + WithDType>(&self) -> Result<[Vec<f64>; 4]> {
        let host = |v: &Var| -> Result<Vec<f64>> {
            let values = v.flatten_all()?.to_vec1::<T>()?;
            Ok(values.into_iter().map(Elem::to_f64).collect())
        };
        let [w1, b1, w2, b2] = &self.params;
        Ok([host(w1)?, host(b1)?, host(w2)?, host(b2)?])
    }
}

impl<T: Elem + WithDType> Step<T> for CandleStep {
    fn new(d: &Data<T>) -> Self {
        Self::try_new(d).expect("candle setup")
    }

    fn step(&mut self, x: &[T], y: &[T]) -> f64 {
        self.try_step(x, y).expect("candle step")
    }

    fn params(&self) -> [Vec<f64>; 4] {
        self.try_params::<T>().expect("candle params")
    }
}
