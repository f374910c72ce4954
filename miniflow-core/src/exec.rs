//! The plan executor: runs a network's plan ([`miniflow_ops::plan`]) at run time on
//! dynamic-rank buffers, with the same kernels, in the same order and with the same sinks as
//! the code `network!` expands from that plan.
//!
//! The same engine runs [`Graph`](crate::Graph) as a [`Network`](crate::Network): both hold a
//! `Program` (the plan and what running it needs, checked once) and call the functions of this
//! module, so there is one copy of the schedule logic.
//!
//! It is how the plan's decisions are tested at volume. Built with [`Rules::NONE`] it is the
//! reference (every gradient that reaches the loss, buffers zeroed then accumulated, no
//! fusion, every param updated after backward); with [`Rules::ALL`] it runs exactly what the
//! macro would expand. The two are compared on many thousands of random networks without
//! compiling any of them, and a compiled network is compared with its executor bit for bit.
//!
//! ```
//! use miniflow_core::exec::Executor;
//! use miniflow_core::plan::{Dag, Node, Rules};
//! use miniflow_core::Op;
//! use ndarray::array;
//!
//! // The course network: a = sigmoid(linear(X, W, b)); cost = mse(y, a).
//! let dag = Dag {
//!     nodes: vec![
//!         Node::input(false), Node::input(false), Node::param(), Node::param(),
//!         Node::op(Op::Linear, vec![0, 2, 3]), Node::op(Op::Sigmoid, vec![4]),
//!         Node::op(Op::Mse, vec![1, 5]),
//!     ],
//!     loss: 6,
//!     outputs: vec![],
//! };
//! let names = ["X", "y", "W", "b", "f", "a", "cost"].map(String::from).to_vec();
//! let mut ex = Executor::<f64>::new(names, dag, vec![Vec::new(); 7], Rules::ALL)?;
//! ex.set_value(0, array![[-1., -2.], [-1., -2.]].into_dyn())?;
//! ex.set_value(1, array![1., 2.].into_dyn())?;
//! ex.set_value(2, array![[2.], [3.]].into_dyn())?;
//! ex.set_value(3, array![-3.].into_dyn())?;
//! let cost = ex.forward()?;
//! assert!((cost - 2.4999498960133932).abs() < 1e-12);
//! ex.backward()?;
//! let dw = ex.grad(2).expect("W has a gradient");
//! assert!((dw[[0, 0]] - 5.01028709e-05).abs() < 1e-12);
//! # Ok::<(), miniflow_core::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::network::{DimSpec, NetworkSpec, NodeKind};
use crate::ops::{self, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use miniflow_ops::plan::{
    self, Dag, Forward, Leaf, Node, NodeKind as PlanKind, Plan, PlanError, Rules, Schedule, Sink,
};
use miniflow_ops::Op;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// A network's plan, run at run time. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Executor<T> {
    prog: Program,
    values: Vec<ArrayD<T>>,
    grads: Vec<ArrayD<T>>,
    /// Whether each leaf has a value.
    set: Vec<bool>,
    /// Which schedule's gradients `grads` holds, if they are current.
    grads_from: Option<Pass>,
    /// Whether the values are those of a forward of the current leaves.
    fresh: bool,
}

impl<T: Scalar> Executor<T> {
    /// Plans `dag` with `rules`. `names` and `attrs` (each op's literals) are per node.
    pub fn new(names: Vec<String>, dag: Dag, attrs: Vec<Vec<f64>>, rules: Rules) -> Result<Self> {
        let decl = vec![None; dag.nodes.len()];
        Ok(Executor::with_program(Program::new(
            names, dag, attrs, decl, rules,
        )?))
    }

    fn with_program(prog: Program) -> Self {
        let n = prog.dag.nodes.len();
        Executor {
            prog,
            values: vec![ArrayD::zeros(IxDyn(&[])); n],
            grads: vec![ArrayD::zeros(IxDyn(&[])); n],
            set: vec![false; n],
            grads_from: None,
            fresh: false,
        }
    }

