//! The plan of a network: the order forward computes nodes in, what each target (the loss,
//! each output) needs, and the two backward schedules (`backward`, and the training step's).
//!
//! The `network!` macro expands a plan into straight-line code; `miniflow-core`'s plan
//! executor runs the same plan at run time with the same kernels. Both read the schedules
//! here and nothing else, so what the plan decides is what runs.
//!
//! # Rules
//!
//! Every optimization the plan makes is a [`Rule`], listed in [`RULES`] with what it does and
//! when it applies, and implemented in one function of this module. Nothing outside this module
//! decides an optimization: a fused kernel is named by its rule's entry ([`RuleInfo::kernel`]),
//! and the expander and the executor follow each [`Step`] as given. Every rule can be turned off
//! ([`Rules`]); with [`Rules::NONE`] the plan is the reference the optimized plan is tested
//! against (every gradient that reaches the loss, every buffer zeroed then accumulated, no
//! fusion, every param updated after backward). Each decision is recorded in [`Plan::fired`],
//! so tests can count how often each rule fired on the networks they generate.

use crate::{KernelCall, Op, Operand};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

// ---------------------------------------------------------------------------------------------
// The graph the planner sees.
// ---------------------------------------------------------------------------------------------

/// What a leaf is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// Fed each step; `grad`: its gradient is wanted (`#[grad]` in the DSL).
    Input {
        /// Whether `backward` computes this input's gradient.
        grad: bool,
    },
    /// Trained: `backward` computes its gradient and a training step updates it.
    Param,
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// An input or a param.
    Leaf(Leaf),
    /// Computed by an op from [`Node::args`].
    Op(Op),
}

/// One node: its kind and its node arguments (by index; literals are not nodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Leaf or op.
    pub kind: NodeKind,
    /// The op's node arguments, in order; empty for a leaf.
    pub args: Vec<usize>,
}

impl Node {
    /// An input; `grad`: its gradient is wanted.
    pub fn input(grad: bool) -> Node {
        Node {
            kind: NodeKind::Leaf(Leaf::Input { grad }),
            args: Vec::new(),
        }
    }

    /// A param.
    pub fn param() -> Node {
        Node {
            kind: NodeKind::Leaf(Leaf::Param),
            args: Vec::new(),
        }
    }

    /// `op(args)`.
    pub fn op(op: Op, args: Vec<usize>) -> Node {
        Node {
            kind: NodeKind::Op(op),
            args,
        }
    }

    /// The op computing the node, if it is not a leaf.
    pub fn as_op(&self) -> Option<Op> {
        match self.kind {
            NodeKind::Op(op) => Some(op),
            NodeKind::Leaf(_) => None,
        }
    }

    /// Whether the node is a param.
    pub fn is_param(&self) -> bool {
        self.kind == NodeKind::Leaf(Leaf::Param)
    }

    /// Whether the node is an input.
    pub fn is_input(&self) -> bool {
        matches!(self.kind, NodeKind::Leaf(Leaf::Input { .. }))
    }

    /// Whether `backward` must produce this leaf's gradient (a param or a `#[grad]` input).
    pub fn wants_grad(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::Leaf(Leaf::Param | Leaf::Input { grad: true })
        )
    }
}

/// A network as the planner sees it: nodes (every argument an index into `nodes`), the loss
/// and the outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dag {
    /// The nodes, in any order (source order in the macro).
    pub nodes: Vec<Node>,
    /// The node backward starts from.
    pub loss: usize,
    /// Nodes that can be evaluated on their own.
    pub outputs: Vec<usize>,
}

/// Why a [`Dag`] cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// A node, the loss or an output names a node that does not exist.
    BadIndex {
        /// The node holding the bad reference (`None` for the loss or an output).
        node: Option<usize>,
        /// The index that does not exist.
        index: usize,
    },
    /// The nodes of one cycle, each an argument of the next.
    Cycle(Vec<usize>),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::BadIndex {
                node: Some(n),
                index,
            } => write!(f, "node {n} names node {index}, which does not exist"),
            PlanError::BadIndex { node: None, index } => {
                write!(
                    f,
                    "the loss or an output is node {index}, which does not exist"
                )
            }
            PlanError::Cycle(path) => write!(f, "the nodes {path:?} form a cycle"),
        }
    }
}

