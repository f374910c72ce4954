// Dims whose product no array can hold: a compile error, not a panic in `new()`.
miniflow::network! {
    pub struct Net {
        input X: [batch, 4294967296];
        param W: [4294967296, 4294967296];
        param b: [4294967296];
        f = linear(X, W, b);
        loss cost = mean(f);
    }
}

fn main() {}