    /// The executor of a generated network's spec, planned with `rules`; nodes are numbered as
    /// in `spec.nodes`. Named dims of the inputs' declared shapes are bound at each forward,
    /// as generated networks bind them.
    pub fn from_spec(spec: &NetworkSpec, rules: Rules) -> Result<Self> {
        let index = |name: &str| -> Result<usize> {
            spec.nodes
                .iter()
                .position(|n| n.name == name)
                .ok_or_else(|| Error::UnknownNode {
                    name: name.to_string(),
                    suggestion: None,
                })
        };
        let nodes = spec
            .nodes
            .iter()
            .map(|n| {
                Ok(match n.kind {
                    NodeKind::Input { grad } => Node::input(grad),
                    NodeKind::Param => Node::param(),
                    NodeKind::Op(op) => {
                        Node::op(op, n.args.iter().map(|a| index(a)).collect::<Result<_>>()?)
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dag = Dag {
            nodes,
            loss: index(&spec.loss)?,
            outputs: spec
                .outputs
                .iter()
                .map(|o| index(o))
                .collect::<Result<_>>()?,
        };
        let names = spec.nodes.iter().map(|n| n.name.to_string()).collect();
        let attrs = spec.nodes.iter().map(|n| n.attrs.to_vec()).collect();
        let decl = spec
            .nodes
            .iter()
            .map(|n| match n.kind {
                NodeKind::Input { .. } => n.shape.as_deref().map(<[DimSpec]>::to_vec),
                _ => None,
            })
            .collect();
        Ok(Executor::with_program(Program::new(
            names, dag, attrs, decl, rules,
        )?))
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.prog.plan
    }

    /// The graph being run.
    pub fn dag(&self) -> &Dag {
        &self.prog.dag
    }

    /// The node called `name`.
    pub fn index(&self, name: &str) -> Result<usize> {
        let names = &self.prog.names;
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| Error::UnknownNode {
                name: name.to_string(),
                suggestion: crate::error::closest(name, names.iter().map(String::as_str)),
            })
    }

    fn leaf_error(&self, node: usize) -> Error {
        Error::WrongKind {
            name: self
                .prog
                .names
                .get(node)
                .cloned()
                .unwrap_or_else(|| format!("#{node}")),
            wanted: "a leaf (an input or a param)",
            actual: "an op node or no node",
        }
    }

    /// Sets leaf `node`'s value. Shapes are checked by the ops at the next forward.
    pub fn set_value(&mut self, node: usize, value: ArrayD<T>) -> Result<()> {
        match self.prog.dag.nodes.get(node) {
            Some(n) if n.as_op().is_none() => {
                self.values[node] = value;
                self.set[node] = true;
                self.fresh = false;
                self.grads_from = None;
                Ok(())
            }
            _ => Err(self.leaf_error(node)),
        }
    }

    /// Node `node`'s value: a leaf's as set, an op's from the last forward.
    pub fn value(&self, node: usize) -> Option<ArrayViewD<'_, T>> {
        self.values.get(node).map(|v| v.view())
    }

    /// d loss / d node, if the last backward ([`backward`](Executor::backward) or
    /// [`sgd_step`](Executor::sgd_step)) computed and kept it.
    pub fn grad(&self, node: usize) -> Option<ArrayViewD<'_, T>> {
        let schedule = self.prog.schedule(self.grads_from?);
        if *schedule.grads.get(node)? {
            Some(self.grads[node].view())
        } else {
            None
        }
    }

    /// Computes the loss.
    pub fn forward(&mut self) -> Result<T> {
        self.fresh = false;
        self.grads_from = None;
        run_forward(
            &self.prog,
            &mut self.values,
            &self.set,
            Target::Loss,
            RunOpts::FULL,
        )?;
        let loss = self.prog.loss_value(&self.values)?;
        self.fresh = true;
        Ok(loss)
    }

    /// Computes output `k` (of [`Dag::outputs`]) from the leaves it needs.
    pub fn evaluate(&mut self, k: usize) -> Result<ArrayViewD<'_, T>> {
        run_forward(
            &self.prog,
            &mut self.values,
            &self.set,
            Target::Output(k),
            RunOpts::FULL,
        )?;
        let target = self.prog.forward(Target::Output(k))?.target;
        Ok(self.values[target].view())
    }

    /// Runs the `backward` schedule from the last forward.
    pub fn backward(&mut self) -> Result<()> {
        if !self.fresh {
            return Err(Error::BackwardBeforeForward);
        }
        self.run(Pass::Backward, T::zero())
    }

    /// One SGD training step: forward, then the training schedule (params updated in place
    /// where the plan says, the rest after); returns the loss before the update.
    pub fn sgd_step(&mut self, lr: T) -> Result<T> {
        let loss = self.forward()?;
        self.fresh = false;
        self.run(Pass::Training, lr)?;
        Ok(loss)
    }

    fn run(&mut self, pass: Pass, lr: T) -> Result<()> {
        self.grads_from = None;
        run_schedule(
            &self.prog,
            &mut self.values,
            &mut self.grads,
            pass,
            lr,
            false,
        )?;
        self.grads_from = Some(pass);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The engine: a checked plan, and the functions that run it on a network's buffers.
// ---------------------------------------------------------------------------------------------

/// Which backward schedule of a plan: `backward`'s or the training step's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    Backward,
    Training,
}

/// Which forward pass: the loss's, or output `k`'s (of [`Dag::outputs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Loss,
    Output(usize),
}

/// How to run a forward pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunOpts {
    /// Check mode: a non-finite leaf read, or value computed, is [`Error::NonFinite`].
    pub check: bool,
    /// Infer every op's shape and size its buffer. The caller may skip it only when no leaf
    /// has changed shape since this same pass last ran to the end (the buffers fit then).
    pub infer: bool,
}

