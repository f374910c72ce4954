//! Random valid networks over miniflow's op table.
//!
//! One generator serves two suites: the property tests of the runtime graph
//! (`miniflow-core/tests/suite/prop_graph.rs`, which includes this file by path and feeds it
//! proptest's bytes, so failures shrink) and the build script of this crate, which feeds it a
//! seeded PRNG and writes the networks out as `network!` source.
//!
//! A network is grown op by op: each op takes existing nodes (recent ones more often, the same
//! node several times, so fan-out is common) or new leaves, with shapes that the op table's own
//! rule ([`Op::infer_shape`], on symbolic dims) accepts. Every node left without a consumer is
//! then reduced to a scalar (by `mse` against a new target, or a reduction op) and the scalars
//! are summed into the loss, so every node reaches the loss.
//!
//! **Supporting a new op is one entry in [`ENTRIES`]**: its name and the pattern of arguments it
//! takes (the shape rule itself comes from the op table). Entries for ops that do not exist
//! yet are dormant; an op without an entry fails `every_op_has_a_generator_entry`.

#![allow(dead_code)]

use miniflow_ops::{Arity, Dim, Op};
use std::fmt::{self, Write as _};

// ---------------------------------------------------------------------------------------
// The op entries.
// ---------------------------------------------------------------------------------------

/// How an op's arguments are chosen. The op table then says whether the shapes fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// One argument of any shape: elementwise ops, reductions, softmax.
    Unary,
    /// As many arguments as the op's arity, all of one shape: add, mul, sub.
    SameShape,
    /// `(x: [m, k], w: [k, n], b: [n])`.
    Linear,
    /// `(x: [m, k], w: [k, n])`.
    MatMul,
    /// Two arguments holding the same number of elements: mse, bce_logits.
    SameCount,
    /// `(y, p)` holding the same number of elements, `p` in (0, 1): a new leaf of
    /// probabilities or the output of a sigmoid or softmax (bce).
    Probabilities,
    /// `(logits: [m, c], labels: [m])`, the labels a new input of class indices in `0..c`
    /// (data: no gradient flows into it).
    Labels,
}

/// Where a kinked op's derivative jumps; finite differences straddling it are not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kink {
    /// Smooth.
    None,
    /// Where argument 0 is 0 (relu, leaky_relu).
    ArgAtZero,
    /// Where argument 1 leaves `[eps, 1 - eps]` (bce clamps its probabilities).
    ArgClamped01,
}

/// What values a leaf may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Any number.
    Any,
    /// In (0, 1).
    Prob,
    /// Class indices `0..c`, as floats.
    Labels(GDim),
}

/// What the generator knows about one op.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The op's name in the table.
    pub name: &'static str,
    /// How its arguments are chosen.
    pub pattern: Pattern,
    /// Where its derivative jumps.
    pub kink: Kink,
    /// Values for its literal arguments, written after the node arguments (the slope of
    /// `leaky_relu`); empty for an op without literals.
    pub literals: &'static [f64],
}

impl Entry {
    const fn new(name: &'static str, pattern: Pattern) -> Entry {
        Entry {
            name,
            pattern,
            kink: Kink::None,
            literals: &[],
        }
    }

    const fn kink(self, kink: Kink) -> Entry {
        Entry { kink, ..self }
    }

    /// One literal argument, drawn from `values`.
    const fn literal(self, values: &'static [f64]) -> Entry {
        Entry {
            literals: values,
            ..self
        }
    }

    /// Whether node argument `k` gets a gradient.
    pub fn differentiable(&self, k: usize) -> bool {
        !(self.pattern == Pattern::Labels && k == 1)
    }
}

/// One entry per op. Entries whose op is not (yet) in [`Op::ALL`] are ignored.
pub const ENTRIES: &[Entry] = &[
    Entry::new("linear", Pattern::Linear),
    Entry::new("sigmoid", Pattern::Unary),
    Entry::new("mse", Pattern::SameCount),
    Entry::new("add", Pattern::SameShape),
    Entry::new("relu", Pattern::Unary).kink(Kink::ArgAtZero),
    Entry::new("tanh", Pattern::Unary),
    Entry::new("leaky_relu", Pattern::Unary)
        .kink(Kink::ArgAtZero)
        .literal(&[0.01, 0.2, 0.5, 1.5]),
    Entry::new("matmul", Pattern::MatMul),
    Entry::new("mul", Pattern::SameShape),
    Entry::new("sub", Pattern::SameShape),
    Entry::new("sum", Pattern::Unary),
    Entry::new("mean", Pattern::Unary),
    Entry::new("softmax", Pattern::Unary),
    Entry::new("softmax_cross_entropy", Pattern::Labels),
    Entry::new("bce", Pattern::Probabilities).kink(Kink::ArgClamped01),
    Entry::new("bce_logits", Pattern::SameCount),
];

