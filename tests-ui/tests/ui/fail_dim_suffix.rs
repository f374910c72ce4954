// A dimension with an integer suffix: dims follow the rule of literal arguments.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2u8];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}
