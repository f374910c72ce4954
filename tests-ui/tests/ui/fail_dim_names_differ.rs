// Two inputs naming one dimension differently.
miniflow::network! {
    pub struct Net {
        input x: [n, 4];
        input y: [batch];
        param w: [4, 1];
        param b: [1];
        h = linear(x, w, b);
        loss cost = mse(y, h);
    }
}

fn main() {}
