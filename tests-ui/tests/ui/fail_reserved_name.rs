// A node named like the generated constructor: its typed handle would clash with it.
miniflow::network! {
    pub struct Net {
        input x: [2];
        param w: [2];
        new = sub(x, w);
        loss cost = sum(new);
    }
}

fn main() {}
