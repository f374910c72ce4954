// A number where the op takes a node: `matmul` multiplies two nodes.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch, 1];
        param W: [2, 1];
        h = matmul(X, 0.5);
        o = leaky_relu(h, 0.01);
        loss cost = mse(y, o);
    }
}

fn main() {}
