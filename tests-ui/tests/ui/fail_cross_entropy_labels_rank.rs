// One-hot labels: `softmax_cross_entropy` takes class indices, one per row ([m]), not [m, c].
miniflow::network! {
    pub struct Net {
        input X: [batch, 4];
        input labels: [batch, 3];
        param W: [4, 3];
        logits = matmul(X, W);
        loss cost = softmax_cross_entropy(logits, labels);
    }
}

fn main() {}
