fn main() {
    let _net = miniflow::network! { f = linear(X, W); cost = mse(y, f) };
}
