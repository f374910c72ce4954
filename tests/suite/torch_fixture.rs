//! Issue 10, section 3: PyTorch interop. `tests/fixtures/torch/` holds a state dict written
//! by PyTorch's `safetensors.torch.save_file` for
//! `nn.Sequential(Linear(4, 8), Tanh, Linear(8, 6), Sigmoid, Linear(6, 3))` in float64, and
//! PyTorch's batch, outputs, cross-entropy loss and gradients (`scripts/pytorch_fixture.py`
//! made them; CI needs no Python). Loaded with an explicit name map and transpose, miniflow
//! must match PyTorch to 1e-12 relative.
//!
//! The other direction: miniflow trains the network a few steps and saves it for PyTorch;
//! the committed `from_miniflow*.safetensors` are what this test writes (checked here), and
//! the script loads them in Python and checks they give miniflow's outputs. With
//! `MINIFLOW_WRITE_FIXTURES=1` the test rewrites them (the script does that).

// Saving and loading need the `safetensors` feature (on by default).
#![cfg(feature = "safetensors")]

use miniflow::ndarray::{ArrayD, ArrayViewD};
use miniflow::persist::{Checkpoint, Load, Save};
use miniflow::{Adam, Error, Network, Optimizer};
use std::path::{Path, PathBuf};

miniflow::network! {
    /// PyTorch's `nn.Sequential(Linear(4, 8), Tanh(), Linear(8, 6), Sigmoid(), Linear(6, 3))`
    /// with `cross_entropy`.
    pub struct TorchMlp {
        #[grad] input X: [batch, 4];
        /// Class indices as floats.
        input y: [batch];
        param W1: [4, 8];
        param b1: [8];
        param W2: [8, 6];
        param b2: [6];
        param W3: [6, 3];
        param b3: [3];
        l1 = linear(X, W1, b1);
        h1 = tanh(l1);
        l2 = linear(h1, W2, b2);
        h2 = sigmoid(l2);
        output logits = linear(h2, W3, b3);
        output probs = softmax(logits);
        loss cost = softmax_cross_entropy(logits, y);
    }
}

const TOLERANCE: f64 = 1e-12;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch")
}

/// The layers of the `nn.Sequential`: (PyTorch prefix, weight, bias).
const LAYERS: [(&str, &str, &str); 3] = [("0", "W1", "b1"), ("2", "W2", "b2"), ("4", "W3", "b3")];

fn torch_load() -> Load {
    LAYERS
        .iter()
        .fold(Load::new(), |l, (p, w, b)| l.torch_linear(p, w, b))
}

fn torch_save() -> Save {
    LAYERS
        .iter()
        .fold(Save::new(), |s, (p, w, b)| s.torch_linear(w, b, p))
}

/// The worst element-wise relative error `|a - b| / max(|a|, |b|)`.
fn worst_relative(a: ArrayViewD<'_, f64>, b: ArrayViewD<'_, f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| {
            let scale = x.abs().max(y.abs());
            if scale == 0.0 {
                0.0
            } else {
                (x - y).abs() / scale
            }
        })
        .fold(0.0, f64::max)
}

fn close(what: &str, got: ArrayViewD<'_, f64>, want: &ArrayD<f64>) {
    let e = worst_relative(got, want.view());
    println!("{what}: worst relative error {e:.2e}");
    assert!(e <= TOLERANCE, "{what}: worst relative error {e:e}");
}

fn loaded() -> (TorchMlp, Checkpoint) {
    let mut net = TorchMlp::new();
    let report = torch_load()
        .load(&mut net, fixtures().join("mlp.safetensors"))
        .unwrap();
    assert_eq!(report.set, ["W1", "b1", "W2", "b2", "W3", "b3"]);
    let io = Checkpoint::load(fixtures().join("io.safetensors")).unwrap();
    net.set_input("X", io.array::<f64>("X").unwrap().view())
        .unwrap();
    net.set_input("y", io.array::<f64>("y").unwrap().view())
        .unwrap();
    (net, io)
}

