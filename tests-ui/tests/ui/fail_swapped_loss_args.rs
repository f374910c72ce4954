// The arguments of softmax_cross_entropy swapped: labels first, logits second.
miniflow::network! {
    pub struct Net {
        input x: [batch, 4];
        input y: [batch];
        param w: [4, 3];
        param b: [3];
        logits = linear(x, w, b);
        loss cost = softmax_cross_entropy(y, logits);
    }
}

fn main() {}
