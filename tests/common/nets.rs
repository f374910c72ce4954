//! Networks several test files use.

miniflow::network! {
    /// The seed's test network, with the gradients of both inputs asked for.
    pub struct Course {
        #[grad] input X: [batch, 2];
        #[grad] input y: [batch];
        param W: [2, 1];
        param b: [1];

        f = linear(X, W, b);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

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
