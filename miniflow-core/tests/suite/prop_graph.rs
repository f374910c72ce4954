//! Property tests of the runtime [`Graph`]: "never wrong, never a panic".
//!
//! - `gradients_match_finite_differences`: random valid DAGs over every op of the table
//!   (random shapes, values, fan-out, the same node twice in one op), whose every gradient of a
//!   leaf must match central finite differences of the graph's own forward.
//! - `random_graphs_never_panic`: random, mostly invalid graphs (shapes that do not fit,
//!   zero-sized dims, NaN and infinite values, cycles, missing feeds, wrong arities): every
//!   call returns `Ok` or a typed error, and a forward that succeeds gives every node the shape
//!   the op table infers.
//! - `training_is_bit_for_bit_deterministic`: two graphs trained from the same values give
//!   identical bits.
//!
//! The networks come from `tests-gen/src/netgen.rs` (shared with the build-time generator of
//! `network!` sources), driven by proptest's bytes so a failure shrinks to a small network; a
//! failing case prints as DSL statements with shapes, dims and values.
//!
//! Runs are reproducible: the RNG seed is fixed unless `PROPTEST_RNG_SEED` is set, and
//! `PROPTEST_CASES` overrides every case count (e.g. `PROPTEST_CASES=100000` for a long run).

use crate::netgen;

use miniflow_core::{Error, Graph, NodeId, Op};
use ndarray::{ArrayD, IxDyn};
use netgen::{
    concrete, generate, shape_text, Bytes, Choices, Domain, Kind, Kink, Net, Options, SplitMix,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::fmt;

/// `cases` cases with a fixed seed, unless the environment says otherwise.
fn config(cases: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x6d69_6e69_666c_6f77);
    }
    c.max_shrink_iters = 20_000;
    c
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

fn fail(what: &str) -> impl Fn(Error) -> TestCaseError + '_ {
    move |e| TestCaseError::fail(format!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------
// A case: a network, sizes for its named dims, and a value for each leaf.
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Case {
    net: Net,
    /// Sizes of the named dims `batch` and `n`.
    sizes: [usize; 2],
    /// A value per node (op nodes: empty, unused).
    values: Vec<ArrayD<f64>>,
}

/// Values are multiples of 1/40 in [-3.2, 3.2], byte 0 giving 0.
fn value_of(b: u8) -> f64 {
    let k = if b.is_multiple_of(2) {
        f64::from(b / 2)
    } else {
        -f64::from(b / 2 + 1)
    };
    k / 40.0
}

impl Case {
    fn new(structure: &[u8], values: &[u8], max_ops: usize) -> Case {
        let mut c = Bytes::new(structure);
        let net = generate(
            &mut c,
            Options {
                max_ops,
                max_dim: 4,
                named_dims: true,
                dsl: false,
                motifs: false,
            },
        );
        let sizes = [1 + c.below(4), 1 + c.below(4)];
        let mut k = 0;
        let values = net
            .nodes
            .iter()
            .map(|n| {
                if !n.is_leaf() {
                    return ArrayD::zeros(IxDyn(&[0]));
                }
                let shape = concrete(&n.shape, &sizes);
                ArrayD::from_shape_simple_fn(IxDyn(&shape), || {
                    k += 1;
                    let b = values[(k - 1) % values.len().max(1)];
                    match n.domain {
                        Domain::Any => value_of(b),
                        // In [0.05, 0.95].
                        Domain::Prob => 0.05 + 0.9 * f64::from(b) / 255.0,
                        Domain::Labels(c) => (usize::from(b) % concrete(&[c], &sizes)[0]) as f64,
                    }
                })
            })
            .collect();
        Case { net, sizes, values }
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nnetwork (batch = {}, n = {}; loss `{}`):",
            self.sizes[0], self.sizes[1], self.net.nodes[self.net.loss].name
        )?;
        write!(f, "{:?}", self.net)?;
        writeln!(f, "values (row-major):")?;
        for i in self.net.leaves() {
            let v = &self.values[i];
            let list: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
            writeln!(
                f,
                "    {} {} = [{}]",
                self.net.nodes[i].name,
                shape_text(v.shape()),
                list.join(", ")
            )?;
        }
        Ok(())
    }
}

fn cases(max_ops: usize) -> impl Strategy<Value = Case> {
    (vec(any::<u8>(), 0..64), vec(any::<u8>(), 1..48))
        .prop_map(move |(s, v)| Case::new(&s, &v, max_ops))
}

