// `a` needs `c`, which needs `b`, which needs `a`: the message spells out the cycle.
miniflow::network! {
    pub struct Net {
        input x: [batch];
        input y: [batch];
        a = add(x, c);
        b = sigmoid(a);
        c = sigmoid(b);
        loss cost = mse(y, c);
    }
}

fn main() {}
