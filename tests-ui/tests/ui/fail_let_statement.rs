// Rust's `let` inside the DSL.
miniflow::network! {
    pub struct Net {
        input x: [batch, 4];
        input y: [batch, 4];
        let h = tanh(x);
        loss cost = mse(y, h);
    }
}

fn main() {}