/// The network as a runtime graph, built with `Graph::op`; the id of each node.
fn build(net: &Net) -> Result<(Graph<f64>, Vec<NodeId>), TestCaseError> {
    let mut g = Graph::new();
    let mut ids: Vec<NodeId> = Vec::with_capacity(net.nodes.len());
    for n in &net.nodes {
        let id = match &n.kind {
            Kind::Leaf { .. } => g.input(n.name.clone()).unwrap(),
            Kind::Op { op, args, literals } => {
                let args: Vec<NodeId> = args.iter().map(|&a| ids[a]).collect();
                g.op_with(n.name.clone(), *op, &args, literals)
                    .map_err(fail(&format!("adding `{}`", n.name)))?
            }
        };
        ids.push(id);
    }
    Ok((g, ids))
}

/// A graph fed with the case's values and run forward and backward.
struct Run {
    g: Graph<f64>,
    ids: Vec<NodeId>,
    order: Vec<NodeId>,
    cost: NodeId,
    loss: f64,
}

fn run(case: &Case) -> Result<Run, TestCaseError> {
    let (mut g, ids) = build(&case.net)?;
    let feed: Vec<(NodeId, ArrayD<f64>)> = case
        .net
        .leaves()
        .into_iter()
        .map(|i| (ids[i], case.values[i].clone()))
        .collect();
    let order = g.topological_sort(feed).map_err(fail("topological_sort"))?;
    let cost = ids[case.net.loss];
    let loss = g
        .forward_and_backward(&order, cost)
        .map_err(fail("forward_and_backward"))?;
    Ok(Run {
        g,
        ids,
        order,
        cost,
        loss,
    })
}

// ---------------------------------------------------------------------------------------
// Finite differences.
// ---------------------------------------------------------------------------------------

impl Run {
    /// The cost after setting leaf `id` to `value` and running forward, with the signs of the
    /// arguments of every kinked op (relu) at that point.
    fn eval(
        &mut self,
        net: &Net,
        id: NodeId,
        value: ArrayD<f64>,
    ) -> Result<(f64, Vec<bool>), TestCaseError> {
        self.g.set_value(id, value).map_err(fail("set_value"))?;
        self.g.forward_order(&self.order).map_err(fail("forward"))?;
        let cost = self
            .g
            .value(self.cost)
            .ok()
            .and_then(|v| v.iter().next().copied())
            .ok_or_else(|| TestCaseError::fail("no cost after forward"))?;
        Ok((cost, self.kinks(net)))
    }

    /// Whether the loss is computed too inaccurately for finite differences: a bce
    /// probability within 1e-6 of 0 or 1 (`ln(1 - p)` then loses about 10 digits to
    /// cancellation; that is what `bce_logits` is for), or clamped (where backward gives the
    /// gradient at the clamp point on purpose, not the derivative of the flat loss).
    fn ill_conditioned(&self, net: &Net) -> bool {
        net.nodes.iter().any(|n| match &n.kind {
            Kind::Op { op, args, .. }
                if netgen::entry(*op).is_some_and(|e| e.kink == Kink::ArgClamped01) =>
            {
                self.g
                    .value(self.ids[args[1]])
                    .ok()
                    .is_some_and(|v| v.iter().any(|&p| !(1e-6..=1.0 - 1e-6).contains(&p)))
            }
            _ => false,
        })
    }

    fn kinks(&self, net: &Net) -> Vec<bool> {
        let mut signs = Vec::new();
        for n in &net.nodes {
            if let Kind::Op { op, args, .. } = &n.kind {
                let value = |k: usize| self.g.value(self.ids[args[k]]).ok();
                match netgen::entry(*op).map(|e| e.kink) {
                    Some(Kink::ArgAtZero) => {
                        if let Some(v) = value(0) {
                            signs.extend(v.iter().map(|&x| x > 0.0));
                        }
                    }
                    Some(Kink::ArgClamped01) => {
                        // bce clamps p to [eps, 1 - eps] with a tiny eps: inside or not.
                        if let Some(v) = value(1) {
                            signs.extend(v.iter().map(|&p| p > 1e-12 && p < 1.0 - 1e-12));
                        }
                    }
                    _ => {}
                }
            }
        }
        signs
    }
}

/// The outcome of one derivative check.
enum Fd {
    Agrees,
    /// Every step straddled a kink.
    Skipped,
}