impl RunOpts {
    /// Shapes inferred, no check mode.
    pub const FULL: RunOpts = RunOpts {
        check: false,
        infer: true,
    };
}

/// A planned network, checked once, with what running it needs: per node names, literals and
/// inputs' declared shapes, and what the passes read. [`Executor`] and
/// [`Graph`](crate::Graph) run it with [`run_forward`] and [`run_schedule`].
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub(crate) names: Vec<String>,
    pub(crate) dag: Dag,
    pub(crate) attrs: Vec<Vec<f64>>,
    pub(crate) plan: Plan,
    /// Each input's declared shape, whose named dims are bound at each forward (`None`:
    /// undeclared, or not an input).
    decl: Vec<Option<Vec<DimSpec>>>,
    /// The leaves each forward's ops read (the loss's, then each output's), by index.
    leaves: Vec<Vec<usize>>,
    /// For each step of `backward` (0) and of the training step (1): whether it makes its
    /// target's last contribution (when check mode checks the target).
    last: [Vec<bool>; 2],
    /// The nodes with a gradient buffer in either schedule: both passes size them all, so
    /// switching between them never allocates.
    grad_bufs: Vec<usize>,
}

impl Program {
    /// Plans `dag` with `rules` and checks the plan. `names`, `attrs` (each op's literals) and
    /// `decl` (each input's declared shape) are per node.
    pub(crate) fn new(
        names: Vec<String>,
        dag: Dag,
        attrs: Vec<Vec<f64>>,
        decl: Vec<Option<Vec<DimSpec>>>,
        rules: Rules,
    ) -> Result<Self> {
        let n = dag.nodes.len();
        if names.len() != n || attrs.len() != n || decl.len() != n {
            return Err(Error::OpShape {
                node: "(executor)".into(),
                message: format!(
                    "{n} nodes, but {} names, {} literal lists and {} declared shapes",
                    names.len(),
                    attrs.len(),
                    decl.len()
                ),
            });
        }
        let plan = plan::plan(&dag, rules).map_err(|e| match e {
            PlanError::Cycle(path) => {
                let mut path: Vec<String> = path.iter().map(|&i| names[i].clone()).collect();
                if let Some(first) = path.first().cloned() {
                    path.push(first);
                }
                Error::Cycle { path }
            }
            PlanError::BadIndex { index, .. } => Error::UnknownNode {
                name: format!("#{index}"),
                suggestion: None,
            },
        })?;
        for (i, node) in dag.nodes.iter().enumerate() {
            if let Some(op) = node.as_op() {
                for (&value, pos) in attrs[i].iter().zip(op.literals()) {
                    op.check_literal(pos, value)
                        .map_err(|message| Error::BadLiteral {
                            node: names[i].clone(),
                            message,
                        })?;
                }
            }
        }
        // A step writing into a param its own kernel reads would read a half-updated value.
        for step in &plan.training.steps {
            if step.sink == Sink::Update && step.reads(&dag).contains(&step.target) {
                return Err(Error::OpShape {
                    node: names[step.node].clone(),
                    message:
                        "internal error in the plan: a step updates a param its own kernel reads"
                            .into(),
                });
            }
        }
        let leaves = std::iter::once(&plan.loss)
            .chain(&plan.outputs)
            .map(|f| {
                let mut leaves: Vec<usize> = f
                    .ops
                    .iter()
                    .flat_map(|&i| dag.nodes[i].args.iter().copied())
                    .filter(|&a| dag.nodes[a].as_op().is_none())
                    .collect();
                leaves.sort_unstable();
                leaves.dedup();
                leaves
            })
            .collect();
        let last = [&plan.backward, &plan.training].map(|s| {
            let mut last_of = vec![usize::MAX; n];
            for (k, step) in s.steps.iter().enumerate() {
                last_of[step.target] = k;
            }
            (0..s.steps.len())
                .map(|k| last_of[s.steps[k].target] == k)
                .collect()
        });
        let grad_bufs = (0..n)
            .filter(|&i| plan.backward.grads[i] || plan.training.grads[i])
            .collect();
        Ok(Program {
            names,
            dag,
            attrs,
            plan,
            decl,
            leaves,
            last,
            grad_bufs,
        })
    }

