#!/usr/bin/env python3
"""Makes miniflow's PyTorch fixture and checks the other direction. Run by hand (CI never
runs it and needs no Python):

    pip install torch safetensors numpy
    python3 scripts/pytorch_fixture.py

1. PyTorch -> miniflow. Builds nn.Sequential(Linear(4, 8), Tanh, Linear(8, 6), Sigmoid,
   Linear(6, 3)) in float64 from a fixed seed, runs a batch of 5 rows through it with
   cross-entropy, and writes tests/fixtures/torch/:
     mlp.safetensors  the state dict, by safetensors.torch.save_file (names 0.weight, ...,
                      weights [out, in], as PyTorch stores them)
     io.safetensors   the batch (X, y), PyTorch's outputs (logits, probs), loss, and the
                      gradients (grad.0.weight, ..., grad.X)
   tests/suite/torch_fixture.rs loads both and must match PyTorch to 1e-12 relative.

2. miniflow -> PyTorch. Runs `cargo test --test suite torch_fixture::` with
   MINIFLOW_WRITE_FIXTURES=1, which makes miniflow train the loaded network a few Adam steps
   and save it for PyTorch (Save::torch_linear) as from_miniflow.safetensors, with its own
   outputs on the batch in from_miniflow_outputs.safetensors. This script then loads that
   file with safetensors.numpy.load_file (a numpy forward pass) and into the nn.Sequential
   with load_state_dict, and checks both give miniflow's outputs.
"""

import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "torch")
TOL = 1e-12


def model():
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 6),
        torch.nn.Sigmoid(),
        torch.nn.Linear(6, 3),
    ).double()


def worst_relative(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    err = np.abs(a - b) / np.where(scale == 0, 1.0, scale)
    return float(err.max()) if err.size else 0.0


def torch_to_miniflow():
    torch.manual_seed(20261130)
    net = model()
    x = (1.5 * torch.randn(5, 4, dtype=torch.float64)).requires_grad_(True)
    y = torch.tensor([0, 2, 1, 2, 0])
    logits = net(x)
    probs = torch.softmax(logits, dim=1)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()

    os.makedirs(OUT, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, os.path.join(OUT, "mlp.safetensors"))
    io = {
        "X": x.detach(),
        # miniflow's labels are class indices stored as floats.
        "y": y.to(torch.float64),
        "logits": logits.detach(),
        "probs": probs.detach(),
        "loss": loss.detach().reshape(()),
        "grad.X": x.grad.detach(),
    }
    for name, p in net.named_parameters():
        io["grad." + name] = p.grad.detach().contiguous()
    save_file(io, os.path.join(OUT, "io.safetensors"), metadata={"torch": torch.__version__})
    print(f"wrote {OUT}/mlp.safetensors and io.safetensors (torch {torch.__version__}, loss {loss.item():.17g})")


def miniflow_to_torch():
    env = dict(os.environ, MINIFLOW_WRITE_FIXTURES="1")
    subprocess.run(
        ["cargo", "test", "--test", "torch_fixture", "--", "--nocapture"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    saved = load_numpy(os.path.join(OUT, "from_miniflow.safetensors"))
    outputs = load_numpy(os.path.join(OUT, "from_miniflow_outputs.safetensors"))
    x = outputs["X"]

    # numpy, straight from the arrays: PyTorch's layout, weights [out, in].
    h1 = np.tanh(x @ saved["0.weight"].T + saved["0.bias"])
    h2 = 1.0 / (1.0 + np.exp(-(h1 @ saved["2.weight"].T + saved["2.bias"])))
    logits_np = h2 @ saved["4.weight"].T + saved["4.bias"]
    e = worst_relative(logits_np, outputs["logits"])
    print(f"numpy forward of miniflow's file vs miniflow's logits: worst relative error {e:.3g}")
    assert e <= TOL, e

    # And into the nn.Sequential, by load_state_dict.
    net = model()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in saved.items()})
    with torch.no_grad():
        logits = net(torch.from_numpy(x))
        probs = torch.softmax(logits, dim=1)
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(outputs["y"]).long())
    for name, got in [("logits", logits), ("probs", probs), ("loss", loss)]:
        e = worst_relative(got.numpy(), outputs[name])
        print(f"PyTorch forward of miniflow's file vs miniflow's {name}: worst relative error {e:.3g}")
        assert e <= TOL, (name, e)
    print("OK: a file saved by miniflow loads in Python and gives miniflow's outputs")


if __name__ == "__main__":
    torch_to_miniflow()
    miniflow_to_torch()
    sys.exit(0)