/// Whether central differences of `f(t)` (the cost with the leaves moved by `t` along a
/// direction, and the kink signature there) agree with `analytic`, the directional
/// derivative from backward.
///
/// Agreement: relative error `1e-5` with a floor of `1e-8 · max(1, |loss|)` (rounding in
/// `f(±h)` is about `1e-11 · |loss|` at h = 1e-5). For each step h in 1e-5, 1e-6, 1e-4,
/// 1e-3, the central difference D(h), then D(h/2) and the Richardson extrapolation
/// (4 D(h/2) - D(h)) / 3 (error O(h⁴), for steep high-degree polynomials such as repeated
/// `linear(h, h, b)`) are tried; any agreeing passes. Neither rounding (small h) nor
/// curvature (large h) can then fail a correct gradient, and a wrong one fails them all. A
/// step where the kink signature (relu arguments' signs) differs from the base point's is not
/// used.
fn fd_agrees(
    f: &mut dyn FnMut(f64) -> Result<(f64, Vec<bool>), TestCaseError>,
    base_kinks: &[bool],
    analytic: f64,
    loss: f64,
    what: &dyn Fn() -> String,
) -> Result<Fd, TestCaseError> {
    let floor = 1e-8 * loss.abs().max(1.0);
    let agrees = |numeric: f64| {
        (numeric - analytic).abs() <= 1e-5 * numeric.abs().max(analytic.abs()) + floor
    };
    let mut central = |h: f64| -> Result<Option<f64>, TestCaseError> {
        let (fp, kp) = f(h)?;
        let (fm, km) = f(-h)?;
        Ok((kp == base_kinks && km == base_kinks).then(|| (fp - fm) / (2.0 * h)))
    };
    let mut tried = Vec::new();
    for h in [1e-5, 1e-6, 1e-4, 1e-3] {
        let Some(d) = central(h)? else { continue };
        if agrees(d) {
            return Ok(Fd::Agrees);
        }
        let Some(d2) = central(h / 2.0)? else {
            continue;
        };
        let richardson = (4.0 * d2 - d) / 3.0;
        if agrees(d2) || agrees(richardson) {
            return Ok(Fd::Agrees);
        }
        tried.push(format!(
            "h = {h:e}: {d:e}, h/2: {d2:e}, extrapolated {richardson:e}"
        ));
    }
    if tried.is_empty() {
        return Ok(Fd::Skipped);
    }
    Err(TestCaseError::fail(format!(
        "{}: analytic {analytic:e} vs central differences {} (loss {loss:e})",
        what(),
        tried.join("; ")
    )))
}

/// [`fd_agrees`] for moving one leaf `id` (value `base`) along `direction`; restores it.
fn check_derivative(
    run: &mut Run,
    net: &Net,
    id: NodeId,
    base: &ArrayD<f64>,
    direction: &ArrayD<f64>,
    analytic: f64,
    what: &dyn Fn() -> String,
) -> Result<Fd, TestCaseError> {
    let base_kinks = run.kinks(net);
    let loss = run.loss;
    let result = fd_agrees(
        &mut |t| run.eval(net, id, base + &(direction * t)),
        &base_kinks,
        analytic,
        loss,
        what,
    );
    run.eval(net, id, base.clone())?;
    result
}