impl std::error::Error for PlanError {}

// ---------------------------------------------------------------------------------------------
// The rules.
// ---------------------------------------------------------------------------------------------

/// An optimization the plan may make. See [`RULES`] for what each does and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `backward` computes gradients only on paths from a param or `#[grad]` input to the loss.
    PruneGradients,
    /// A training step computes only what the params need: no `#[grad]` input's gradient.
    TrainParamsOnly,
    /// A gradient's first contribution overwrites its buffer and later ones add: no zeroing.
    WriteFirst,
    /// In a training step, a sigmoid used only as the `x` of a linear is folded into that
    /// linear's backward: no gradient buffer and no step for the sigmoid.
    FuseSigmoidLinear,
    /// In a training step, a param no later step reads is updated by its own contributions
    /// (`value += -lr·contribution`): no gradient stored, no update pass.
    SgdInPlace,
}

/// What a rule does, when it applies, and (for a fusion) the kernel it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule.
    pub rule: Rule,
    /// A short name, for counts and messages (`fuse-sigmoid-linear`).
    pub name: &'static str,
    /// What it changes.
    pub effect: &'static str,
    /// When it applies.
    pub when: &'static str,
    /// For a fusion: the kernel making the fused contribution.
    pub kernel: Option<KernelCall>,
}

/// Every rule, in the order the planner applies them.
pub const RULES: [RuleInfo; 5] = [
    RuleInfo {
        rule: Rule::PruneGradients,
        name: "prune-gradients",
        effect: "`backward` gives a node no gradient (no buffer, no kernel call)",
        when: "the node reaches the loss but depends on no param and no `#[grad]` input",
        kernel: None,
    },
    RuleInfo {
        rule: Rule::TrainParamsOnly,
        name: "train-params-only",
        effect: "a training step gives a node no gradient",
        when: "`backward` gives it one, but it depends on no param (only on `#[grad]` inputs)",
        kernel: None,
    },
    RuleInfo {
        rule: Rule::WriteFirst,
        name: "write-first",
        effect: "the first contribution to a gradient buffer overwrites it (`GradOut::write`) \
                 and later ones add; no buffer is zeroed",
        when: "always, for every stored gradient",
        kernel: None,
    },
    RuleInfo {
        rule: Rule::FuseSigmoidLinear,
        name: "fuse-sigmoid-linear",
        effect: "for `s = sigmoid(l)`, the contribution of `linear(s, w, b)` to `s` and the \
                 sigmoid's to `l` become one call, `dl (+)= s(1-s) ⊙ (g·wᵀ)`; `s` gets no \
                 gradient buffer",
        when: "in a training step, `s` is used once, as argument `x` of a linear; `l` is used \
               only by `s`; `s` is not the loss",
        kernel: Some(KernelCall::new(
            "linear::backward_through_sigmoid",
            &[Operand::Inner, Operand::Arg(1), Operand::Grad, Operand::Dx],
        )),
    },
    RuleInfo {
        rule: Rule::SgdInPlace,
        name: "sgd-in-place",
        effect: "a param's contributions go straight into its value \
                 (`GradOut::add_scaled(value, -lr)`); no gradient stored, no update after",
        when: "in a training step, no step from the param's first contribution on reads the \
               param's value",
        kernel: None,
    },
];

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 5] = [
        Rule::PruneGradients,
        Rule::TrainParamsOnly,
        Rule::WriteFirst,
        Rule::FuseSigmoidLinear,
        Rule::SgdInPlace,
    ];

    /// The rule's entry in [`RULES`].
    pub fn info(self) -> &'static RuleInfo {
        match self {
            Rule::PruneGradients => &RULES[0],
            Rule::TrainParamsOnly => &RULES[1],
            Rule::WriteFirst => &RULES[2],
            Rule::FuseSigmoidLinear => &RULES[3],
            Rule::SgdInPlace => &RULES[4],
        }
    }

    /// The rule's short name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of rules the planner may apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rules(u32);

