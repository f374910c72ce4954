// Every new op in one network, in f32, with a literal slope, labels as data and outputs.
use miniflow::ndarray::{array, Array2};
use miniflow::Network;

miniflow::network! {
    #[elem(f32)]
    pub struct Net {
        input X: [batch, 3];
        input labels: [batch];
        input t: [batch, 2];
        param W: [3, 2];
        param V: [2, 2];
        z = matmul(X, W);
        r = relu(z);
        k = leaky_relu(z, -0.5e-1);
        u = tanh(k);
        m = mul(r, u);
        d = sub(m, t);
        h = matmul(d, V);
        output p = softmax(h);
        ce = softmax_cross_entropy(h, labels);
        q = sigmoid(h);
        b1 = bce(t, q);
        b2 = bce_logits(t, h);
        s = sum(d);
        a = mean(u);
        loss cost = add(ce, b1, b2, s, a);
    }
}

fn main() {
    let mut net = Net::new();
    net.set_param("W", Array2::from_elem((3, 2), 0.1f32).view().into_dyn())
        .unwrap();
    net.set_param("V", Array2::from_elem((2, 2), 0.2f32).view().into_dyn())
        .unwrap();
    net.feed("X", &array![[1.0f32, 2.0, 3.0], [-1.0, 0.5, 0.0]])
        .unwrap();
    net.feed("labels", &array![1.0f32, 0.0]).unwrap();
    net.feed("t", &array![[0.0f32, 1.0], [1.0, 0.0]]).unwrap();
    let loss = net.sgd_step(0.1).unwrap();
    assert!(loss.is_finite());
    assert_eq!(net.spec().node("k").unwrap().attrs.as_ref(), &[-0.05]);
}