/// Checks the whole case; returns how many derivatives were compared.
fn check_gradients(case: &Case) -> Result<usize, TestCaseError> {
    let net = &case.net;
    let mut r = run(case)?;
    ensure!(r.loss.is_finite(), "loss {} is not finite", r.loss);
    let reaches = net.reaches_loss();
    let sizes = &case.sizes;

    // Every node: the inferred shape, finite; a gradient exactly when it reaches the loss.
    for (i, n) in net.nodes.iter().enumerate() {
        let want = concrete(&n.shape, sizes);
        let v =
            r.g.value(r.ids[i])
                .ok()
                .ok_or_else(|| TestCaseError::fail(format!("`{}` has no value", n.name)))?;
        ensure!(
            v.shape() == want.as_slice(),
            "`{}`: value shape {:?}, the op table says {want:?}",
            n.name,
            v.shape()
        );
        ensure!(
            v.iter().all(|x| x.is_finite()),
            "`{}` has a non-finite value",
            n.name
        );
        match r.g.gradient(r.ids[i]).ok() {
            Some(g) => {
                ensure!(
                    reaches[i],
                    "`{}` does not reach the loss but has a gradient",
                    n.name
                );
                ensure!(
                    g.shape() == want.as_slice(),
                    "`{}`: gradient shape {:?} vs value shape {want:?}",
                    n.name,
                    g.shape()
                );
                ensure!(
                    g.iter().all(|x| x.is_finite()),
                    "`{}` has a non-finite gradient",
                    n.name
                );
            }
            None => ensure!(
                !reaches[i],
                "`{}` reaches the loss but has no gradient",
                n.name
            ),
        }
    }

    if r.ill_conditioned(net) {
        return Ok(0);
    }
    // Leaves: single elements (all of a small leaf, 4 of a larger one), then one random
    // direction through every leaf at once.
    let mut rng = SplitMix(
        case.values
            .iter()
            .flat_map(|v| v.iter())
            .fold(r.loss.to_bits(), |h, x| h.rotate_left(5) ^ x.to_bits()),
    );
    let mut compared = 0;
    for i in net.leaves() {
        if !reaches[i] {
            continue;
        }
        let id = r.ids[i];
        let base = case.values[i].clone();
        let grad =
            r.g.gradient(id)
                .ok()
                .map(|g| g.to_owned())
                .unwrap_or_default();
        let len = base.len();
        let mut picks: Vec<usize> = (0..len).collect();
        if len > 4 {
            for k in 0..4 {
                let j = k + rng.below(len - k);
                picks.swap(k, j);
            }
            picks.truncate(4);
        }
        for j in picks {
            let mut e = ArrayD::zeros(base.raw_dim());
            e.as_slice_mut().expect("standard layout")[j] = 1.0;
            let analytic = grad.iter().nth(j).copied().unwrap_or(f64::NAN);
            let name = &net.nodes[i].name;
            let what = || format!("d loss / d {name}[{j}] (flat index)");
            if let Fd::Agrees = check_derivative(&mut r, net, id, &base, &e, analytic, &what)? {
                compared += 1;
            }
        }
    }
    // The direction: every leaf moves at once (one derivative of a sum of many terms).
    let leaves: Vec<usize> = net.leaves().into_iter().filter(|&i| reaches[i]).collect();
    if leaves.len() > 1 {
        let dirs: Vec<ArrayD<f64>> = leaves
            .iter()
            .map(|&i| ArrayD::from_shape_simple_fn(case.values[i].raw_dim(), || rng.uniform()))
            .collect();
        let analytic: f64 = leaves
            .iter()
            .zip(&dirs)
            .map(|(&i, d)| {
                let g =
                    r.g.gradient(r.ids[i])
                        .ok()
                        .map(|g| g.to_owned())
                        .unwrap_or_default();
                g.iter().zip(d.iter()).map(|(g, d)| g * d).sum::<f64>()
            })
            .sum();
        // Move every leaf by t·d at once.
        let base_kinks = r.kinks(net);
        let loss = r.loss;
        let mut f = |t: f64| -> Result<(f64, Vec<bool>), TestCaseError> {
            for (&i, d) in leaves.iter().zip(&dirs) {
                r.g.set_value(r.ids[i], &case.values[i] + &(d * t))
                    .map_err(fail("set_value"))?;
            }
            r.g.forward_order(&r.order).map_err(fail("forward"))?;
            let c =
                r.g.value(r.cost)
                    .ok()
                    .and_then(|v| v.iter().next().copied());
            Ok((c.unwrap_or(f64::NAN), r.kinks(net)))
        };
        let what = || "the directional derivative through every leaf".to_string();
        let agreed = matches!(
            fd_agrees(&mut f, &base_kinks, analytic, loss, &what)?,
            Fd::Agrees
        );
        compared += usize::from(agreed);
    }
    Ok(compared)
}

proptest! {
    #![proptest_config(config(20_000))]

    /// Random DAGs over every op: each leaf's gradient matches central finite differences.
    #[test]
    fn gradients_match_finite_differences(case in cases(7)) {
        check_gradients(&case)?;
    }
}

// ---------------------------------------------------------------------------------------
// Never a panic: random, mostly invalid graphs.
// ---------------------------------------------------------------------------------------

/// A random graph spec: leaves of random shapes (zero-sized dims included) and values
/// (NaN, infinities, huge and tiny numbers included), ops on random nodes with random arity,
/// maybe a replaced argument (a cycle), maybe a leaf left unfed.
#[derive(Clone)]
struct Wild {
    leaves: Vec<(Vec<usize>, Vec<f64>)>,
    /// (op, argument indices into all nodes so far, literals).
    ops: Vec<(Op, Vec<usize>, Vec<f64>)>,
    /// (node, arg index, new arg).
    replace: Option<(usize, usize, usize)>,
    unfed: Option<usize>,
    cost: usize,
    lr: f64,
}

