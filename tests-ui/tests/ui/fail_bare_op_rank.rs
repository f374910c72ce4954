fn main() {
    let _net = miniflow::network! { s = sum(X); f = linear(s, W, b); cost = mse(y, f) };
}
