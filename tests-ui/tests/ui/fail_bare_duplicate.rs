fn main() {
    let _net = miniflow::network! { f = linear(X, W, b); f = sigmoid(f); cost = mse(y, f) };
}
