fn main() {
    let _net = miniflow::network! { a = linear(X, W, b); c = matmul(X, b); cost = mse(a, c) };
}
