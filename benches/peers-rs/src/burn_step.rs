//! The step in burn as the Burn Book writes one: a `Module` of two `nn::Linear`, `MseLoss`, and the
//! `Sgd` optimizer from `SgdConfig` (no momentum, no weight decay: `p - lr * grad`).

use burn::module::{AutodiffModule, Module, Param};
use burn::nn::Linear;
use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::activation;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};

use crate::{Data, Elem, LR, Shape, Step};

#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    l1: Linear<B>,
    l2: Linear<B>,
}

/// burn's `activation::sigmoid` computes in f32 whatever the dtype (the default
/// `ActivationOps::sigmoid` of burn-backend 0.20, which the ndarray backend keeps): off by ~1e-8
/// in f64. So f64 writes it out, as four ops on the autodiff graph instead of one.
fn sigmoid<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    if x.dtype() == DType::F64 {
        x.neg().exp().add_scalar(1.0).recip()
    } else {
        activation::sigmoid(x)
    }
}

impl<B: Backend> Mlp<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.l2.forward(sigmoid(self.l1.forward(x)))
    }
}

pub struct BurnStep<B: AutodiffBackend> {
    shape: Shape,
    device: B::Device,
    /// Moved into the optimizer and back each step, hence the `Option`.
    model: Option<Mlp<B>>,
    optim: OptimizerAdaptor<Sgd<B::InnerBackend>, Mlp<B>, B>,
}

/// A linear layer holding the given `weight [in, out]` and `bias [out]`.
fn linear<B: Backend>(w: &[B::FloatElem], b: &[B::FloatElem], dev: &B::Device) -> Linear<B> {
    let (n_in, n_out) = (w.len() / b.len(), b.len());
    let weight = Tensor::from_data(TensorData::new(w.to_vec(), [n_in, n_out]), dev);
    let bias = Tensor::from_data(TensorData::new(b.to_vec(), [n_out]), dev);
    Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
    }
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    let data = t.into_data().convert::<f64>();
    data.to_vec().expect("f64 data")
}

impl<B: AutodiffBackend> Step<B::FloatElem> for BurnStep<B>
where
    B::FloatElem: Elem,
{
    fn new(d: &Data<B::FloatElem>) -> Self {
        let device = B::Device::default();
        let model = Mlp {
            l1: linear(&d.w1, &d.b1, &device),
            l2: linear(&d.w2, &d.b2, &device),
        };
        BurnStep {
            shape: d.shape,
            device,
            model: Some(model),
            optim: SgdConfig::new().init(),
        }
    }

    fn step(&mut self, x: &[B::FloatElem], y: &[B::FloatElem]) -> f64 {
        let (m, n_in, _, n_out) = self.shape;
        let x = Tensor::from_data(TensorData::new(x.to_vec(), [m, n_in]), &self.device);
        let y = Tensor::from_data(TensorData::new(y.to_vec(), [m, n_out]), &self.device);
        let model = self
            .model
            .take()
            .expect("the model is put back after each step");
        let loss = MseLoss::new().forward(model.forward(x), y, Reduction::Mean);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // Reading the loss consumes it, so its graph is gone before the update.
        let value = Elem::to_f64(loss.into_scalar());
        self.model = Some(self.optim.step(LR, model, grads));
        value
    }

    fn params(&self) -> [Vec<f64>; 4] {
        let model = self.model.as_ref().expect("model").valid();
        let bias = |l: &Linear<B::InnerBackend>| host(l.bias.as_ref().expect("bias").val());
        [
            host(model.l1.weight.val()),
            bias(&model.l1),
            host(model.l2.weight.val()),
            bias(&model.l2),
        ]
    }
}
