// Nothing is marked `loss`, so backward has nowhere to start.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        output a = sigmoid(f);
    }
}

fn main() {}
