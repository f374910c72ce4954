// A Rust keyword as a node name: the error is on the name, with the fix.
miniflow::network! {
    pub struct Net {
        input type: [batch, 2];
        input y: [batch];
        param w: [2];
        loss cost = mse(y, w);
    }
}

fn main() {}
