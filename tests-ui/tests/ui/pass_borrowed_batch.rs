// A borrowed batch from another module, with a raw-identifier input and a scalar input: compiles
// without warnings and runs.
#![deny(warnings)]

mod model {
    miniflow::network! {
        pub struct Net {
            input r#type: [n, 2];
            input y: [n];
            input w: [];
            param W: [2, 1];
            param b: [1];
            f = linear(r#type, W, b);
            e = mse(y, f);
            loss cost = mul(w, e);
        }
    }
}

use miniflow::ndarray::{arr0, array};
use model::{Net, NetBatch};

fn main() -> miniflow::Result<()> {
    let mut net = Net::new();
    let (x, y, w) = (array![[1.0, 2.0], [3.0, 4.0]], array![1.0, 0.0], arr0(0.5));
    let batch = NetBatch { r#type: x.view(), y: y.view(), w: w.view() };
    let first = net.loss_on(batch)?;
    for _ in 0..50 {
        net.sgd_step_on(batch, 0.05)?;
    }
    assert!(net.loss_on(batch)? < first);
    Ok(())
}
