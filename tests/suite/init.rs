//! Parameter initialisation: each scheme's distribution (moments and bounds), biases zeroed,
//! and seeds that fix every value.

use miniflow::init::{self, Init};
use miniflow::ndarray::{ArrayD, IxDyn};
use miniflow::{Network, Rng};

miniflow::network! {
    /// Big enough layers for the moments to be measurable: W1 has 2000 elements.
    struct Wide {
        input X: [batch, 40];
        input y: [batch];
        param W1: [40, 50];
        param b1: [50];
        param W2: [50, 1];
        param b2: [1];
        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        loss cost = mse(y, l2);
    }
}

fn values(net: &Wide, name: &str) -> Vec<f64> {
    net.value(name).unwrap().iter().copied().collect()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// A network whose biases are non-zero, to see that initialisation zeroes them.
fn dirty() -> Wide {
    let mut net = Wide::new();
    net.set_param("b1", ArrayD::from_elem(IxDyn(&[50]), 3.0).view())
        .unwrap();
    net.set_param("b2", ArrayD::from_elem(IxDyn(&[1]), 3.0).view())
        .unwrap();
    net
}

fn biases_are_zero(net: &Wide) {
    assert!(values(net, "b1").iter().all(|&b| b == 0.0));
    assert_eq!(values(net, "b2"), [0.0]);
}

/// Checks W1's mean and std against the scheme's (with a 10% tolerance on the std: 2000
/// samples estimate it to about 2%).
fn check_moments(net: &Wide, std: f64) {
    let (m, s) = mean_std(&values(net, "W1"));
    assert!(m.abs() < 0.1 * std, "mean {m} for std {std}");
    assert!((s / std - 1.0).abs() < 0.1, "std {s}, expected {std}");
}

#[test]
fn randn_is_the_course_init() {
    let mut net = dirty();
    init::randn(&mut net, 1);
    biases_are_zero(&net);
    check_moments(&net, 1.0);
    // Heavier tails than a uniform: some |w| above 2.5 among 2000 standard normals.
    assert!(values(&net, "W1").iter().any(|w| w.abs() > 2.5));
}

#[test]
fn xavier_and_he_have_their_scales_and_bounds() {
    let (fan_in, fan_out) = (40.0f64, 50.0f64);

    let mut net = dirty();
    init::xavier_uniform(&mut net, 2);
    biases_are_zero(&net);
    let a = (6.0 / (fan_in + fan_out)).sqrt();
    assert!(values(&net, "W1").iter().all(|w| w.abs() <= a));
    assert!(values(&net, "W1").iter().any(|w| w.abs() > 0.9 * a));
    check_moments(&net, a / 3.0f64.sqrt());
    // W2 is [50, 1]: its own fans.
    let a2 = (6.0 / 51.0f64).sqrt();
    assert!(values(&net, "W2").iter().all(|w| w.abs() <= a2));

    let mut net = dirty();
    init::xavier_normal(&mut net, 3);
    biases_are_zero(&net);
    check_moments(&net, (2.0 / (fan_in + fan_out)).sqrt());

    let mut net = dirty();
    init::he_normal(&mut net, 4);
    biases_are_zero(&net);
    check_moments(&net, (2.0 / fan_in).sqrt());

    let mut net = dirty();
    init::he_uniform(&mut net, 5);
    let a = (6.0 / fan_in).sqrt();
    assert!(values(&net, "W1").iter().all(|w| w.abs() <= a));
    check_moments(&net, a / 3.0f64.sqrt());

    let mut net = dirty();
    Init::Normal { std: 0.01 }.apply_seeded(&mut net, 6);
    check_moments(&net, 0.01);
    Init::Uniform {
        low: 2.0,
        high: 3.0,
    }
    .apply_seeded(&mut net, 6);
    assert!(values(&net, "W2").iter().all(|w| (2.0..3.0).contains(w)));
    init::zeros(&mut net);
    assert!(values(&net, "W1").iter().all(|&w| w == 0.0));
}

#[test]
fn a_seed_fixes_every_value() {
    let (mut a, mut b, mut c) = (Wide::new(), Wide::new(), Wide::new());
    init::xavier_normal(&mut a, 42);
    init::xavier_normal(&mut b, 42);
    init::xavier_normal(&mut c, 43);
    for p in ["W1", "W2"] {
        let bits = |n: &Wide| -> Vec<u64> { values(n, p).iter().map(|v| v.to_bits()).collect() };
        assert_eq!(bits(&a), bits(&b), "{p}");
        assert_ne!(bits(&a), bits(&c), "{p}");
    }
    // Passing an Rng continues its stream: two calls give different weights.
    let mut rng = Rng::new(7);
    let (mut d, mut e) = (Wide::new(), Wide::new());
    Init::Randn.apply(&mut d, &mut rng);
    Init::Randn.apply(&mut e, &mut rng);
    assert_ne!(values(&d, "W1"), values(&e, "W1"));
    // ...and equals the seeded form when fresh.
    let mut f = Wide::new();
    init::randn(&mut f, 7);
    assert_eq!(values(&d, "W1"), values(&f, "W1"));
}

#[test]
fn fans_follow_the_linear_layout() {
    assert_eq!(init::fans(&[13, 10]), Some((13, 10)));
    assert_eq!(init::fans(&[2, 3, 4]), Some((6, 4)));
    assert_eq!(init::fans(&[10]), None);
    assert_eq!(init::fans(&[]), None);
}

#[test]
fn f32_networks_are_initialised_too() {
    miniflow::network! {
        #[elem(f32)]
        struct Small {
            input X: [batch, 3];
            input y: [batch];
            param W: [3, 1];
            param b: [1];
            o = linear(X, W, b);
            loss c = mse(y, o);
        }
    }
    let mut net = Small::new();
    init::he_normal(&mut net, 1);
    let w: Vec<f32> = net.value("W").unwrap().iter().copied().collect();
    assert!(w.iter().all(|v| v.is_finite()) && w.iter().any(|&v| v != 0.0));
    assert_eq!(net.value("b").unwrap()[[0]], 0.0f32);
}

/// Issue 10: `init` takes any `rand_core` generator, ours through the trait included.
#[test]
fn any_rand_core_generator_initialises() {
    use miniflow::rng::RngCore;
    /// A user's generator: a 64-bit LCG (poor, but deterministic and all that is needed).
    struct Lcg(u64);
    impl RngCore for Lcg {
        fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for b in dst {
                *b = self.next_u32() as u8;
            }
        }
    }
    let (mut a, mut b) = (Wide::new(), Wide::new());
    Init::HeNormal.apply(&mut a, &mut Lcg(3));
    Init::HeNormal.apply(&mut b, &mut Lcg(3));
    assert_eq!(values(&a, "W1"), values(&b, "W1"));
    check_moments(&a, (2.0f64 / 40.0).sqrt());
    biases_are_zero(&a);
    // A trait object of our Rng draws what the seeded function draws.
    let mut c = Wide::new();
    let mut rng = Rng::new(5);
    let dyn_rng: &mut dyn RngCore = &mut rng;
    Init::XavierNormal.apply(&mut c, dyn_rng);
    let mut d = Wide::new();
    init::xavier_normal(&mut d, 5);
    assert_eq!(values(&c, "W1"), values(&d, "W1"));
}

