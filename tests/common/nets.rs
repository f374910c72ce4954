//! Networks several test files use.

miniflow::network! {
    /// The course's nn.py network, 13 -> 10 -> 1: the sigmoid folds into the second linear in
    /// a training step and every param updates in place.
    pub struct TwoLayer {
        input X: [batch, 13];
        input y: [batch];
        param W1: [13, 10];
        param b1: [10];
        param W2: [10, 1];
        param b2: [1];
        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        loss cost = mse(y, l2);
    }
}