impl fmt::Debug for Wild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        for (i, (s, v)) in self.leaves.iter().enumerate() {
            writeln!(f, "    n{i}: input {} = {v:?}", shape_text(s))?;
        }
        let l = self.leaves.len();
        for (k, (op, args, lits)) in self.ops.iter().enumerate() {
            let mut a: Vec<String> = args.iter().map(|a| format!("n{a}")).collect();
            a.extend(lits.iter().map(|l| format!("{l:?}")));
            writeln!(f, "    n{} = {op}({});", l + k, a.join(", "))?;
        }
        writeln!(
            f,
            "    replace {:?}, unfed {:?}, cost n{}, lr {}",
            self.replace, self.unfed, self.cost, self.lr
        )
    }
}

const SPECIAL: [f64; 10] = [
    0.0,
    -0.0,
    1.0,
    -2.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e308,
    -1e300,
    5e-324,
];

fn wild_from(bytes: &[u8]) -> Wild {
    let mut c = Bytes::new(bytes);
    let n_leaves = 1 + c.below(4);
    let leaves: Vec<(Vec<usize>, Vec<f64>)> = (0..n_leaves)
        .map(|_| {
            let rank = c.below(4);
            let shape: Vec<usize> = (0..rank)
                .map(|_| if c.chance(8) { 0 } else { 1 + c.below(3) })
                .collect();
            let len: usize = shape.iter().product();
            let vals = (0..len)
                .map(|_| {
                    if c.chance(10) {
                        SPECIAL[c.below(SPECIAL.len())]
                    } else {
                        value_of(c.below(256) as u8)
                    }
                })
                .collect();
            (shape, vals)
        })
        .collect();
    let n_ops = c.below(6);
    let mut ops = Vec::new();
    for k in 0..n_ops {
        let op = Op::ALL[c.below(Op::ALL.len())];
        let literals: Vec<f64> = (0..op.literal_count())
            .map(|_| [0.1, 0.0, -2.0, 1e300][c.below(4)])
            .collect();
        // Usually the right literals; sometimes none, an extra one, or NaN.
        let literals = match c.below(12) {
            0 => Vec::new(),
            1 => vec![0.5; literals.len() + 1],
            2 => vec![f64::NAN; literals.len().max(1)],
            _ => literals,
        };
        let arity = match op.arity() {
            miniflow_core::Arity::Exact(n) | miniflow_core::Arity::AtLeast(n) => n,
        }
        .saturating_sub(op.literal_count());
        // Usually the right arity, sometimes one off.
        let arity = match c.below(10) {
            0 => arity.saturating_sub(1),
            1 => arity + 1,
            _ => arity,
        };
        let avail = n_leaves + k;
        let args = (0..arity).map(|_| avail - 1 - c.below(avail)).collect();
        ops.push((op, args, literals));
    }
    let total = n_leaves + n_ops;
    let replace = c
        .chance(15)
        .then(|| (c.below(total), c.below(3), c.below(total)));
    let unfed = c.chance(10).then(|| c.below(n_leaves));
    let cost = total - 1 - c.below(total);
    let lr = [0.1, 0.0, -1.0, f64::NAN, 1e300][c.below(5)];
    Wild {
        leaves,
        ops,
        replace,
        unfed,
        cost,
        lr,
    }
}