/// The generator's entry for `op`.
pub fn entry(op: Op) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.name == op.name())
}

/// The ops of the table that have an entry, in table order.
pub fn ops() -> Vec<(Op, &'static Entry)> {
    Op::ALL
        .iter()
        .filter_map(|&op| entry(op).map(|e| (op, e)))
        .collect()
}

/// Ops of the table without an entry (should be empty).
pub fn ops_without_entry() -> Vec<Op> {
    Op::ALL
        .iter()
        .copied()
        .filter(|&op| entry(op).is_none())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Choices.
// ---------------------------------------------------------------------------------------

/// A source of choices. Choice 0 is always the simplest, so a stream of zeros (what a
/// shrunk byte stream runs out into) gives the smallest network.
pub trait Choices {
    /// A number in `0..n`; 0 when `n <= 1`.
    fn below(&mut self, n: usize) -> usize;

    /// `true` with about `percent`% probability; `false` on the simplest choice.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) + percent.min(100) >= 100
    }
}

/// Choices read from bytes (proptest's), zeros once they run out.
#[derive(Clone, Debug)]
pub struct Bytes<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Bytes { bytes, pos: 0 }
    }

    fn byte(&mut self) -> usize {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        usize::from(b)
    }
}

impl Choices for Bytes<'_> {
    fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => self.byte() % n,
            _ => (self.byte() | self.byte() << 8) % n,
        }
    }
}

/// A small deterministic PRNG (splitmix64).
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

impl Choices for SplitMix {
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

// ---------------------------------------------------------------------------------------
// Symbolic dims.
// ---------------------------------------------------------------------------------------

/// The names of the named dims.
pub const DIM_NAMES: [&str; 2] = ["batch", "n"];

/// A dim: a literal, or one of [`DIM_NAMES`] (by index), bound when values are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GDim {
    Fixed(usize),
    Named(usize),
}

impl fmt::Display for GDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GDim::Fixed(n) => write!(f, "{n}"),
            GDim::Named(k) => f.write_str(DIM_NAMES[k]),
        }
    }
}

impl Dim for GDim {
    /// Equal for every binding of the names: the same literal product and the same names
    /// (what the macro proves; the runtime graph's concrete check then holds too).
    fn same_count(a: &[Self], b: &[Self]) -> bool {
        fn split(s: &[GDim]) -> (usize, Vec<usize>) {
            let mut names = Vec::new();
            let mut product = 1usize;
            for d in s {
                match *d {
                    GDim::Fixed(n) => product = product.saturating_mul(n),
                    GDim::Named(k) => names.push(k),
                }
            }
            names.sort_unstable();
            (product, names)
        }
        split(a) == split(b)
    }
}

/// `shape` with named dims bound to `sizes`.
pub fn concrete(shape: &[GDim], sizes: &[usize; 2]) -> Vec<usize> {
    shape
        .iter()
        .map(|d| match *d {
            GDim::Fixed(n) => n,
            GDim::Named(k) => sizes[k],
        })
        .collect()
}

/// `[a, b]`.
pub fn shape_text<D: fmt::Display>(shape: &[D]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[{}]", dims.join(", "))
}

// ---------------------------------------------------------------------------------------
// Networks.
// ---------------------------------------------------------------------------------------

/// What a node is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A leaf: a param (trained), or an input (fed; `grad`: `#[grad]`).
    Leaf { param: bool, grad: bool },
    /// Computed by `op` from the nodes `args` (by index) and the numeric `literals`
    /// (written after the nodes).
    Op {
        op: Op,
        args: Vec<usize>,
        literals: Vec<f64>,
    },
}

/// A computed node's role in the DSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Plain,
    Output,
    Loss,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub shape: Vec<GDim>,
    pub kind: Kind,
    pub role: Role,
    /// The values a leaf may hold (`Any` for op nodes).
    pub domain: Domain,
}

