//! Writes random valid `network!` definitions, and a test for each, into `OUT_DIR`:
//!
//! - `randnets_0.rs`, `randnets_1.rs`: `RANDNETS` networks (every 6th in `f32`, every other
//!   one grown with the plan rules' motifs) grown by `src/netgen.rs` from fixed seeds over every
//!   op of the table, each with a `#[test]` comparing it with the runtime graph rebuilt from its
//!   spec and, bit for bit, with the plan executor (`tests/randnets_0.rs` and `_1.rs` include
//!   one half each, so the two halves compile in parallel);
//! - `sources.rs`: the same networks' DSL source, for the determinism tests;
//! - `numerics.rs`: for each op that must stay finite on huge inputs (sigmoid, tanh, softmax,
//!   the cross-entropies, ...) and exists in the op table, a small network fed ±1000
//!   (`tests/numerics.rs` includes it).
//!
//! The set is deterministic: the same op table gives the same files. `MINIFLOW_RANDNETS`
//! (a count) and `MINIFLOW_RANDNETS_SEED` change it for a local exploration.

#[path = "src/netgen.rs"]
mod netgen;

use miniflow_ops::Op;
use netgen::{generate, Net, Options, SplitMix};
use std::fmt::Write as _;
use std::path::Path;

const DEFAULT_COUNT: usize = 200;
const DEFAULT_SEED: u64 = 0x5eed_2024;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/netgen.rs");
    println!("cargo:rerun-if-env-changed=MINIFLOW_RANDNETS");
    println!("cargo:rerun-if-env-changed=MINIFLOW_RANDNETS_SEED");
    let count = std::env::var("MINIFLOW_RANDNETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_COUNT);
    let seed = std::env::var("MINIFLOW_RANDNETS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);

    let (halves, sources) = random_networks(count, seed);
    for (k, nets) in halves.iter().enumerate() {
        write(&out.join(format!("randnets_{k}.rs")), nets);
    }
    write(&out.join("sources.rs"), &sources);
    write(&out.join("numerics.rs"), &numerics());
}

fn write(path: &Path, text: &str) {
    // Leave an unchanged file alone, so its includers are not rebuilt.
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).expect("write to OUT_DIR");
    }
}

fn random_networks(count: usize, seed: u64) -> ([String; 2], String) {
    let mut halves = [String::new(), String::new()];
    let mut sources = String::from("/// (type name, `network!` body) of every random network.\n");
    sources.push_str("pub const SOURCES: &[(&str, &str)] = &[\n");
    let mut covered = vec![0usize; Op::ALL.len()];
    for k in 0..count {
        let net_seed = seed.wrapping_add(k as u64 * 0x9E37_79B9);
        let net = grow(net_seed, k);
        for (i, (_, n)) in net.op_counts().into_iter().enumerate() {
            covered[i] += n;
        }
        let name = format!("Net{k:02}");
        let elem = (k % 6 == 5).then_some("f32");
        let doc = format!(
            "Random network {k} (seed {net_seed:#x}): {} nodes{}.",
            net.nodes.len(),
            if net.has_fan_out() { ", fan-out" } else { "" }
        );
        let body = net.to_dsl(&name, elem, &doc);
        let nets = &mut halves[k % 2];
        let _ = writeln!(nets, "miniflow::network! {{\n{body}\n}}\n");
        let elem_ty = elem.unwrap_or("f64");
        let _ = writeln!(
            nets,
            "#[test]\nfn net{k:02}() {{\n    miniflow_randnets::check_network::<{elem_ty}>(&|| Box::new({name}::new()), {net_seed:#x});\n}}\n"
        );
        // The borrowed-batch step against feed + sgd_step, for a network with inputs.
        let fields: Vec<String> = net
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, netgen::Kind::Leaf { param: false, .. }))
            .map(|n| format!("{0}: f({0:?}).into_dimensionality().unwrap()", n.name))
            .collect();
        if !fields.is_empty() {
            let _ = writeln!(
                nets,
                "#[test]\nfn net{k:02}_borrowed() {{\n    miniflow_randnets::check_borrowed::<{elem_ty}, {name}>({net_seed:#x}, |net, f, lr| {{\n        net.sgd_step_on({name}Batch {{ {} }}, lr)\n    }});\n}}\n",
                fields.join(", ")
            );
        }
        let _ = writeln!(sources, "    ({name:?}, {body:?}),");
    }
    sources.push_str("];\n");
    // Every op of the table is used by some network.
    let unused: Vec<String> = Op::ALL
        .iter()
        .zip(&covered)
        .filter(|(_, n)| **n == 0)
        .map(|(op, _)| op.to_string())
        .collect();
    let _ = writeln!(
        halves[0],
        "/// Ops of the table no random network uses (the test below wants none).\npub const UNUSED_OPS: &[&str] = &{unused:?};"
    );
    (halves, sources)
}