miniflow::network! {
    /// A relu layer then a tanh layer, and a param used as both factors of a matmul.
    struct Mixed {
        input X: [batch, 8];
        input y: [batch, 4];
        param W1: [8, 16];
        param b1: [16];
        param W2: [16, 4];
        param b2: [4];
        param S: [4, 4];
        l1 = linear(X, W1, b1);
        r1 = relu(l1);
        l2 = linear(r1, W2, b2);
        h = tanh(l2);
        m = matmul(S, S);
        e = mean(m);
        d = mse(y, h);
        loss cost = add(d, e);
    }
}

/// Issue 9: a fresh network can learn. `new()` draws every weight by the documented rule,
/// from a fixed seed; `seeded` from another; `zeroed` leaves everything zero.
#[test]
fn new_draws_the_documented_default_and_is_deterministic() {
    let net = Mixed::new();
    // Reproduce the draws by hand: params in source order, row-major, one uniform each;
    // biases draw nothing.
    let mut rng = Rng::new(init::DEFAULT_SEED);
    let mut expect = |rows: usize, cols: usize, a: f64| -> Vec<f64> {
        (0..rows * cols)
            .map(|_| -a + 2.0 * a * rng.uniform())
            .collect()
    };
    let w1 = expect(8, 16, (6.0f64 / 8.0).sqrt()); // feeds only relu: He
    let w2 = expect(16, 4, 1.0 / 16f64.sqrt()); // feeds tanh: 1/sqrt(fan_in)
    let s = expect(4, 4, 1.0 / 2.0); // a matmul's factor: 1/sqrt(fan_in)
    let flat = |name: &str| -> Vec<f64> { net.value(name).unwrap().iter().copied().collect() };
    assert_eq!(flat("W1"), w1);
    assert_eq!(flat("W2"), w2);
    assert_eq!(flat("S"), s);
    assert!(flat("b1").iter().chain(&flat("b2")).all(|&v| v == 0.0));

    let again = Mixed::new();
    assert_eq!(
        flat("W1"),
        again
            .value("W1")
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>()
    );
    let other = Mixed::seeded(7);
    assert_ne!(
        flat("W1"),
        other
            .value("W1")
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        Mixed::seeded(init::DEFAULT_SEED).value("W2").unwrap(),
        net.value("W2").unwrap()
    );
    let zero = Mixed::zeroed();
    assert!(zero.value("W1").unwrap().iter().all(|&v| v == 0.0));
    // The same rule through `init::default` on any network.
    let mut z = Mixed::zeroed();
    init::default(&mut z, init::DEFAULT_SEED);
    assert_eq!(z.value("S").unwrap(), net.value("S").unwrap());
}

/// Issue 9: before, `new()` left every param zero and a classifier stayed at loss ln 3.
#[test]
fn a_fresh_network_learns() {
    use miniflow::ndarray::{Array1, Array2};
    let mut net = Mixed::new();
    let x = Array2::from_shape_fn((16, 8), |(i, j)| ((i * 8 + j) as f64 * 0.37).sin());
    let y = Array2::from_shape_fn((16, 4), |(i, j)| if (i + j) % 4 == 0 { 0.5 } else { -0.5 });
    net.feed("X", &x).unwrap();
    net.feed("y", &y).unwrap();
    let first = net.forward().unwrap();
    let mut last = first;
    for _ in 0..200 {
        last = net.sgd_step(0.2).unwrap();
    }
    assert!(last < 0.5 * first, "{first} -> {last}");
    let _ = Array1::<f64>::zeros(1);
}
