fn main() {
    let _net = miniflow::network! { a = sigmoid(X); b = tanh(X) };
}
