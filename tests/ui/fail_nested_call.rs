// Calls do not nest; each one gets a name of its own.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        a = sigmoid(linear(X, W, b));
        loss cost = mse(y, a);
    }
}

fn main() {}
