//! The seed's MiniFlow tests, reproduced: Add, Linear, Sigmoid, MSE and the backprop test,
//! written with `network!`, and the backprop test again with the runtime graph.
//!
//! Prints each number beside the value the course prints, and exits non-zero if any differs
//! by more than 1e-8.
//!
//! ```text
//! cargo run --release --example course
//! ```

use miniflow::ndarray::{array, ArrayD, ArrayViewD};
use miniflow::{Graph, Network};
use std::process::ExitCode;

miniflow::network! {
    /// The course's `Add(x, y)`.
    struct Add2 {
        input x: [];
        input y: [];
        loss sum = add(x, y);
    }
}

miniflow::network! {
    /// The course's `Add(x, y, z)`.
    struct Add3 {
        input x: [];
        input y: [];
        input z: [];
        loss sum = add(x, y, z);
    }
}

miniflow::network! {
    /// Linear then Sigmoid, both evaluated as outputs (the loss is there to make it a network).
    struct LinearSigmoid {
        input X: [batch, 2];
        input y: [batch, 2];
        param W: [2, 2];
        param b: [2];

        output f = linear(X, W, b);
        output s = sigmoid(f);
        loss cost = mse(y, s);
    }
}

miniflow::network! {
    /// The course's `MSE(y, a)` with a (3,) target and a (3, 1) prediction.
    struct Mse {
        input y: [m];
        input a: [m, 1];
        loss cost = mse(y, a);
    }
}

miniflow::network! {
    /// The seed's backprop test: `cost = MSE(y, Sigmoid(Linear(X, W, b)))`, with the
    /// gradients of the inputs X and y requested too.
    struct Course {
        #[grad] input X: [batch, 2];
        #[grad] input y: [batch];
        param W: [2, 1];
        param b: [1];

        f = linear(X, W, b);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

const TOLERANCE: f64 = 1e-8;

/// Prints one comparison and records whether it passed.
struct Report {
    failures: usize,
}

impl Report {
    fn check(&mut self, label: &str, got: ArrayViewD<'_, f64>, expected: &[f64]) {
        let values: Vec<f64> = got.iter().copied().collect();
        let ok = values.len() == expected.len()
            && values
                .iter()
                .zip(expected)
                .all(|(g, e)| (g - e).abs() <= TOLERANCE);
        if !ok {
            self.failures += 1;
        }
        let fmt = |v: &[f64]| {
            let parts: Vec<String> = v.iter().map(|x| format!("{x:.8e}")).collect();
            format!("[{}]", parts.join(", "))
        };
        println!("  {label:<7} got      {}", fmt(&values));
        println!(
            "  {:<7} expected {}  {}",
            "",
            fmt(expected),
            if ok { "ok" } else { "DIFFERS" }
        );
    }

    fn scalar(&mut self, label: &str, got: f64, expected: f64) {
        self.check(label, ArrayD::from_elem(vec![], got).view(), &[expected]);
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(0) => {
            println!("\nall course numbers reproduced to {TOLERANCE:e}");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            eprintln!("\n{n} number(s) differ from the course by more than {TOLERANCE:e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn scalar(x: f64) -> ArrayD<f64> {
    ArrayD::from_elem(vec![], x)
}

/// Runs every comparison; returns how many differ.
pub fn run() -> miniflow::Result<usize> {
    let mut r = Report { failures: 0 };

    println!("Add");
    let mut add = Add2::new();
    add.feed("x", &scalar(10.0))?;
    add.feed("y", &scalar(5.0))?;
    let sum = add.forward()?;
    r.scalar("x + y", sum, 15.0);
    let mut add = Add3::new();
    add.feed("x", &scalar(4.0))?;
    add.feed("y", &scalar(5.0))?;
    add.feed("z", &scalar(10.0))?;
    let sum = add.forward()?;
    r.scalar("x+y+z", sum, 19.0);

    println!("\nLinear and Sigmoid");
    let mut ls = LinearSigmoid::new();
    ls.feed("X", &array![[-1., -2.], [-1., -2.]])?;
    ls.set_param("W", array![[2., -3.], [2., -3.]].view().into_dyn())?;
    ls.set_param("b", array![-3., -5.].view().into_dyn())?;
    let f = ls.evaluate("f")?.to_owned();
    r.check("linear", f.view(), &[-9., 4., -9., 4.]);
    let s = ls.evaluate("s")?.to_owned();
    let sig = [1.23394576e-04, 9.82013790e-01];
    r.check("sigmoid", s.view(), &[sig[0], sig[1], sig[0], sig[1]]);

    println!("\nMSE");
    let mut mse = Mse::new();
    mse.feed("y", &array![1., 2., 3.])?;
    mse.feed("a", &array![[4.5], [5.], [10.]])?;
    let cost = mse.forward()?;
    r.scalar("mse", cost, 23.416666666666668);

    println!("\nBackprop (the seed's test), with network!");
    let mut net = Course::new();
    net.feed("X", &array![[-1., -2.], [-1., -2.]])?;
    net.feed("y", &array![1., 2.])?;
    net.set_param("W", array![[2.], [3.]].view().into_dyn())?;
    net.set_param("b", array![-3.].view().into_dyn())?;
    let cost = net.forward_backward()?;
    let expected = Expected::seed();
    r.check("dX", net.grad("X")?, &expected.dx);
    r.check("dy", net.grad("y")?, &expected.dy);
    r.check("dW", net.grad("W")?, &expected.dw);
    r.check("db", net.grad("b")?, &expected.db);
    r.scalar("cost", cost, expected.cost);

    println!("\nBackprop (the seed's test), with the runtime graph");
    let mut g = Graph::<f64>::new();
    let (x, y) = (g.input("X")?, g.input("y")?);
    let (w, b) = (g.input("W")?, g.input("b")?);
    let f = g.linear(x, w, b)?;
    let a = g.sigmoid(f)?;
    let cost = g.mse(y, a)?;
    let order = g.topological_sort([
        (x, array![[-1., -2.], [-1., -2.]].into_dyn()),
        (y, array![1., 2.].into_dyn()),
        (w, array![[2.], [3.]].into_dyn()),
        (b, array![-3.].into_dyn()),
    ])?;
    let value = g.forward_and_backward(&order, cost)?;
    for (label, id, want) in [
        ("dX", x, &expected.dx[..]),
        ("dy", y, &expected.dy[..]),
        ("dW", w, &expected.dw[..]),
        ("db", b, &expected.db[..]),
    ] {
        match g.gradient(id) {
            Some(grad) => r.check(label, grad, want),
            None => r.check(label, ArrayD::zeros(vec![0]).view(), want),
        }
    }
    r.scalar("cost", value, expected.cost);

    Ok(r.failures)
}

/// The gradients the seed prints for its test (to the digits it prints).
struct Expected {
    dx: [f64; 4],
    dy: [f64; 2],
    dw: [f64; 2],
    db: [f64; 1],
    cost: f64,
}

impl Expected {
    fn seed() -> Self {
        Expected {
            dx: [
                -3.34017280e-05,
                -5.01025919e-05,
                -6.68040138e-05,
                -1.00206021e-04,
            ],
            dy: [0.9999833, 1.9999833],
            dw: [5.01028709e-05, 1.00205742e-04],
            db: [-5.01028709e-05],
            cost: 2.4999498960133932,
        }
    }
}
