// The targets hold one value per row, the prediction two: the error blames `f`.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 2];
        param b: [2];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}
