// `linear` needs a matrix of rows; `x` is a vector.
miniflow::network! {
    pub struct Net {
        input x: [batch];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(x, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}
