// Labels computed from a param: the param would not be trained through them.
miniflow::network! {
    pub struct Net {
        input X: [4, 4];
        input y: [4];
        param W: [4, 3];
        param shift: [4];
        labels = add(y, shift);
        logits = matmul(X, W);
        loss cost = softmax_cross_entropy(logits, labels);
    }
}

fn main() {}