/// Runs every graph call on `w`; any panic fails the property (proptest catches it). Returns
/// whether a forward pass succeeded.
fn exercise(w: &Wild) -> Result<bool, TestCaseError> {
    let mut g = Graph::<f64>::new();
    let mut ids = Vec::new();
    for i in 0..w.leaves.len() {
        ids.push(g.input(format!("n{i}")).unwrap());
    }
    // The arguments of each op node that was added, by node index.
    let mut args_of: Vec<Option<(Op, Vec<NodeId>)>> = vec![None; w.leaves.len()];
    for (k, (op, args, lits)) in w.ops.iter().enumerate() {
        let a: Vec<NodeId> = args.iter().map(|&a| ids[a.min(ids.len() - 1)]).collect();
        let well_formed = op.arity().accepts(a.len() + lits.len())
            && lits.len() == op.literal_count()
            && lits.iter().all(|l| l.is_finite());
        match g.op_with(format!("n{}", w.leaves.len() + k), *op, &a, lits) {
            Ok(id) => {
                ensure!(well_formed, "`{op}` accepted {} args and {lits:?}", a.len());
                ensure!(id.index() == args_of.len(), "node ids are creation indices");
                ids.push(id);
                args_of.push(Some((*op, a)));
            }
            Err(e) => {
                ensure!(
                    !well_formed,
                    "`{op}` with {} args and {lits:?}: {e}",
                    a.len()
                );
                ensure!(!e.to_string().is_empty(), "empty error message");
            }
        }
    }
    if let Some((node, index, arg)) = w.replace {
        let (node, arg) = (ids[node % ids.len()], ids[arg % ids.len()]);
        let replaced = g.replace_arg(node, index, arg);
        match &mut args_of[node.index()] {
            Some((_, a)) if index < a.len() => {
                ensure!(replaced.is_ok(), "replace_arg: {replaced:?}");
                a[index] = arg;
            }
            _ => ensure!(
                replaced.is_err(),
                "replace_arg of a missing argument succeeded"
            ),
        }
    }
    let feed: Vec<(NodeId, ArrayD<f64>)> = w
        .leaves
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != w.unfed)
        .map(|(i, (s, v))| {
            (
                ids[i],
                ArrayD::from_shape_vec(IxDyn(s), v.clone()).expect("shape matches values"),
            )
        })
        .collect();
    let order = match g.topological_sort(feed) {
        Ok(order) => order,
        Err(e) => {
            ensure!(!e.to_string().is_empty(), "empty error message");
            return Ok(false);
        }
    };
    let cost = ids[w.cost % ids.len()];
    let forward = g.forward_order(&order);
    if let Err(e) = &forward {
        ensure!(!e.to_string().is_empty(), "empty error message");
        // A failed forward leaves no value behind, so backward from an op node is an error
        // too (not a panic); from a fed leaf it may succeed.
        let backward = g.backward_order(&order, cost);
        ensure!(
            backward.is_err() || cost.index() < w.leaves.len(),
            "backward after a failed forward"
        );
        return Ok(false);
    }
    // A successful forward: every node has the shape the op table infers from its arguments.
    // (The order holds every node; an unfed leaf that no op reads has no value.)
    for &id in &order {
        let shape = match g.value(id).ok() {
            Some(v) => v.shape().to_vec(),
            None if Some(id.index()) == w.unfed => continue,
            None => {
                return Err(TestCaseError::fail(format!(
                    "{id} has no value after forward"
                )))
            }
        };
        if let Some((op, args)) = &args_of[id.index()] {
            let shapes: Vec<Vec<usize>> = args
                .iter()
                .map(|&a| {
                    g.value(a)
                        .ok()
                        .map(|v| v.shape().to_vec())
                        .unwrap_or_default()
                })
                .collect();
            let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
            let inferred = op.infer_shape(&shapes);
            ensure!(
                inferred.as_deref() == Ok(shape.as_slice()),
                "{id} = {op}: value shape {shape:?}, op table {inferred:?}"
            );
        }
    }
    match g.backward_order(&order, cost) {
        Ok(()) => {
            let mut trainables: Vec<NodeId> = ids[..w.leaves.len()].to_vec();
            trainables.retain(|&t| g.gradient(t).ok().is_some());
            let before = leaf_bits(&g, &ids[..w.leaves.len()]);
            let updated = g.sgd_update(&trainables, w.lr);
            if w.lr.is_finite() {
                updated.map_err(fail("sgd_update"))?;
            } else {
                // A failed update changes nothing.
                ensure!(updated.is_err(), "sgd_update with lr {}", w.lr);
                ensure!(
                    leaf_bits(&g, &ids[..w.leaves.len()]) == before,
                    "a failed sgd_update changed a value"
                );
            }
            // Leaves off the cost path have no gradient: updating them is an error.
            for &t in &ids[..w.leaves.len()] {
                if g.gradient(t).ok().is_none() {
                    ensure!(
                        g.sgd_update(&[t], w.lr).is_err(),
                        "sgd_update without gradient"
                    );
                }
            }
        }
        Err(e) => ensure!(!e.to_string().is_empty(), "empty error message"),
    }
    // Re-run with the same order after the update: still no panic.
    let rerun = g.forward_and_backward(&order, cost);
    // Values used by backward must come from one forward of the current values: a value set
    // to a new shape with only a partial forward since, or an argument replaced after the
    // forward, is an error, never a kernel panic or stale gradients.
    let depends = |g: &Graph<f64>, from: NodeId, target: NodeId| {
        let mut stack = vec![from.index()];
        let mut seen = vec![false; ids.len()];
        while let Some(i) = stack.pop() {
            if i == target.index() {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                if let Some((_, a)) = &args_of[i] {
                    stack.extend(a.iter().map(|a| a.index()));
                }
            }
        }
        let _ = g;
        false
    };
    if rerun.is_ok() {
        let leaf = ids[0];
        let shape: Vec<usize> = g
            .value(leaf)
            .ok()
            .map(|v| v.shape().iter().map(|n| n + 1).collect())
            .unwrap_or_default();
        if g.set_value(leaf, ArrayD::zeros(IxDyn(&shape))).is_ok() {
            let leaves: Vec<NodeId> = order
                .iter()
                .copied()
                .filter(|id| id.index() < w.leaves.len())
                .collect();
            g.forward_order(&leaves)
                .map_err(fail("forward of the leaves"))?;
            let r = g.backward_order(&order, cost);
            if cost != leaf && depends(&g, cost, leaf) {
                ensure!(
                    r.is_err(),
                    "backward used a value computed before `n0` changed"
                );
            }
        }
    }
    if let (Ok(_), Some((node, index, arg))) = (g.forward_and_backward(&order, cost), w.replace) {
        let (node, arg) = (ids[node % ids.len()], ids[(arg + 1) % ids.len()]);
        if g.replace_arg(node, index, arg).is_ok() && depends(&g, cost, node) {
            ensure!(
                g.backward_order(&order, cost).is_err(),
                "backward after replace_arg used the old forward"
            );
        }
    }
    // An id from another graph is an error in every builder, never a panic.
    let mut other = Graph::<f64>::new();
    for k in 0..ids.len() + 2 {
        other.input(format!("o{k}")).map_err(fail("input"))?;
    }
    let foreign = other
        .find(&format!("o{}", ids.len() % 3))
        .map_err(fail("find"))?;
    ensure!(g.sigmoid("s", foreign).is_err(), "sigmoid of a foreign id");
    ensure!(
        g.linear("l", ids[0], foreign, ids[0]).is_err(),
        "linear of a foreign id"
    );
    ensure!(
        g.set_value(foreign, ArrayD::zeros(IxDyn(&[1]))).is_err(),
        "set_value of a foreign id"
    );
    Ok(true)
}