impl Rules {
    /// Every rule: what `network!` uses.
    pub const ALL: Rules = Rules((1 << Rule::ALL.len()) - 1);
    /// No rule: the reference plan.
    pub const NONE: Rules = Rules(0);

    /// This set with `rule` added.
    pub fn with(self, rule: Rule) -> Rules {
        Rules(self.0 | rule.bit())
    }

    /// This set without `rule`.
    pub fn without(self, rule: Rule) -> Rules {
        Rules(self.0 & !rule.bit())
    }

    /// Whether `rule` is in the set.
    pub fn has(self, rule: Rule) -> bool {
        self.0 & rule.bit() != 0
    }
}

// ---------------------------------------------------------------------------------------------
// The plan.
// ---------------------------------------------------------------------------------------------

/// What computing one target takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The target node.
    pub target: usize,
    /// Op nodes to compute, in order.
    pub ops: Vec<usize>,
    /// Inputs that must be fed.
    pub inputs: Vec<usize>,
}

/// Where a [`Step`]'s contribution goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Overwrite the target's gradient buffer (`GradOut::write`).
    Write,
    /// Add to the target's gradient buffer (`GradOut::add`).
    Add,
    /// Add `-lr` times the contribution to the target param's value (`GradOut::add_scaled`):
    /// an SGD update in place.
    Update,
}

/// One kernel call of a backward schedule: op node `node`'s contribution to the gradient of
/// its node argument `arg_pos`, which goes to `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The op node whose backward this is.
    pub node: usize,
    /// Which of its node arguments the contribution is for.
    pub arg_pos: usize,
    /// The node receiving it: the argument, or for a fused step the node behind the fused one.
    pub target: usize,
    /// Where it goes.
    pub sink: Sink,
    /// The kernel to call: the op's backward kernel for `arg_pos`, or the fusion rule's.
    pub kernel: KernelCall,
    /// The node a fusion folded into this step (the kernel templates' `Operand::Inner`), if any.
    pub fused: Option<usize>,
}

impl Step {
    /// The nodes whose values the step's kernel reads.
    pub fn reads(&self, dag: &Dag) -> Vec<usize> {
        let args = dag.nodes.get(self.node).map_or(&[][..], |n| &n.args[..]);
        self.kernel.reads(args, self.node, self.fused)
    }
}

/// A backward pass: the steps in the order they run, and what they leave behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Gradient buffers to zero before the steps (empty under [`Rule::WriteFirst`]).
    pub zeroed: Vec<usize>,
    /// The kernel calls, in order (reverse forward order, each node's arguments in order).
    pub steps: Vec<Step>,
    /// Which nodes' gradients the schedule computes into their buffer (the loss's is the
    /// seed, 1); complete once the steps have run.
    pub grads: Vec<bool>,
    /// Training only: params updated in place by their steps ([`Rule::SgdInPlace`]).
    pub in_place: Vec<bool>,
    /// Training only: params updated after the steps, by `value -= lr·grad`.
    pub update_after: Vec<usize>,
}

/// One decision of a rule: `rule` applied at `node` (the node whose gradient is pruned, the
/// buffer written first, the sigmoid fused, the param updated in place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Firing {
    /// The rule.
    pub rule: Rule,
    /// Where it applied.
    pub node: usize,
}

/// The plan of a [`Dag`]. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The rules the planner was allowed to apply.
    pub rules: Rules,
    /// Every node, in forward order (Kahn's algorithm, ties broken by node index).
    pub order: Vec<usize>,
    /// What computing the loss takes.
    pub loss: Forward,
    /// What computing each output takes, in the order of [`Dag::outputs`].
    pub outputs: Vec<Forward>,
    /// `backward`: every gradient wanted, each readable afterwards.
    pub backward: Schedule,
    /// A training step: the gradients the params need, and their SGD updates.
    pub training: Schedule,
    /// Every decision the rules made.
    pub fired: Vec<Firing>,
}

impl Plan {
    /// How many times `rule` fired.
    pub fn count(&self, rule: Rule) -> usize {
        self.fired.iter().filter(|f| f.rule == rule).count()
    }
}

