// `softmax` is row-wise over a [m, c] input.
miniflow::network! {
    pub struct Net {
        input x: [n];
        input y: [n];
        p = softmax(x);
        loss cost = mse(y, p);
    }
}

fn main() {}