    /// The forward pass computing `target`.
    pub(crate) fn forward(&self, target: Target) -> Result<&Forward> {
        match target {
            Target::Loss => Ok(&self.plan.loss),
            Target::Output(k) => self.plan.outputs.get(k).ok_or_else(|| Error::UnknownNode {
                name: format!("output #{k}"),
                suggestion: None,
            }),
        }
    }

    /// The schedule of `pass`.
    pub(crate) fn schedule(&self, pass: Pass) -> &Schedule {
        match pass {
            Pass::Backward => &self.plan.backward,
            Pass::Training => &self.plan.training,
        }
    }

    /// The loss after a forward: a scalar, or [`Error::Shape`].
    pub(crate) fn loss_value<T: Scalar>(&self, values: &[ArrayD<T>]) -> Result<T> {
        let loss = &values[self.dag.loss];
        if loss.ndim() != 0 {
            return Err(Error::Shape {
                node: self.names[self.dag.loss].clone(),
                expected: "[] (a scalar loss)".into(),
                found: loss.shape().to_vec(),
            });
        }
        Ok(loss.iter().next().copied().unwrap_or_else(T::zero))
    }

    /// The names of node `i`'s arguments (for an error: this allocates).
    fn arg_names(&self, i: usize) -> Vec<&str> {
        self.dag.nodes[i]
            .args
            .iter()
            .map(|&a| self.names[a].as_str())
            .collect()
    }

    /// The [`Error`] for a kernel's failure at node `i`.
    fn kernel_error(&self, i: usize, e: KernelError) -> Error {
        e.into_error(&self.names[i], &self.arg_names(i))
    }