/// A network from `seed`, with DSL extras; retried until it is not trivially small.
fn grow(seed: u64, k: usize) -> Net {
    let mut rng = SplitMix(seed);
    let mut net = generate(&mut rng, options(k));
    for _ in 0..8 {
        if net.nodes.len() >= 6 {
            break;
        }
        net = generate(&mut rng, options(k));
    }
    net
}

fn options(k: usize) -> Options {
    Options {
        max_ops: 4 + k % 5,
        max_dim: 4,
        named_dims: true,
        dsl: true,
        motifs: k % 2 == 1,
    }
}

/// One network per op that must stay finite on huge inputs, in `f64` and `f32`.
fn numerics() -> String {
    let has = |name: &str| Op::from_name(name).is_some();
    let mut s = String::new();
    let mut tests = Vec::new();
    let unary: [(&str, &str); 5] = [
        ("sigmoid", ""),
        ("tanh", ""),
        ("softmax", ""),
        ("relu", ""),
        ("leaky_relu", ", 0.01"),
    ];
    for (op, extra) in unary {
        if !has(op) {
            continue;
        }
        // Straight on the input, and behind a linear whose weights make the logits huge.
        tests.push((
            format!("{op}_of_input"),
            format!(
                "#[grad] input x: [2, 3]; input y: [2, 3]; a = {op}(x{extra}); loss l = mse(y, a);"
            ),
        ));
        tests.push((
            format!("{op}_after_linear"),
            format!(
                "#[grad] input x: [2, 3]; input y: [2, 3]; param w: [3, 3]; param b: [3]; \
                 h = linear(x, w, b); a = {op}(h{extra}); loss l = mse(y, a);"
            ),
        ));
    }
    if has("bce") && has("sigmoid") {
        tests.push((
            "bce_of_saturated_sigmoid".into(),
            "#[grad] input x: [2, 3]; #[grad] input y: [2, 3]; a = sigmoid(x); loss l = bce(y, a);"
                .into(),
        ));
    }
    if has("bce_logits") {
        tests.push((
            "bce_logits_of_huge_logits".into(),
            "#[grad] input x: [2, 3]; #[grad] input y: [2, 3]; loss l = bce_logits(y, x);".into(),
        ));
    }
    if has("softmax_cross_entropy") {
        tests.push((
            "softmax_cross_entropy_of_huge_logits".into(),
            "#[grad] input x: [2, 3]; /// labels < 3\ninput y: [2]; loss l = softmax_cross_entropy(x, y);"
                .into(),
        ));
    }
    for (name, body) in &tests {
        for elem in ["f64", "f32"] {
            let ty = format!("Num{}", camel(&format!("{name}_{elem}")));
            let _ = writeln!(
                s,
                "miniflow::network! {{\n    #[elem({elem})]\n    pub struct {ty} {{ {body} }}\n}}\n\
                 #[test]\nfn {name}_{elem}() {{\n    miniflow_randnets::check_huge_inputs::<{elem}>(&|| Box::new({ty}::new()));\n}}\n"
            );
        }
    }
    let names: Vec<&str> = tests.iter().map(|(n, _)| n.as_str()).collect();
    let _ = writeln!(
        s,
        "/// The numerics networks generated for this op table.\npub const NUMERICS: &[&str] = &{names:?};"
    );
    s
}

/// `sigmoid_of_input_f64` -> `SigmoidOfInputF64`.
fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
