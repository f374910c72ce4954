// A non-scalar loss whose labels are left unused: the shape error is reported, not only the
// unused input.
miniflow::network! {
    pub struct Net {
        input x: [batch, 4];
        input y: [batch];
        param w: [4, 3];
        param b: [3];
        logits = linear(x, w, b);
        loss cost = softmax(logits);
    }
}

fn main() {}
