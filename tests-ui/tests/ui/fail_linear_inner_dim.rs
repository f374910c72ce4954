// X has 3 columns but W has 2 rows: the error blames `W`.
miniflow::network! {
    pub struct Net {
        input X: [batch, 3];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}
