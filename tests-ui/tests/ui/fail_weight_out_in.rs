// A PyTorch-style [out, in] weight.
miniflow::network! {
    pub struct Net {
        input x: [batch, 4];
        input y: [batch, 3];
        param w: [3, 4];
        param b: [3];
        h = linear(x, w, b);
        loss cost = mse(y, h);
    }
}

fn main() {}
