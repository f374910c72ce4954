fn main() {
    let _net = miniflow::network! { f = lineer(X, W, b); cost = mse(y, f) };
}