#[test]
fn pytorch_outputs_and_gradients_match_to_1e_12() {
    let (mut net, io) = loaded();
    let loss = net.forward_backward().unwrap();
    let want = io.array::<f64>("loss").unwrap();
    close("loss", ArrayD::from_elem(vec![], loss).view(), &want);
    close("X", net.grad("X").unwrap(), &io.array("grad.X").unwrap());
    for (prefix, w, b) in LAYERS {
        // PyTorch's weight gradient is [out, in], like its weight.
        let gw = io.array::<f64>(&format!("grad.{prefix}.weight")).unwrap();
        close(w, net.grad(w).unwrap(), &gw.t().to_owned());
        close(
            b,
            net.grad(b).unwrap(),
            &io.array(&format!("grad.{prefix}.bias")).unwrap(),
        );
    }
    close(
        "logits",
        net.evaluate("logits").unwrap(),
        &io.array("logits").unwrap(),
    );
    close(
        "probs",
        net.evaluate("probs").unwrap(),
        &io.array("probs").unwrap(),
    );
}

#[test]
fn pytorch_layouts_are_never_guessed() {
    // Without the name map: every name is reported at once.
    let mut net = TorchMlp::new();
    let before = net.value("W1").unwrap().to_owned();
    let e = miniflow::persist::load(&mut net, fixtures().join("mlp.safetensors")).unwrap_err();
    match &e {
        Error::TensorNames {
            missing,
            unexpected,
            ..
        } => {
            assert_eq!(missing.len(), 6);
            assert_eq!(unexpected.len(), 6);
        }
        other => panic!("{other:?}"),
    }
    // With names but no transpose: the shapes say it looks transposed.
    let e = LAYERS
        .iter()
        .fold(Load::new(), |l, (p, w, b)| {
            l.rename(&format!("{p}.weight"), w)
                .rename(&format!("{p}.bias"), b)
        })
        .load(&mut net, fixtures().join("mlp.safetensors"))
        .unwrap_err();
    assert!(e.to_string().contains("looks transposed"), "{e}");
    assert_eq!(net.value("W1").unwrap(), before, "nothing loaded");
}

/// What miniflow writes for PyTorch: the fixture network after 3 Adam steps, saved in
/// PyTorch's names and layout, and its outputs on the fixture's batch.
fn miniflow_files() -> (Vec<u8>, Vec<u8>) {
    let (mut net, io) = loaded();
    let mut adam = Adam::new(0.05);
    for _ in 0..3 {
        net.forward_backward().unwrap();
        adam.step(&mut net).unwrap();
    }
    let model = torch_save().to_bytes(&net).unwrap();
    let loss = net.forward().unwrap();
    let mut out = Checkpoint::new();
    out.put_array("X", io.array::<f64>("X").unwrap().view())
        .put_array("y", io.array::<f64>("y").unwrap().view())
        .put_array("logits", net.evaluate("logits").unwrap())
        .put_array("probs", net.evaluate("probs").unwrap())
        .put_array("loss", ArrayD::from_elem(vec![], loss).view());
    (model, out.to_bytes().unwrap())
}

#[test]
fn the_committed_miniflow_files_are_what_miniflow_writes() {
    let (model, outputs) = miniflow_files();
    let files = [
        ("from_miniflow.safetensors", model),
        ("from_miniflow_outputs.safetensors", outputs),
    ];
    if std::env::var_os("MINIFLOW_WRITE_FIXTURES").is_some() {
        for (name, bytes) in &files {
            std::fs::write(fixtures().join(name), bytes).unwrap();
            println!("wrote tests/fixtures/torch/{name}");
        }
        return;
    }
    for (name, bytes) in &files {
        // Tensors and metadata, not bytes: metadata order in the header is not fixed.
        let now = Checkpoint::from_bytes(bytes, name).unwrap();
        let committed = Checkpoint::load(fixtures().join(name)).unwrap();
        assert_eq!(
            now.tensor_names().collect::<Vec<_>>(),
            committed.tensor_names().collect::<Vec<_>>(),
            "{name}"
        );
        for t in now.tensor_names() {
            assert_eq!(
                now.array::<f64>(t).unwrap(),
                committed.array::<f64>(t).unwrap(),
                "{name}: {t} (rerun scripts/pytorch_fixture.py if miniflow's numbers changed on purpose)"
            );
        }
    }
    // And the model file loads back into miniflow with PyTorch's layout undone.
    let mut net = TorchMlp::new();
    torch_load()
        .load(&mut net, fixtures().join("from_miniflow.safetensors"))
        .unwrap();
}