impl Node {
    pub fn args(&self) -> &[usize] {
        match &self.kind {
            Kind::Leaf { .. } => &[],
            Kind::Op { args, .. } => args,
        }
    }

    pub fn literals(&self) -> &[f64] {
        match &self.kind {
            Kind::Leaf { .. } => &[],
            Kind::Op { literals, .. } => literals,
        }
    }

    pub fn op(&self) -> Option<Op> {
        match self.kind {
            Kind::Leaf { .. } => None,
            Kind::Op { op, .. } => Some(op),
        }
    }

    pub fn is_leaf(&self) -> bool {
        matches!(self.kind, Kind::Leaf { .. })
    }

    /// The doc comment telling a leaf's domain to whoever feeds it values: `probabilities`
    /// or `labels < c`; `None` for any value.
    pub fn domain_doc(&self) -> Option<String> {
        match self.domain {
            Domain::Any => None,
            Domain::Prob => Some("probabilities".into()),
            Domain::Labels(c) => Some(format!("labels < {c}")),
        }
    }
}

/// A random network. Nodes are in creation order: every node after its arguments.
#[derive(Clone, PartialEq)]
pub struct Net {
    pub nodes: Vec<Node>,
    /// The loss node (a scalar).
    pub loss: usize,
    /// The order of the statements in the DSL source (a permutation of the nodes).
    pub order: Vec<usize>,
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Ops grown before the sinks are reduced into the loss (at least 1).
    pub max_ops: usize,
    /// Fixed dims are in `1..=max_dim`.
    pub max_dim: usize,
    /// Whether shapes may use the named dims.
    pub named_dims: bool,
    /// DSL extras: params, `#[grad]` inputs, `output`s on and off the loss path, statements
    /// out of order.
    pub dsl: bool,
    /// Grow, besides random ops, the patterns the plan's rules look for
    /// (`miniflow_ops::plan::RULES`), with the node a rule acts on in every role (a param, an
    /// input, an intermediate; one consumer or several) and params read again after their
    /// gradient is made: see `Builder::motif`.
    pub motifs: bool,
}

/// An argument being chosen: an existing node or a new leaf of a shape and domain.
#[derive(Clone, Debug)]
enum Arg {
    Old(usize),
    New(Vec<GDim>, Domain),
}

fn any(shape: Vec<GDim>) -> Arg {
    Arg::New(shape, Domain::Any)
}

struct Builder<'c, C: Choices> {
    c: &'c mut C,
    o: Options,
    nodes: Vec<Node>,
}

