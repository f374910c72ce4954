fn main() {
    let _net = miniflow::network! {
        param W: [4294967296, 4294967296];
        f = linear(X, W, b);
        cost = mse(y, f)
    };
}