/// Kahn's algorithm over nodes given by their argument lists, ties broken by index so the
/// order is deterministic. On a cycle, returns one cycle's nodes, each an argument of the next.
/// Arguments must be valid indices (as [`plan`] checks first); others are ignored.
pub fn topo_order(args: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = args.len();
    let mut consumers = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (i, node_args) in args.iter().enumerate() {
        for &a in node_args.iter().filter(|&&a| a < n) {
            consumers[a].push(i);
            indegree[i] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &c in &consumers[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.push(Reverse(c));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk unresolved arguments from the first stuck node until one repeats.
    let stuck = |i: usize| i < n && indegree[i] > 0;
    let mut path = vec![(0..n).find(|&i| stuck(i)).unwrap_or(0)];
    loop {
        let last = path[path.len() - 1];
        let Some(&next) = args[last].iter().find(|&&a| stuck(a)) else {
            return Err(path);
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(pos);
            cycle.reverse();
            return Err(cycle);
        }
        path.push(next);
    }
}

/// Plans `dag` with the rules in `rules`.
pub fn plan(dag: &Dag, rules: Rules) -> Result<Plan, PlanError> {
    let n = dag.nodes.len();
    for (i, node) in dag.nodes.iter().enumerate() {
        if let Some(&bad) = node.args.iter().find(|&&a| a >= n) {
            return Err(PlanError::BadIndex {
                node: Some(i),
                index: bad,
            });
        }
    }
    if let Some(&bad) = std::iter::once(&dag.loss)
        .chain(&dag.outputs)
        .find(|&&t| t >= n)
    {
        return Err(PlanError::BadIndex {
            node: None,
            index: bad,
        });
    }
    let args: Vec<Vec<usize>> = dag.nodes.iter().map(|n| n.args.clone()).collect();
    let order = topo_order(&args).map_err(PlanError::Cycle)?;
    let g = Analysis::new(dag, &order);
    let mut fired = Vec::new();

    let backward_need = prune_gradients(&g, rules, &mut fired);
    let train_need = train_params_only(&g, &backward_need, rules, &mut fired);
    let fused = fuse_sigmoid_linear(&g, &train_need, rules, &mut fired);

    let mut backward = schedule(&g, &backward_need, &vec![false; n], rules, &mut fired);
    let mut training = schedule(&g, &train_need, &fused, rules, &mut Vec::new());
    sgd_in_place(&g, &mut training, rules, &mut fired);
    backward.in_place = vec![false; n];
    backward.update_after = Vec::new();

    let forward = |target: usize| {
        let needed = g.ancestors(target);
        Forward {
            target,
            ops: order
                .iter()
                .copied()
                .filter(|&i| needed[i] && dag.nodes[i].as_op().is_some())
                .collect(),
            inputs: (0..n)
                .filter(|&i| needed[i] && dag.nodes[i].is_input())
                .collect(),
        }
    };
    Ok(Plan {
        rules,
        loss: forward(dag.loss),
        outputs: dag.outputs.iter().map(|&o| forward(o)).collect(),
        order,
        backward,
        training,
        fired,
    })
}

/// What every rule asks of the graph.
struct Analysis<'a> {
    dag: &'a Dag,
    order: &'a [usize],
    /// Uses of each node as an argument, as (consumer, position).
    uses: Vec<Vec<(usize, usize)>>,
    /// Whether the node reaches the loss through arguments that get a gradient: whether
    /// d loss / d node is defined (and possibly not zero).
    reaches_loss: Vec<bool>,
}

impl<'a> Analysis<'a> {
    fn new(dag: &'a Dag, order: &'a [usize]) -> Self {
        let n = dag.nodes.len();
        let mut uses = vec![Vec::new(); n];
        for (i, node) in dag.nodes.iter().enumerate() {
            for (pos, &a) in node.args.iter().enumerate() {
                uses[a].push((i, pos));
            }
        }
        let mut reaches_loss = vec![false; n];
        reaches_loss[dag.loss] = true;
        for &i in order.iter().rev() {
            if !reaches_loss[i] {
                continue;
            }
            if let Some(op) = dag.nodes[i].as_op() {
                for (pos, &a) in dag.nodes[i].args.iter().enumerate() {
                    if op.differentiable(pos) {
                        reaches_loss[a] = true;
                    }
                }
            }
        }
        Analysis {
            dag,
            order,
            uses,
            reaches_loss,
        }
    }

    fn op(&self, i: usize) -> Option<Op> {
        self.dag.nodes[i].as_op()
    }

    fn args(&self, i: usize) -> &[usize] {
        &self.dag.nodes[i].args
    }

    /// Nodes reaching the loss that depend, through arguments that get a gradient, on a leaf
    /// passing `leaf`.
    fn on_path_from(&self, leaf: impl Fn(&Node) -> bool) -> Vec<bool> {
        let mut from: Vec<bool> = self.dag.nodes.iter().map(leaf).collect();
        for &i in self.order {
            if let Some(op) = self.op(i) {
                if self
                    .args(i)
                    .iter()
                    .enumerate()
                    .any(|(pos, &a)| from[a] && op.differentiable(pos))
                {
                    from[i] = true;
                }
            }
        }
        (0..from.len())
            .map(|i| from[i] && self.reaches_loss[i])
            .collect()
    }

    /// The nodes `target` is computed from, itself included.
    fn ancestors(&self, target: usize) -> Vec<bool> {
        let mut seen = vec![false; self.dag.nodes.len()];
        let mut stack = vec![target];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend_from_slice(self.args(i));
            }
        }
        seen
    }
}

