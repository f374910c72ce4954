fn main() {
    let _net = miniflow::network! { a = sigmoid(b); b = tanh(a); cost = mse(y, b) };
}
