// `#[grad]` is for inputs; params always get their gradients.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        #[grad]
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}
