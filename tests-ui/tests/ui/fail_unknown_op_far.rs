// An op that is not a typo of any op: the error lists the ops there are.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        a = conv2d(f);
        loss cost = mse(y, a);
    }
}

fn main() {}
