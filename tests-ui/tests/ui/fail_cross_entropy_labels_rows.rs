// As many labels as rows of logits: `n` is not provably `batch`.
miniflow::network! {
    pub struct Net {
        input X: [batch, 4];
        input labels: [n];
        param W: [4, 3];
        logits = matmul(X, W);
        loss cost = softmax_cross_entropy(logits, labels);
    }
}

fn main() {}