/// The bits of every leaf's value.
fn leaf_bits(g: &Graph<f64>, leaves: &[NodeId]) -> Vec<u64> {
    leaves
        .iter()
        .flat_map(|&id| {
            g.value(id)
                .ok()
                .into_iter()
                .flat_map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        })
        .collect()
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Random, mostly invalid graphs: typed errors, never a panic.
    #[test]
    fn random_graphs_never_panic(w in vec(any::<u8>(), 0..96).prop_map(|b| wild_from(&b))) {
        exercise(&w)?;
    }
}

// ---------------------------------------------------------------------------------------
// Determinism.
// ---------------------------------------------------------------------------------------

/// Trains `case` for 3 steps of `forward_and_backward` + `sgd_update` on every leaf; returns
/// the bits of every loss and every final leaf value.
fn train_bits(case: &Case) -> Result<Vec<u64>, TestCaseError> {
    let mut r = run(case)?;
    let reaches = case.net.reaches_loss();
    let leaves: Vec<NodeId> = case
        .net
        .leaves()
        .into_iter()
        .filter(|&i| reaches[i])
        .map(|i| r.ids[i])
        .collect();
    let mut bits = vec![r.loss.to_bits()];
    for _ in 0..3 {
        r.g.sgd_update(&leaves, 0.05).map_err(fail("sgd_update"))?;
        let loss =
            r.g.forward_and_backward(&r.order, r.cost)
                .map_err(fail("forward_and_backward"))?;
        bits.push(loss.to_bits());
    }
    for &id in &leaves {
        let v =
            r.g.value(id)
                .ok()
                .ok_or_else(|| TestCaseError::fail("no value"))?;
        bits.extend(v.iter().map(|x| x.to_bits()));
        let g =
            r.g.gradient(id)
                .ok()
                .ok_or_else(|| TestCaseError::fail("no gradient"))?;
        bits.extend(g.iter().map(|x| x.to_bits()));
    }
    Ok(bits)
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Two graphs built and trained from the same values agree to the bit.
    #[test]
    fn training_is_bit_for_bit_deterministic(case in cases(6)) {
        let a = train_bits(&case)?;
        let b = train_bits(&case)?;
        prop_assert!(a == b, "two identical training runs differ");
    }
}

