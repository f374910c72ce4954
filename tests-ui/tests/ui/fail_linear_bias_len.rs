// W has 4 columns but b has 3 entries: the error blames `b`.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch, 4];
        param W: [2, 4];
        param b: [3];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}
