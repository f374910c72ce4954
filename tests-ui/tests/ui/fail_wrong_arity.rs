// `linear` without its bias.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        f = linear(X, W);
        loss cost = mse(y, f);
    }
}

fn main() {}
