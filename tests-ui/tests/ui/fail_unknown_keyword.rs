// A misspelled statement keyword: the error suggests `input`.
miniflow::network! {
    pub struct Net {
        inptu X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}