/// [`Rule::PruneGradients`]: which nodes `backward` gives a gradient.
fn prune_gradients(g: &Analysis<'_>, rules: Rules, fired: &mut Vec<Firing>) -> Vec<bool> {
    if !rules.has(Rule::PruneGradients) {
        return g.reaches_loss.clone();
    }
    let need = g.on_path_from(Node::wants_grad);
    for (i, (&reaches, &needed)) in g.reaches_loss.iter().zip(&need).enumerate() {
        if reaches && !needed {
            fired.push(Firing {
                rule: Rule::PruneGradients,
                node: i,
            });
        }
    }
    need
}

/// [`Rule::TrainParamsOnly`]: which nodes a training step gives a gradient.
fn train_params_only(
    g: &Analysis<'_>,
    backward_need: &[bool],
    rules: Rules,
    fired: &mut Vec<Firing>,
) -> Vec<bool> {
    if !rules.has(Rule::TrainParamsOnly) {
        return backward_need.to_vec();
    }
    let from_params = g.on_path_from(Node::is_param);
    let need: Vec<bool> = (0..backward_need.len())
        .map(|i| backward_need[i] && from_params[i])
        .collect();
    for (i, (&before, &after)) in backward_need.iter().zip(&need).enumerate() {
        if before && !after {
            fired.push(Firing {
                rule: Rule::TrainParamsOnly,
                node: i,
            });
        }
    }
    need
}

/// [`Rule::FuseSigmoidLinear`]: the sigmoids folded into the linear consuming them, in a
/// training step with the gradients `need`.
fn fuse_sigmoid_linear(
    g: &Analysis<'_>,
    need: &[bool],
    rules: Rules,
    fired: &mut Vec<Firing>,
) -> Vec<bool> {
    let n = need.len();
    if !rules.has(Rule::FuseSigmoidLinear) {
        return vec![false; n];
    }
    let fused: Vec<bool> = (0..n)
        .map(|s| {
            g.op(s) == Some(Op::Sigmoid)
                && s != g.dag.loss
                && need[s]
                && matches!(g.uses[s].as_slice(), [(c, 0)] if g.op(*c) == Some(Op::Linear))
                && g.args(s)
                    .first()
                    .is_some_and(|&l| need[l] && g.uses[l].len() == 1)
        })
        .collect();
    for (s, &f) in fused.iter().enumerate() {
        if f {
            fired.push(Firing {
                rule: Rule::FuseSigmoidLinear,
                node: s,
            });
        }
    }
    fused
}

