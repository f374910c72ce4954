// The loss must be a single number, not one per row.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost = sigmoid(f);
    }
}

fn main() {}
