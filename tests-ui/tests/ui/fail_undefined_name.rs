// A misspelled argument: the error points at it and suggests the name it is closest to.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param weights: [2, 1];
        param bias: [1];
        f = linear(X, wieghts, bias);
        loss cost = mse(y, f);
    }
}

fn main() {}
