// `leaky_relu` without its slope: the arity counts the literal.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch, 1];
        param W: [2, 1];
        h = matmul(X, W);
        o = leaky_relu(h);
        loss cost = mse(y, o);
    }
}

fn main() {}