impl<C: Choices> Builder<'_, C> {
    fn fixed_dim(&mut self) -> GDim {
        GDim::Fixed(1 + self.c.below(self.o.max_dim))
    }

    fn dim(&mut self) -> GDim {
        if self.o.named_dims && self.c.chance(25) {
            GDim::Named(self.c.below(DIM_NAMES.len()))
        } else {
            self.fixed_dim()
        }
    }

    /// A random shape: rank 2 (simplest choice), 1 or, rarely, 0.
    fn new_shape(&mut self) -> Vec<GDim> {
        let rank = match self.c.below(10) {
            0..=4 => 2,
            5..=8 => 1,
            _ => 0,
        };
        (0..rank).map(|_| self.dim()).collect()
    }

    fn shape<'s>(&'s self, a: &'s Arg) -> &'s [GDim] {
        match a {
            Arg::Old(i) => &self.nodes[*i].shape,
            Arg::New(s, _) => s,
        }
    }

    /// An existing node passing `ok`, recent ones first. Label leaves are data for one op
    /// and are never reused.
    fn existing(&mut self, ok: impl Fn(&Node) -> bool) -> Option<usize> {
        let cands: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                !matches!(n.domain, Domain::Labels(_)) && ok(n)
            })
            .collect();
        if cands.is_empty() {
            return None;
        }
        // Half the time one of the 3 newest (deep chains), else any (wide fan-out).
        let k = if self.c.chance(50) {
            self.c.below(cands.len())
        } else {
            self.c.below(cands.len().min(3))
        };
        Some(cands[cands.len() - 1 - k])
    }

    /// Usually an existing node whose shape passes `ok`; else a new leaf of shape `make()`.
    fn arg(
        &mut self,
        ok: impl Fn(&[GDim]) -> bool,
        make: impl FnOnce(&mut Self) -> Vec<GDim>,
    ) -> Arg {
        if !self.c.chance(35) {
            if let Some(i) = self.existing(|n| ok(&n.shape)) {
                return Arg::Old(i);
            }
        }
        any(make(self))
    }

    /// Argument 0: `given`, or a node or new leaf passing `ok`.
    fn first(
        &mut self,
        given: Option<usize>,
        ok: impl Fn(&[GDim]) -> bool,
        make: impl FnOnce(&mut Self) -> Vec<GDim>,
    ) -> Arg {
        match given {
            Some(i) => Arg::Old(i),
            None => self.arg(ok, make),
        }
    }

    /// How many node arguments: the arity less the literals.
    fn node_arity(&mut self, op: Op, e: &Entry) -> usize {
        let n = match op.arity() {
            Arity::Exact(k) => k,
            Arity::AtLeast(k) => k + self.c.below(3),
        };
        n.saturating_sub(usize::from(!e.literals.is_empty()))
    }

    /// Arguments for `op`, with `given` as argument 0 if any.
    fn args(&mut self, op: Op, e: &Entry, given: Option<usize>) -> Vec<Arg> {
        match e.pattern {
            Pattern::Unary => vec![self.first(given, |_| true, |b| b.new_shape())],
            Pattern::SameShape => {
                let n = self.node_arity(op, e);
                let a0 = self.first(given, |_| true, |b| b.new_shape());
                let s = self.shape(&a0).to_vec();
                let mut args = vec![a0.clone()];
                for _ in 1..n {
                    let a = match self.c.below(3) {
                        0 => self
                            .existing(|t| t.shape == s)
                            .map_or_else(|| any(s.clone()), Arg::Old),
                        1 => a0.clone(),
                        _ => any(s.clone()),
                    };
                    args.push(a);
                }
                args
            }
            Pattern::Linear | Pattern::MatMul => {
                let x = self.first(given, |s| s.len() == 2, |b| vec![b.dim(), b.dim()]);
                let Some(&k) = self.shape(&x).get(1) else {
                    return vec![x];
                };
                let w = self.arg(|s| s.len() == 2 && s[0] == k, |b| vec![k, b.fixed_dim()]);
                let n = self.shape(&w)[1];
                let mut args = vec![x, w];
                if e.pattern == Pattern::Linear {
                    args.push(self.arg(|s| s == [n], |_| vec![n]));
                }
                args
            }
            Pattern::SameCount => {
                let a = self.first(given, |_| true, |b| b.new_shape());
                let s = self.shape(&a).to_vec();
                let y = match self.c.below(4) {
                    0 => any(s.clone()),
                    1 => any(reshaped(&s)),
                    2 => self
                        .existing(|t| GDim::same_count(&t.shape, &s))
                        .map_or_else(|| any(s.clone()), Arg::Old),
                    _ => a.clone(),
                };
                // The seed's order is (target, prediction); swap it sometimes.
                if given.is_some() || !self.c.chance(30) {
                    vec![y, a]
                } else {
                    vec![a, y]
                }
            }
            Pattern::Probabilities => {
                let probability = |n: &Node| {
                    n.domain == Domain::Prob
                        || n.op()
                            .is_some_and(|op| op.name() == "sigmoid" || op.name() == "softmax")
                };
                let p = match self.existing(probability) {
                    Some(i) if !self.c.chance(30) => Arg::Old(i),
                    _ => {
                        let s = self.new_shape();
                        Arg::New(s, Domain::Prob)
                    }
                };
                let s = self.shape(&p).to_vec();
                let y = match given {
                    Some(i) => Arg::Old(i),
                    None => match self.c.below(3) {
                        0 => any(s.clone()),
                        1 => any(reshaped(&s)),
                        _ => Arg::New(s.clone(), Domain::Prob),
                    },
                };
                vec![y, p]
            }
            Pattern::Labels => {
                let logits = self.first(given, |s| s.len() == 2, |b| vec![b.dim(), b.dim()]);
                let s = self.shape(&logits).to_vec();
                match s.as_slice() {
                    [m, c] => {
                        let labels = Arg::New(vec![*m], Domain::Labels(*c));
                        vec![logits, labels]
                    }
                    _ => vec![logits],
                }
            }
        }
    }

    /// Adds `op` on `args` if the op table accepts their shapes; returns the new node.
    fn push_op(&mut self, op: Op, e: &Entry, args: Vec<Arg>) -> Option<usize> {
        let shapes: Vec<&[GDim]> = args.iter().map(|a| self.shape(a)).collect();
        let shape = op.infer_shape(&shapes).ok()?;
        let literals = if e.literals.is_empty() {
            Vec::new()
        } else {
            vec![e.literals[self.c.below(e.literals.len())]]
        };
        let mut ids = Vec::with_capacity(args.len());
        for a in args {
            match a {
                Arg::Old(i) => ids.push(i),
                Arg::New(shape, domain) => {
                    ids.push(self.nodes.len());
                    self.nodes.push(Node {
                        name: String::new(),
                        shape,
                        kind: Kind::Leaf {
                            param: false,
                            grad: false,
                        },
                        role: Role::Plain,
                        domain,
                    });
                }
            }
        }
        self.nodes.push(Node {
            name: String::new(),
            shape,
            kind: Kind::Op {
                op,
                args: ids,
                literals,
            },
            role: Role::Plain,
            domain: Domain::Any,
        });
        Some(self.nodes.len() - 1)
    }

    /// A new leaf of `shape` (input or param: `dsl_extras` decides).
    fn leaf(&mut self, shape: Vec<GDim>) -> usize {
        self.nodes.push(Node {
            name: String::new(),
            shape,
            kind: Kind::Leaf {
                param: false,
                grad: false,
            },
            role: Role::Plain,
            domain: Domain::Any,
        });
        self.nodes.len() - 1
    }

    /// A fixed-size matrix shape (leaves of fixed shape may become params).
    fn fixed_matrix(&mut self) -> Vec<GDim> {
        vec![self.fixed_dim(), self.fixed_dim()]
    }

    /// An argument of rank 2 for a motif: a recent op node (an intermediate), an older node
    /// (perhaps a leaf, already used), or a new leaf of fixed shape (a param, an input or a
    /// `#[grad]` input once `dsl_extras` decides).
    fn motif_base(&mut self) -> Arg {
        match self.c.below(3) {
            0 => self
                .existing(|n| n.shape.len() == 2 && !n.is_leaf())
                .map_or_else(|| any(self.fixed_matrix()), Arg::Old),
            1 => self
                .existing(|n| n.shape.len() == 2)
                .map_or_else(|| any(self.fixed_matrix()), Arg::Old),
            _ => any(self.fixed_matrix()),
        }
    }

    /// `linear(x, w, b)` with a new `w: [k, n]` and `b: [n]` (sometimes an existing `w`).
    fn linear_on(&mut self, x: usize, ops: &[(Op, &'static Entry)]) -> Option<usize> {
        let (op, e) = find(ops, "linear")?;
        let k = *self.nodes[x].shape.get(1)?;
        let w = self.arg(|s| s.len() == 2 && s[0] == k, |b| vec![k, b.fixed_dim()]);
        let n = self.shape(&w)[1];
        let b = self.arg(|s| s == [n], |_| vec![n]);
        self.push_op(op, e, vec![Arg::Old(x), w, b])
    }

    /// One pattern a plan rule looks for; returns whether it grew.
    ///
    /// - `s = sigmoid(base); o = linear(s, w, b)` (`FuseSigmoidLinear`), `base` a
    ///   param, an input or an intermediate; sometimes `s` or `base` gets a second consumer
    ///   (which must stop the fusion), or `s` goes into the linear's `w` instead of its `x`.
    /// - A param read again after its contribution (which must stop `SgdInPlace`):
    ///   `linear(w, w, b)`, `mul(w, h)` after `h = linear(x, w, b)`, `w` as the `x` of one
    ///   linear and the `w` of another.
    fn motif(&mut self, ops: &[(Op, &'static Entry)]) -> bool {
        let grown = match self.c.below(5) {
            0..=2 => (|| {
                let base = self.motif_base();
                let (sig, e) = find(ops, "sigmoid")?;
                let s = self.push_op(sig, e, vec![base])?;
                let base = self.nodes[s].args()[0];
                match self.c.below(8) {
                    // `s` as a linear's weight: no fusion.
                    0 => {
                        let (lin, e) = find(ops, "linear")?;
                        let n = self.nodes[s].shape[1];
                        let m = self.dim();
                        let k = self.nodes[s].shape[0];
                        let x = any(vec![m, k]);
                        let b = any(vec![n]);
                        self.push_op(lin, e, vec![x, Arg::Old(s), b])
                    }
                    // A second consumer of `s` or of `base`: no fusion.
                    1 | 2 => {
                        let o = self.linear_on(s, ops)?;
                        let again = if self.c.chance(50) { s } else { base };
                        let (op, e) =
                            find(ops, if self.c.chance(50) { "tanh" } else { "sigmoid" })?;
                        self.push_op(op, e, vec![Arg::Old(again)]);
                        Some(o)
                    }
                    _ => self.linear_on(s, ops),
                }
            })(),
            3 => (|| {
                // `linear(w, w, b)`: needs a square `w`.
                let (lin, e) = find(ops, "linear")?;
                let k = self.fixed_dim();
                let w = self.leaf(vec![k, k]);
                self.push_op(lin, e, vec![Arg::Old(w), Arg::Old(w), any(vec![k])])
            })(),
            _ => (|| {
                // `w` used by `h = linear(x, w, b)` and then read by a later step: as the
                // other factor of `mul(w, h)`, or as the `x` of another linear.
                let (lin, e) = find(ops, "linear")?;
                let (m, k) = (self.fixed_dim(), self.fixed_dim());
                let x = any(vec![m, k]);
                let w = self.leaf(vec![k, k]);
                let h = self.push_op(lin, e, vec![x, Arg::Old(w), any(vec![k])])?;
                if self.c.chance(50) {
                    let (mul, e) = find(ops, "mul")?;
                    // mul needs one shape: w is [k, k], h is [m, k].
                    if self.nodes[h].shape == self.nodes[w].shape {
                        return self.push_op(mul, e, vec![Arg::Old(w), Arg::Old(h)]);
                    }
                }
                self.linear_on(w, ops)
            })(),
        };
        grown.is_some()
    }

    /// Tries to grow one random op; returns whether it did.
    fn grow(&mut self, ops: &[(Op, &'static Entry)]) -> bool {
        for _ in 0..4 {
            let (op, e) = ops[self.c.below(ops.len())];
            let args = self.args(op, e, None);
            if self.push_op(op, e, args).is_some() {
                return true;
            }
        }
        false
    }

    /// A scalar computed from node `s`: `s` itself, a reduction of it (sum, mean), or a loss
    /// against it (mse, bce_logits, softmax_cross_entropy).
    fn scalar_of(&mut self, s: usize, ops: &[(Op, &'static Entry)]) -> usize {
        if self.nodes[s].shape.is_empty() && !self.c.chance(20) {
            return s;
        }
        let shape = self.nodes[s].shape.clone();
        let reductions: Vec<(Op, &'static Entry)> = ops
            .iter()
            .filter(|(op, e)| {
                e.pattern == Pattern::Unary
                    && e.literals.is_empty()
                    && op.infer_shape(&[shape.as_slice()]) == Ok(Vec::new())
            })
            .copied()
            .collect();
        if !reductions.is_empty() && self.c.chance(30) {
            let (op, e) = reductions[self.c.below(reductions.len())];
            if let Some(i) = self.push_op(op, e, vec![Arg::Old(s)]) {
                return i;
            }
        }
        let losses: Vec<(Op, &'static Entry)> = ops
            .iter()
            .filter(|(_, e)| matches!(e.pattern, Pattern::SameCount | Pattern::Labels))
            .copied()
            .collect();
        // mse (the first) is the simplest choice; try the others in turn after it.
        let start = if self.c.chance(40) {
            self.c.below(losses.len())
        } else {
            0
        };
        for k in 0..losses.len() {
            let (op, e) = losses[(start + k) % losses.len()];
            let args = self.args(op, e, Some(s));
            if let Some(i) = self.push_op(op, e, args) {
                if self.nodes[i].shape.is_empty() {
                    return i;
                }
            }
        }
        // No loss op can take it: the table has no mse (never the case today).
        s
    }

    /// Nodes without a consumer.
    fn sinks(&self) -> Vec<usize> {
        let mut used = vec![false; self.nodes.len()];
        for n in &self.nodes {
            for &a in n.args() {
                used[a] = true;
            }
        }
        (0..self.nodes.len()).filter(|&i| !used[i]).collect()
    }
}

/// The op called `name` with its entry, if the table has it.
fn find(ops: &[(Op, &'static Entry)], name: &str) -> Option<(Op, &'static Entry)> {
    ops.iter().copied().find(|(op, _)| op.name() == name)
}

/// A different shape with the same number of elements: `[m, 1]` <-> `[m]`, `[a, b]` ->
/// `[b, a]`, `[]` -> `[1]`.
fn reshaped(s: &[GDim]) -> Vec<GDim> {
    match s {
        [] => vec![GDim::Fixed(1)],
        [m, GDim::Fixed(1)] => vec![*m],
        [m] => vec![*m, GDim::Fixed(1)],
        [a, b] => vec![*b, *a],
        other => other.to_vec(),
    }
}

/// Grows a random valid network.
pub fn generate(c: &mut impl Choices, o: Options) -> Net {
    let ops = ops();
    assert!(
        !ops.is_empty(),
        "the op table has no op the generator knows"
    );
    let mut b = Builder {
        c,
        o,
        nodes: Vec::new(),
    };
    let n_ops = 1 + b.c.below(o.max_ops.max(1));
    for _ in 0..n_ops {
        if !(o.motifs && b.c.chance(50) && b.motif(&ops)) {
            b.grow(&ops);
        }
    }
    if b.nodes.is_empty() {
        // Every attempt failed (cannot happen with mse in the table): one mse of two leaves.
        let s = vec![GDim::Fixed(2)];
        let (mse, e) = ops
            .iter()
            .copied()
            .find(|(op, _)| op.name() == "mse")
            .expect("mse is in the op table");
        b.push_op(mse, e, vec![any(s.clone()), any(s)]);
    }

    // Every sink to a scalar, the scalars summed (one of them perhaps twice) into the loss.
    let sinks = b.sinks();
    let mut scalars: Vec<usize> = sinks.iter().map(|&s| b.scalar_of(s, &ops)).collect();
    let add = ops.iter().copied().find(|(op, _)| op.name() == "add");
    let loss = match (scalars.len(), add) {
        (1, _) if !b.c.chance(25) => scalars[0],
        (_, Some((add, e))) => {
            if scalars.len() == 1 || b.c.chance(25) {
                let k = b.c.below(scalars.len());
                scalars.push(scalars[k]);
            }
            let args = scalars.into_iter().map(Arg::Old).collect();
            b.push_op(add, e, args).expect("scalars add up")
        }
        _ => scalars[0],
    };
    b.nodes[loss].role = Role::Loss;

    if o.dsl {
        dsl_extras(&mut b, loss, &ops);
    }
    let mut nodes = b.nodes;
    // Names: by kind and index, so they are unique.
    for (i, n) in nodes.iter_mut().enumerate() {
        let prefix = match n.kind {
            Kind::Leaf { param: true, .. } => "w",
            Kind::Leaf { param: false, .. } => "x",
            Kind::Op { .. } if n.role == Role::Loss => "cost",
            Kind::Op { .. } => "h",
        };
        n.name = format!("{prefix}{i}");
    }
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    if o.dsl {
        // Statements in a random order half the time, else a few swaps or none.
        if b.c.chance(50) {
            for i in (1..order.len()).rev() {
                let j = b.c.below(i + 1);
                order.swap(i, j);
            }
        } else {
            for _ in 0..b.c.below(3) {
                let (i, j) = (b.c.below(order.len()), b.c.below(order.len()));
                order.swap(i, j);
            }
        }
    }
    Net { nodes, loss, order }
}

/// Params, `#[grad]` inputs and outputs.
fn dsl_extras<C: Choices>(b: &mut Builder<'_, C>, loss: usize, ops: &[(Op, &'static Entry)]) {
    // Leaves with a named dim are inputs (params have fixed shapes); others are params often.
    for i in 0..b.nodes.len() {
        if let Kind::Leaf { .. } = b.nodes[i].kind {
            let named = b.nodes[i].shape.iter().any(|d| matches!(d, GDim::Named(_)));
            // Labels are data: a plain input.
            let data = matches!(b.nodes[i].domain, Domain::Labels(_));
            let param = !named && !data && b.c.chance(60);
            let grad = !param && !data && b.c.chance(30);
            b.nodes[i].kind = Kind::Leaf { param, grad };
        }
    }
    // Some nodes on the loss path are also outputs.
    for i in 0..b.nodes.len() {
        if i != loss && !b.nodes[i].is_leaf() && b.c.chance(15) {
            b.nodes[i].role = Role::Output;
        }
    }
    // An output off the loss path, computed from nodes on it (no new leaf: those would
    // never be trained).
    if b.c.chance(30) {
        let unary: Vec<(Op, &'static Entry)> = ops
            .iter()
            .filter(|(_, e)| e.pattern == Pattern::Unary)
            .copied()
            .collect();
        let on_path = b.nodes.len();
        if !unary.is_empty() {
            let (op, e) = unary[b.c.below(unary.len())];
            let arg = b.c.below(on_path);
            if arg != loss {
                if let Some(i) = b.push_op(op, e, vec![Arg::Old(arg)]) {
                    b.nodes[i].role = Role::Output;
                }
            }
        }
    }
}

impl Net {
    /// Whether each node reaches the loss through arguments that get gradients (not through
    /// data such as labels): the nodes backward gives a gradient.
    pub fn reaches_loss(&self) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![self.loss];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                if let Kind::Op { op, args, .. } = &self.nodes[i].kind {
                    let e = entry(*op);
                    for (k, &a) in args.iter().enumerate() {
                        if e.is_none_or(|e| e.differentiable(k)) {
                            stack.push(a);
                        }
                    }
                }
            }
        }
        seen
    }

    /// The leaves, in creation order.
    pub fn leaves(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_leaf())
            .collect()
    }

    /// How many times each op is used.
    pub fn op_counts(&self) -> Vec<(Op, usize)> {
        Op::ALL
            .iter()
            .map(|&op| {
                let n = self.nodes.iter().filter(|n| n.op() == Some(op)).count();
                (op, n)
            })
            .collect()
    }

    /// Whether some node is an argument of several ops, or twice of one.
    pub fn has_fan_out(&self) -> bool {
        let mut uses = vec![0usize; self.nodes.len()];
        for n in &self.nodes {
            for &a in n.args() {
                uses[a] += 1;
            }
        }
        uses.iter().any(|&u| u > 1)
    }

    /// One statement of the DSL.
    pub fn statement(&self, i: usize) -> String {
        let n = &self.nodes[i];
        match &n.kind {
            Kind::Leaf { param, grad } => format!(
                "{}{} {}: {};",
                if *grad { "#[grad] " } else { "" },
                if *param { "param" } else { "input" },
                n.name,
                shape_text(&n.shape)
            ),
            Kind::Op { op, args, literals } => {
                let role = match n.role {
                    Role::Plain => "",
                    Role::Output => "output ",
                    Role::Loss => "loss ",
                };
                let mut written: Vec<String> =
                    args.iter().map(|&a| self.nodes[a].name.clone()).collect();
                written.extend(literals.iter().map(|l| format!("{l:?}")));
                format!("{role}{} = {op}({});", n.name, written.join(", "))
            }
        }
    }

    /// The network as the body of a `network!` invocation.
    pub fn to_dsl(&self, type_name: &str, elem: Option<&str>, doc: &str) -> String {
        let mut s = String::new();
        for line in doc.lines() {
            let _ = writeln!(s, "/// {line}");
        }
        if let Some(elem) = elem {
            let _ = writeln!(s, "#[elem({elem})]");
        }
        let _ = writeln!(s, "pub struct {type_name} {{");
        for &i in &self.order {
            if let Some(doc) = self.nodes[i].domain_doc() {
                let _ = writeln!(s, "    /// {doc}");
            }
            let _ = writeln!(s, "    {}", self.statement(i));
        }
        s.push('}');
        s
    }
}

impl fmt::Debug for Net {
    /// The network in the DSL, in creation order, each op with its inferred shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_leaf() {
                match n.domain_doc() {
                    Some(doc) => writeln!(f, "    {:<40} // {doc}", self.statement(i))?,
                    None => writeln!(f, "    {}", self.statement(i))?,
                }
            } else {
                writeln!(
                    f,
                    "    {:<40} // {}",
                    self.statement(i),
                    shape_text(&n.shape)
                )?;
            }
        }
        Ok(())
    }
}