/// The backward schedule giving the nodes in `need` their gradient, with the nodes in `fused`
/// folded into their consumer ([`Rule::FuseSigmoidLinear`]) and [`Rule::WriteFirst`] deciding
/// each step's sink. Every sink is a gradient buffer; [`sgd_in_place`] may redirect some.
fn schedule(
    g: &Analysis<'_>,
    need: &[bool],
    fused: &[bool],
    rules: Rules,
    fired: &mut Vec<Firing>,
) -> Schedule {
    let n = need.len();
    let write_first = rules.has(Rule::WriteFirst);
    let mut written = vec![false; n];
    let mut steps = Vec::new();
    for &i in g.order.iter().rev() {
        let Some(op) = g.op(i) else { continue };
        if !need[i] || fused[i] {
            continue;
        }
        for (arg_pos, &a) in g.args(i).iter().enumerate() {
            let Some(kernel) = op.backward_kernel(arg_pos) else {
                continue; // data, such as labels: no gradient
            };
            if !need[a] {
                continue;
            }
            let (target, kernel, inner) = if fused[a] {
                let Some(fusion) = Rule::FuseSigmoidLinear.info().kernel else {
                    continue;
                };
                match g.args(a).first() {
                    Some(&l) => (l, fusion, Some(a)),
                    None => continue,
                }
            } else {
                (a, kernel, None)
            };
            let first = !std::mem::replace(&mut written[target], true);
            let sink = if first && write_first {
                fired.push(Firing {
                    rule: Rule::WriteFirst,
                    node: target,
                });
                Sink::Write
            } else {
                Sink::Add
            };
            steps.push(Step {
                node: i,
                arg_pos,
                target,
                sink,
                kernel,
                fused: inner,
            });
        }
    }
    let grads: Vec<bool> = (0..n).map(|i| need[i] && !fused[i]).collect();
    let zeroed = if write_first {
        Vec::new()
    } else {
        (0..n).filter(|&i| written[i]).collect()
    };
    let params = (0..n).filter(|&i| grads[i] && g.dag.nodes[i].is_param());
    Schedule {
        zeroed,
        steps,
        grads: grads.clone(),
        in_place: vec![false; n],
        update_after: params.collect(),
    }
}