// ---------------------------------------------------------------------------------------
// The generator itself.
// ---------------------------------------------------------------------------------------

#[test]
fn every_op_has_a_generator_entry() {
    let missing = netgen::ops_without_entry();
    assert!(
        missing.is_empty(),
        "add an entry to ENTRIES in tests-gen/src/netgen.rs for: {missing:?}"
    );
}

/// Every op of the table shows up in generated networks, fan-out and the same node twice in
/// one op happen, and the finite-difference check can fail (a wrong gradient is caught).
#[test]
fn the_generator_covers_every_op_and_the_check_can_fail() {
    let mut rng = SplitMix(7);
    let mut counts = vec![0usize; Op::ALL.len()];
    let (mut fan_out, mut twice) = (0, 0);
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..64).map(|_| rng.below(256) as u8).collect();
        let case = Case::new(&bytes, &[3, 8, 200, 77, 41], 7);
        for (k, (_, n)) in case.net.op_counts().into_iter().enumerate() {
            counts[k] += n;
        }
        fan_out += usize::from(case.net.has_fan_out());
        twice += usize::from(case.net.nodes.iter().any(|n| {
            let a = n.args();
            (1..a.len()).any(|i| a[..i].contains(&a[i]))
        }));
    }
    for (op, n) in Op::ALL.iter().zip(&counts) {
        assert!(*n >= 50, "`{op}` appears only {n} times in 2000 networks");
    }
    assert!(
        fan_out > 500 && twice > 200,
        "fan-out {fan_out}, same node twice {twice}"
    );

    // A corrupted analytic gradient is caught.
    let case = Case::new(&[1, 2, 3, 4, 5, 6], &[9, 20, 33, 47, 60], 3);
    let mut r = run(&case).unwrap();
    let i = case.net.leaves()[0];
    let id = r.ids[i];
    let base = case.values[i].clone();
    let mut e = ArrayD::zeros(base.raw_dim());
    e.as_slice_mut().unwrap()[0] = 1.0;
    let g =
        r.g.gradient(id)
            .ok()
            .unwrap()
            .iter()
            .next()
            .copied()
            .unwrap();
    let what = || "probe".to_string();
    let bad = check_derivative(&mut r, &case.net, id, &base, &e, g * 1.001 + 1e-6, &what);
    assert!(bad.is_err(), "a wrong gradient passed the check: {case:?}");
    let good = check_derivative(&mut r, &case.net, id, &base, &e, g, &what);
    assert!(matches!(good, Ok(Fd::Agrees)), "{case:?}");
}

/// The finite-difference check does compare derivatives on most networks (it is not
/// vacuous): on 300 networks, few are skipped and many derivatives are compared.
#[test]
fn finite_differences_compare_many_derivatives() {
    let mut rng = SplitMix(11);
    let (mut compared, mut cases_without) = (0, 0);
    for _ in 0..300 {
        let s: Vec<u8> = (0..64).map(|_| rng.below(256) as u8).collect();
        let v: Vec<u8> = (0..48).map(|_| rng.below(256) as u8).collect();
        let case = Case::new(&s, &v, 7);
        let n = check_gradients(&case).unwrap_or_else(|e| panic!("{e}\n{case:?}"));
        compared += n;
        cases_without += usize::from(n == 0);
    }
    println!("{compared} derivatives compared; {cases_without} of 300 networks had none");
    assert!(compared >= 300 * 8, "only {compared} derivatives compared");
    assert!(
        cases_without <= 15,
        "{cases_without} networks compared no derivative"
    );
}

/// The wild graphs are not all rejected early: a fair share run forward and backward.
#[test]
fn wild_graphs_often_get_to_run() {
    let mut rng = SplitMix(5);
    let mut ran = 0;
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..96).map(|_| rng.below(256) as u8).collect();
        ran += usize::from(exercise(&wild_from(&bytes)).unwrap_or_else(|e| panic!("{e}")));
    }
    assert!(ran >= 200, "only {ran} of 2000 wild graphs ran forward");
}