    /// Binds the named dims of the inputs `f` reads, in order, as generated code does: the
    /// first input to use a dim fixes its size, and a later one that disagrees is
    /// [`Error::InconsistentDim`].
    fn bind<T>(&self, values: &[ArrayD<T>], f: &Forward) -> Result<()> {
        let bindings = || {
            f.inputs.iter().flat_map(move |&i| {
                self.decl[i]
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter_map(move |(axis, d)| match d {
                        DimSpec::Named(dim) => {
                            Some((i, *dim, values[i].shape().get(axis).copied().unwrap_or(0)))
                        }
                        DimSpec::Fixed(_) => None,
                    })
            })
        };
        for (k, (input, dim, size)) in bindings().enumerate() {
            let first = bindings().take(k).find(|&(_, d, _)| d == dim);
            if let Some((first, _, first_size)) = first.filter(|&(_, _, s)| s != size) {
                return Err(Error::InconsistentDim {
                    dim: dim.to_string(),
                    first: self.names[first].clone(),
                    first_size,
                    second: self.names[input].clone(),
                    second_size: size,
                });
            }
        }
        Ok(())
    }

    /// Infers the shape of every op `f` computes, then sizes the buffers that differ. A shape
    /// error is reported before any buffer changes.
    fn infer_and_size<T: Scalar>(&self, values: &mut [ArrayD<T>], f: &Forward) -> Result<()> {
        let mut shapes: Vec<Option<Vec<usize>>> = vec![None; self.dag.nodes.len()];
        for &i in &f.ops {
            let node = &self.dag.nodes[i];
            let Some(op) = node.as_op() else { continue };
            let args: Vec<&[usize]> = node
                .args
                .iter()
                .map(|&a| shapes[a].as_deref().unwrap_or(values[a].shape()))
                .collect();
            let shape = op.infer_shape(&args).map_err(|e| Error::OpShape {
                node: self.names[i].clone(),
                message: shape_message(op, &e.message(op, &self.arg_names(i)), &args),
            })?;
            shapes[i] = Some(shape);
        }
        for &i in &f.ops {
            if let Some(shape) = &shapes[i] {
                if values[i].shape() != shape.as_slice() {
                    values[i] = zeros(&self.names[i], shape)?;
                }
            }
        }
        Ok(())
    }
}

/// A shape error's message, with a hint where a usual mistake explains it.
pub(crate) fn shape_message(op: Op, message: &str, shapes: &[&[usize]]) -> String {
    let mut message = message.to_string();
    if op == Op::SoftmaxCrossEntropy {
        match shapes.get(1) {
            Some([m, 1]) => message.push_str(&format!(
                "; the labels are a [{m}, 1] column: pass `.column(0)` of it"
            )),
            Some([_, _]) => message.push_str(
                "; labels are class indices (a 1-D array of whole numbers), not one-hot rows: pass the argmax of each row",
            ),
            _ => {}
        }
    }
    message
}

/// Read access to a node-indexed slice of buffers but one, whose buffer is borrowed mutably
/// beside it (splitting the borrow costs nothing; moving the buffer out would build an empty
/// dynamic-rank array each time).
struct Others<'a, T> {
    before: &'a [ArrayD<T>],
    after: &'a [ArrayD<T>],
}

impl<'a, T> Others<'a, T> {
    /// Every buffer of `all`.
    fn all(all: &'a [ArrayD<T>]) -> Self {
        Others {
            before: all,
            after: &[],
        }
    }

    /// Node `a`'s buffer; `None` for the one borrowed mutably.
    fn get(&self, a: usize) -> Option<&'a ArrayD<T>> {
        match a.checked_sub(self.before.len()) {
            None => self.before.get(a),
            Some(k) => self.after.get(k.checked_sub(1)?),
        }
    }

    /// Node `a`'s buffer, which a kernel reads: never the one borrowed mutably (a node is
    /// never its own argument, and an update never reads its target, as the program checked).
    fn read(&self, a: usize) -> &'a ArrayD<T> {
        self.get(a)
            .unwrap_or_else(|| unreachable!("a kernel reads the buffer it writes"))
    }
}

/// `bufs[i]`, mutably, and the others.
fn split<T>(bufs: &mut [ArrayD<T>], i: usize) -> (&mut ArrayD<T>, Others<'_, T>) {
    let (before, rest) = bufs.split_at_mut(i);
    let (buf, after) = rest
        .split_first_mut()
        .unwrap_or_else(|| unreachable!("node {i} has a buffer"));
    (buf, Others { before, after })
}

