// Labels get no gradient, so asking for theirs is a mistake.
miniflow::network! {
    pub struct Net {
        input X: [batch, 4];
        #[grad] input labels: [batch];
        param W: [4, 3];
        logits = matmul(X, W);
        loss cost = softmax_cross_entropy(logits, labels);
    }
}

fn main() {}