/// [`Rule::SgdInPlace`]: redirects the steps of each param that no step from its first
/// contribution on reads straight into its value.
fn sgd_in_place(g: &Analysis<'_>, training: &mut Schedule, rules: Rules, fired: &mut Vec<Firing>) {
    if !rules.has(Rule::SgdInPlace) {
        return;
    }
    let n = g.dag.nodes.len();
    // One pass: each node's first contribution, and the last step reading its value.
    let mut first = vec![None; n];
    let mut last_read = vec![None; n];
    for (k, step) in training.steps.iter().enumerate() {
        first[step.target].get_or_insert(k);
        for r in step.reads(g.dag) {
            last_read[r] = Some(k);
        }
    }
    for p in 0..n {
        if !(g.dag.nodes[p].is_param() && training.grads[p]) {
            continue;
        }
        let Some(first) = first[p] else { continue };
        // A step from the first contribution on reads the param: it must see the old value.
        if last_read[p].is_some_and(|r| r >= first) {
            continue;
        }
        for s in training.steps.iter_mut().filter(|s| s.target == p) {
            s.sink = Sink::Update;
        }
        training.in_place[p] = true;
        training.grads[p] = false;
        training.zeroed.retain(|&z| z != p);
        training.update_after.retain(|&u| u != p);
        fired.push(Firing {
            rule: Rule::SgdInPlace,
            node: p,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The course network: X, y, W, b; f = linear(X, W, b); a = sigmoid(f); c = mse(y, a).
    fn course(grad_x: bool) -> Dag {
        Dag {
            nodes: vec![
                Node::input(grad_x),
                Node::input(false),
                Node::param(),
                Node::param(),
                Node::op(Op::Linear, vec![0, 2, 3]),
                Node::op(Op::Sigmoid, vec![4]),
                Node::op(Op::Mse, vec![1, 5]),
            ],
            loss: 6,
            outputs: vec![5],
        }
    }

    /// Two layers: l1 = linear(x, w1, b1); s1 = sigmoid(l1); l2 = linear(s1, w2, b2).
    fn two_layer() -> Dag {
        Dag {
            nodes: vec![
                Node::input(false),
                Node::input(false),
                Node::param(),
                Node::param(),
                Node::param(),
                Node::param(),
                Node::op(Op::Linear, vec![0, 2, 3]),
                Node::op(Op::Sigmoid, vec![6]),
                Node::op(Op::Linear, vec![7, 4, 5]),
                Node::op(Op::Mse, vec![1, 8]),
            ],
            loss: 9,
            outputs: vec![],
        }
    }

    fn targets(s: &Schedule) -> Vec<(usize, usize, Sink)> {
        s.steps.iter().map(|s| (s.node, s.target, s.sink)).collect()
    }

    #[test]
    fn rule_table_is_indexed_by_rule() {
        for r in Rule::ALL {
            assert_eq!(r.info().rule, r);
        }
        assert_eq!(RULES.len(), Rule::ALL.len());
        assert!(Rules::ALL.has(Rule::SgdInPlace) && !Rules::NONE.has(Rule::WriteFirst));
        assert!(!Rules::ALL.without(Rule::WriteFirst).has(Rule::WriteFirst));
        assert_eq!(
            Rules::NONE.with(Rule::WriteFirst).without(Rule::WriteFirst),
            Rules::NONE
        );
    }

    #[test]
    fn backward_in_reverse_order_first_written() {
        let p = plan(&course(true), Rules::ALL).unwrap();
        assert_eq!(p.order, [0, 1, 2, 3, 4, 5, 6]);
        use Sink::*;
        assert_eq!(
            targets(&p.backward),
            [
                (6, 5, Write),
                (5, 4, Write),
                (4, 0, Write),
                (4, 2, Write),
                (4, 3, Write)
            ]
        );
        // y is a plain input: its gradient is pruned; so is nothing else.
        assert_eq!(p.count(Rule::PruneGradients), 1);
        assert!(!p.backward.grads[1]);
        assert!(p.backward.zeroed.is_empty());
    }

    #[test]
    fn the_reference_plan_zeroes_and_accumulates_everything_reaching_the_loss() {
        let p = plan(&course(false), Rules::NONE).unwrap();
        assert!(p.fired.is_empty());
        assert!(p.backward.steps.iter().all(|s| s.sink == Sink::Add));
        assert_eq!(p.backward.zeroed, [0, 1, 2, 3, 4, 5]);
        assert!(
            p.backward.grads.iter().all(|&g| g),
            "every node reaches the loss"
        );
        assert_eq!(p.training.update_after, [2, 3]);
        assert!(p.training.in_place.iter().all(|&i| !i));
    }

    #[test]
    fn training_skips_input_gradients() {
        let p = plan(&course(true), Rules::ALL).unwrap();
        assert!(p.backward.grads[0]);
        assert!(!p.training.grads[0]);
        assert!(p.training.steps.iter().all(|s| s.target != 0));
        assert_eq!(p.count(Rule::TrainParamsOnly), 1);
        let p = plan(&course(true), Rules::ALL.without(Rule::TrainParamsOnly)).unwrap();
        assert!(p.training.steps.iter().any(|s| s.target == 0));
    }

    #[test]
    fn sigmoid_folds_into_the_linear_consuming_it() {
        let p = plan(&two_layer(), Rules::ALL).unwrap();
        let into_l1: Vec<&Step> = p.training.steps.iter().filter(|s| s.target == 6).collect();
        assert_eq!(into_l1.len(), 1);
        assert_eq!((into_l1[0].node, into_l1[0].fused), (8, Some(7)));
        assert_eq!(into_l1[0].kernel.path, "linear::backward_through_sigmoid");
        assert_eq!(into_l1[0].reads(&two_layer()), [7, 4], "s and w2");
        assert!(!p.training.grads[7], "no buffer for s");
        assert!(p
            .training
            .steps
            .iter()
            .all(|s| s.node != 7 && s.target != 7));
        // backward keeps every gradient readable.
        assert!(p.backward.steps.iter().all(|s| s.fused.is_none()));
        // Every param is read only before its own contributions.
        assert_eq!(p.count(Rule::SgdInPlace), 4);
        assert!(p.training.update_after.is_empty());
        assert!([2, 3, 4, 5].iter().all(|&i| p.training.in_place[i]));
    }

    #[test]
    fn a_sigmoid_of_a_param_fuses_and_its_param_is_updated_in_place() {
        // Issue 8's network: s = sigmoid(P); o = linear(s, W, b); c = mse(y, o).
        let dag = Dag {
            nodes: vec![
                Node::input(false),
                Node::param(),
                Node::param(),
                Node::param(),
                Node::op(Op::Sigmoid, vec![1]),
                Node::op(Op::Linear, vec![4, 2, 3]),
                Node::op(Op::Mse, vec![0, 5]),
            ],
            loss: 6,
            outputs: vec![],
        };
        let p = plan(&dag, Rules::ALL).unwrap();
        let step = p.training.steps.iter().find(|s| s.fused.is_some()).unwrap();
        assert_eq!((step.target, step.sink), (1, Sink::Update));
    }

    #[test]
    fn fusion_needs_single_uses() {
        // l1 also feeds an add: not fused.
        let mut dag = two_layer();
        dag.nodes.push(Node::op(Op::Add, vec![6, 6]));
        dag.nodes.push(Node::op(Op::Sum, vec![10]));
        dag.nodes.push(Node::op(Op::Add, vec![9, 11]));
        dag.loss = 12;
        let p = plan(&dag, Rules::ALL).unwrap();
        assert_eq!(p.count(Rule::FuseSigmoidLinear), 0);
    }

    #[test]
    fn a_param_read_after_its_update_is_updated_at_the_end() {
        // o = linear(w, w, b): dw (position 1) reads w as x after dx (position 0) updated it.
        let dag = Dag {
            nodes: vec![
                Node::input(false),
                Node::param(),
                Node::param(),
                Node::op(Op::Linear, vec![1, 1, 2]),
                Node::op(Op::Mse, vec![0, 3]),
            ],
            loss: 4,
            outputs: vec![],
        };
        let p = plan(&dag, Rules::ALL).unwrap();
        assert!(!p.training.in_place[1] && p.training.grads[1]);
        assert!(p.training.in_place[2], "b is never read by backward");
        assert_eq!(p.training.update_after, [1]);
    }

    #[test]
    fn outputs_compute_only_what_they_need() {
        let p = plan(&course(false), Rules::ALL).unwrap();
        assert_eq!(
            p.outputs[0],
            Forward {
                target: 5,
                ops: vec![4, 5],
                inputs: vec![0]
            }
        );
        assert_eq!(p.loss.inputs, [0, 1]);
    }

    #[test]
    fn labels_get_no_step() {
        let dag = Dag {
            nodes: vec![
                Node::input(false),
                Node::input(false),
                Node::param(),
                Node::op(Op::Matmul, vec![0, 2]),
                Node::op(Op::SoftmaxCrossEntropy, vec![3, 1]),
            ],
            loss: 4,
            outputs: vec![],
        };
        for rules in [Rules::ALL, Rules::NONE] {
            let p = plan(&dag, rules).unwrap();
            assert!(!p.backward.grads[1]);
            assert!(p.backward.steps.iter().all(|s| s.target != 1));
        }
    }

    #[test]
    fn bad_graphs_are_errors_not_panics() {
        let mut dag = course(false);
        dag.nodes[4].args[0] = 99;
        assert_eq!(
            plan(&dag, Rules::ALL).unwrap_err(),
            PlanError::BadIndex {
                node: Some(4),
                index: 99
            }
        );
        let mut dag = course(false);
        dag.nodes[4].args[0] = 5;
        assert_eq!(
            plan(&dag, Rules::ALL).unwrap_err(),
            PlanError::Cycle(vec![5, 4])
        );
        let mut dag = course(false);
        dag.loss = 7;
        assert!(plan(&dag, Rules::ALL).is_err());
    }
}