/// Calls `f` with `values[args[..]]` (`None` for the buffer borrowed mutably), without
/// allocating for up to four arguments.
fn with_args<'a, T, R>(
    values: &Others<'a, T>,
    args: &[usize],
    f: impl FnOnce(&[Option<&'a ArrayD<T>>]) -> R,
) -> R {
    match ops::with_mapped(
        args,
        |&a| Ok::<_, std::convert::Infallible>(values.get(a)),
        f,
    ) {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Runs the forward pass computing `target`: in check mode the leaves it reads are checked
/// first; then every input it needs must be set, named dims must agree, shapes are inferred
/// and buffers sized (unless `opts.infer` is off), and the kernels run in order.
///
/// The values of `prog`'s leaves are `values[i]` where `set[i]`; op nodes' buffers are
/// reused. On error, the values of the ops it computes are unspecified.
pub(crate) fn run_forward<T: Scalar>(
    prog: &Program,
    values: &mut [ArrayD<T>],
    set: &[bool],
    target: Target,
    opts: RunOpts,
) -> Result<()> {
    let f = prog.forward(target)?;
    let which = match target {
        Target::Loss => 0,
        Target::Output(k) => k + 1,
    };
    let leaves = &prog.leaves[which];
    if opts.check {
        for &leaf in leaves {
            crate::rt::check_finite_leaf(values[leaf].view(), &prog.names[leaf])?;
        }
    }
    let missing = |leaf: usize| match prog.dag.nodes[leaf].kind {
        PlanKind::Leaf(Leaf::Param) => Error::ParamNotSet {
            param: prog.names[leaf].clone(),
            needed_by: prog.names[f.target].clone(),
        },
        _ => Error::MissingFeed {
            input: prog.names[leaf].clone(),
            needed_by: prog.names[f.target].clone(),
        },
    };
    if let Some(&i) = f.inputs.iter().find(|&&i| !set[i]) {
        return Err(missing(i));
    }
    if let Some(&i) = leaves.iter().find(|&&i| !set[i]) {
        return Err(missing(i));
    }
    prog.bind(values, f)?;
    if opts.infer {
        prog.infer_and_size(values, f)?;
    }
    for &i in &f.ops {
        let node = &prog.dag.nodes[i];
        let Some(op) = node.as_op() else { continue };
        // A node is never its own argument (the plan checked).
        let (out, others) = split(values, i);
        let r = with_args(&others, &node.args, |args| {
            let node = DynNode {
                args,
                attrs: &prog.attrs[i],
            };
            ops::forward_dyn(op, &node, out.view_mut())
        });
        r.map_err(|e| prog.kernel_error(i, e))?;
        if opts.check {
            crate::rt::check_finite(values[i].view(), &prog.names[i], "forward")?;
        }
    }
    Ok(())
}

/// Runs the backward schedule of `pass` from the values of a forward: sizes the gradient
/// buffers, zeroes those the schedule names, seeds the loss with 1, makes every step into its
/// sink, then the updates after (`lr` is the training step's learning rate). In check mode,
/// each gradient (or param updated in place) is checked once complete.
pub(crate) fn run_schedule<T: Scalar>(
    prog: &Program,
    values: &mut [ArrayD<T>],
    grads: &mut [ArrayD<T>],
    pass: Pass,
    lr: T,
    check: bool,
) -> Result<()> {
    let schedule = prog.schedule(pass);
    let last = &prog.last[pass as usize];
    let (dag, names) = (&prog.dag, &prog.names);
    if !schedule.grads[dag.loss] {
        return Ok(()); // nothing wants a gradient
    }
    for &i in &prog.grad_bufs {
        if grads[i].shape() != values[i].shape() {
            grads[i] = zeros(&names[i], values[i].shape())?;
        }
    }
    for &z in &schedule.zeroed {
        fill(&mut grads[z], T::zero());
    }
    fill(&mut grads[dag.loss], T::one());
    for (k, step) in schedule.steps.iter().enumerate() {
        let node = &dag.nodes[step.node];
        let Some(op) = node.as_op() else { continue };
        let into_value = step.sink == Sink::Update;
        // The target is never the step's node, and an update's kernel never reads its target
        // (checked when the program was made): its buffer can be borrowed beside the rest.
        let (buf, vals, g) = if into_value {
            let (buf, vals) = split(values, step.target);
            (buf, vals, &grads[step.node])
        } else {
            let (buf, gs) = split(grads, step.target);
            (buf, Others::all(values), gs.read(step.node))
        };
        let out = match step.sink {
            Sink::Write => GradOut::write(buf.view_mut()),
            Sink::Add => GradOut::add(buf.view_mut()),
            Sink::Update => GradOut::add_scaled(buf.view_mut(), -lr),
        };
        let r = with_args(&vals, &node.args, |args| {
            let b = DynBackward {
                node: DynNode {
                    args,
                    attrs: &prog.attrs[step.node],
                },
                value: vals.read(step.node),
                g,
            };
            match step.fused {
                Some(inner) => ops::fused_backward_dyn(step.kernel.path, vals.read(inner), &b, out),
                None => ops::backward_dyn(op, &b, step.arg_pos, out),
            }
        });
        r.map_err(|e| prog.kernel_error(step.node, e))?;
        if check && last[k] {
            let done = if into_value { &values } else { &grads };
            crate::rt::check_finite(done[step.target].view(), &names[step.target], "backward")?;
        }
    }
    for &p in &schedule.update_after {
        crate::optim::sgd_update(values[p].view_mut(), grads[p].view(), lr);
    }
    Ok(())
}

/// Sets every element of `a` to `x`: as a slice when `a` is in standard order (always, for
/// the buffers [`zeros`] makes), which skips a dynamic-rank contiguity check.
fn fill<T: Scalar>(a: &mut ArrayD<T>, x: T) {
    match a.as_slice_mut() {
        Some(s) => s.fill(x),
        None => a.fill(x),
    }
}

/// A zero-filled array of `shape` for node `node`, or [`Error::TooLarge`] if its size
/// overflows or the memory cannot be reserved (never a panic or an abort).
pub(crate) fn zeros<T: Scalar>(node: &str, shape: &[usize]) -> Result<ArrayD<T>> {
    let too_large = || Error::TooLarge {
        node: node.to_string(),
        shape: shape.to_vec(),
    };
    // ndarray requires the product of the non-zero dims to fit in isize, even for an empty
    // array; the bytes must fit too.
    let bytes = shape
        .iter()
        .filter(|&&n| n != 0)
        .try_fold(std::mem::size_of::<T>(), |acc, &n| acc.checked_mul(n))
        .filter(|&b| isize::try_from(b).is_ok())
        .ok_or_else(too_large)?;
    let len = if shape.contains(&0) {
        0
    } else {
        bytes / std::mem::size_of::<T>().max(1)
    };
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| too_large())?;
    data.resize(len, T::zero());
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_too_large_to_allocate_is_an_error_not_a_panic() {
        let big = 1usize << 32;
        for shape in [
            &[big, big][..],
            &[big, 0, big],
            &[usize::MAX, 2],
            &[1 << 61],
        ] {
            assert_eq!(
                zeros::<f64>("m", shape),
                Err(Error::TooLarge {
                    node: "m".into(),
                    shape: shape.to_vec()
                }),
                "{shape:?}"
            );
        }
        // Within isize but more than any memory: reserving fails, typed.
        assert!(matches!(
            zeros::<f64>("m", &[1 << 40, 1 << 18]),
            Err(Error::TooLarge { .. })
        ));
        assert_eq!(zeros::<f32>("m", &[2, 0, 3]).map(|a| a.len()), Ok(0));
        assert_eq!(zeros::<f32>("m", &[2, 3]).map(|a| a.len()), Ok(6));
    }
}
