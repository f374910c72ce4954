// Two nodes marked `loss`.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        input z: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost1 = mse(y, f);
        loss cost2 = mse(z, f);
    }
}

fn main() {}
