// An integer-typed literal: only plain numbers (or `f32` / `f64` suffixes) are numbers here.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch, 1];
        param W: [2, 1];
        h = matmul(X, W);
        o = leaky_relu(h, 1u8);
        loss cost = mse(y, o);
    }
}

fn main() {}
