// A literal that is finite as an f64 but infinite as the network's f32.
miniflow::network! {
    #[elem(f32)]
    pub struct Net {
        input x: [batch, 2];
        input y: [batch, 2];
        h = leaky_relu(x, 1e39);
        loss cost = mse(y, h);
    }
}

fn main() {}
