//! A runtime graph that mirrors the seed's MiniFlow, and is a [`Network`] like the structs
//! `network!` generates.
//!
//! Nodes are created at run time, each with a name. Params (`g.param("W", &[2, 1])`) are
//! trained; inputs (`g.input("X")`) are fed; the loss is marked with
//! [`set_loss`](Graph::set_loss) and outputs with [`add_output`](Graph::add_output). Then the
//! graph is a [`Network`]: feed it, run `forward`, `backward`, `sgd_step`, an optimizer,
//! [`Fit`](crate::train::Fit), [`init`](crate::init), [`gradcheck`](crate::gradcheck),
//! [`persist`](crate::persist) or DOT export, exactly as on a generated network:
//!
//! ```
//! use miniflow_core::{Graph, Network};
//! use ndarray::array;
//!
//! let mut g = Graph::<f64>::new();
//! let (x, y) = (g.input("X")?, g.input("y")?);
//! let (w, b) = (g.param("W", &[2, 1])?, g.param("b", &[1])?);
//! let f = g.linear("f", x, w, b)?;
//! let a = g.sigmoid("a", f)?;
//! let cost = g.mse("cost", y, a)?;
//! g.set_loss(cost)?;
//!
//! g.feed("X", &array![[-1., -2.], [-1., -2.]])?;
//! g.feed("y", &array![1., 2.])?;
//! g.set("W", &array![[2.], [3.]])?;
//! g.set("b", &array![-3.])?;
//! let loss = g.forward_backward()?;
//! assert!((loss - 2.4999498960133932).abs() < 1e-12);
//! assert!((g.grad("W")?[[0, 0]] - 5.01028709e-05).abs() < 1e-12);
//! g.sgd_step(1e-2)?; // the training step a generated network runs, fused the same way
//! # Ok::<(), miniflow_core::Error>(())
//! ```
//!
//! As a [`Network`], a graph plans itself with every rule ([`Rules::ALL`]) and runs the plan on
//! the same engine as the plan executor ([`crate::exec`]): the same kernels, in the same order,
//! into the same sinks as the code `network!` expands. So **a graph and a generated network of
//! the same network give bit-identical results** (losses, values, gradients, params after
//! `sgd_step` or an optimizer) when the graph's nodes are created in the order of the
//! network's source, or of its spec ([`Graph::from_spec`] does that). The plan is made on first
//! use and again only after the structure changes; buffers are sized once and reused, and
//! shapes are inferred again only when an input changes shape, so a steady training step
//! allocates nothing.
//!
//! The seed's own calls are kept for the course's code: every leaf may be an `input`, fed by
//! [`topological_sort`](Graph::topological_sort), run by
//! [`forward_and_backward`](Graph::forward_and_backward) (which gives every node reaching the
//! cost a gradient, inputs included) and updated by [`sgd_update`](Graph::sgd_update):
//!
//! ```
//! use miniflow_core::Graph;
//! use ndarray::array;
//!
//! let mut g = Graph::<f64>::new();
//! let (x, y) = (g.input("X")?, g.input("y")?);
//! let (w, b) = (g.input("W")?, g.input("b")?);
//! let f = g.linear("f", x, w, b)?;
//! let a = g.sigmoid("a", f)?;
//! let cost = g.mse("cost", y, a)?;
//!
//! let order = g.topological_sort([
//!     (x, array![[-1., -2.], [-1., -2.]].into_dyn()),
//!     (y, array![1., 2.].into_dyn()),
//!     (w, array![[2.], [3.]].into_dyn()),
//!     (b, array![-3.].into_dyn()),
//! ])?;
//! let loss = g.forward_and_backward(&order, cost)?;
//! assert!((loss - 2.4999498960133932).abs() < 1e-12);
//! g.sgd_update(&[w, b], 1e-2)?;
//! # Ok::<(), miniflow_core::Error>(())
//! ```
//!
//! Every builder returns `Result<NodeId>`, like the rest of the API: a name already taken
//! ([`Error::DuplicateNode`]), an id from another graph ([`Error::ForeignNode`]), a wrong
//! arity or a bad literal is reported where the node is created. Ops with literal arguments
//! take them apart from the node arguments: `g.leaky_relu("h", z, 0.01)?`, or
//! [`Graph::op_with`]`("h", Op::LeakyRelu, &[z], &[0.01])?`.
//!
//! Values are checked as generated networks check them: a fed value with a dimension of size
//! 0 is [`Error::EmptyBatch`], an input declared with a shape
//! ([`input_shaped`](Graph::input_shaped)) or a param is checked against it, and
//! the seed-style [`backward_order`](Graph::backward_order) only runs on the values of a
//! forward pass of the current inputs ([`Error::BackwardBeforeForward`] otherwise). A seed-style call that fails changes no
//! value, gradient or node.
//!
//! An argument that gets no gradient (the labels of `softmax_cross_entropy`) receives no
//! contribution. A param (or an input whose gradient is asked for) flowing into one is
//! refused when the graph is planned, and by [`Graph::sgd_update`] for any trainable, with
//! [`Error::NoGradient`], since its gradient would be missing or incomplete. (The `network!`
//! macro rejects the same at compile time.)
//!
//! [`Rules::ALL`]: crate::plan::Rules::ALL

use crate::error::{closest, Error, Result};
use crate::exec::{self, Pass, Program, RunOpts, Target};
use crate::network::{DimSpec, Network, NetworkSpec, NodeKind, NodeSpec, ParamMut};
use crate::ops::{self, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use miniflow_ops::plan::{Dag, Node as PlanNode, Rules};
use miniflow_ops::Op;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A node of a [`Graph`]: its position in creation order, and the identity of the graph that
/// created it. Every method of a graph checks that the ids it is given are its own, so an id
/// from another graph is [`Error::ForeignNode`], never a silent reference to another node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    index: usize,
    graph: u64,
}

impl NodeId {
    /// The node's position in creation order.
    pub fn index(self) -> usize {
        self.index
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.index)
    }
}

/// What names a node of a [`Graph`]: its [`NodeId`], or its name.
pub trait GraphKey {
    /// The node's index in `graph`, or [`Error::ForeignNode`] / [`Error::UnknownNode`].
    fn index_in<T: Scalar>(&self, graph: &Graph<T>) -> Result<usize>;
}

impl GraphKey for NodeId {
    fn index_in<T: Scalar>(&self, graph: &Graph<T>) -> Result<usize> {
        graph.check(*self)
    }
}

impl<S: AsRef<str> + ?Sized> GraphKey for &S {
    fn index_in<T: Scalar>(&self, graph: &Graph<T>) -> Result<usize> {
        graph.index_named((**self).as_ref())
    }
}

/// The identity of the next graph created (or cloned).
static NEXT_GRAPH: AtomicU64 = AtomicU64::new(1);

fn new_identity() -> u64 {
    NEXT_GRAPH.fetch_add(1, Ordering::Relaxed)
}

/// A node's structure; its name, kind, declared shape, literals and doc are in the graph's
/// spec.
#[derive(Clone, Debug)]
struct Node {
    /// The op's node arguments (empty for a leaf).
    args: Vec<usize>,
    /// The identity of the graph that created the node (a clone keeps its original's nodes).
    origin: u64,
    /// For a leaf without a declared shape: the rank its values must have, if fixed.
    rank: Option<usize>,
}

/// What running the graph as a [`Network`] keeps between calls.
#[derive(Clone, Debug)]
struct NetState {
    /// The plan, made on first use; `None` after any change of structure.
    prog: Option<Program>,
    /// Whether the values are those of a forward (of the loss) from the current leaves.
    fresh: bool,
    /// Whether the gradients are those of a `backward` of the current state.
    grads_current: bool,
    /// Bumped whenever a leaf's value changes shape (or a seed-style call runs).
    shape_gen: u64,
    /// For each forward pass (the loss's, then each output's): the `shape_gen` its buffers
    /// were last sized at (0: never).
    sized: Vec<u64>,
}

impl NetState {
    fn new() -> Self {
        NetState {
            prog: None,
            fresh: false,
            grads_current: false,
            shape_gen: 1,
            sized: Vec::new(),
        }
    }

    /// After a change of structure: plan again.
    fn restructure(&mut self) {
        self.prog = None;
        self.stale();
    }

    /// After a change of values the network path did not make: nothing it computed is
    /// current, and shapes must be inferred again.
    fn stale(&mut self) {
        self.fresh = false;
        self.grads_current = false;
        self.shape_gen += 1;
    }
}

/// A network built at run time, like the seed's MiniFlow, usable as a [`Network`].
///
/// See the [module documentation](self) for the two ways to run it. Every value carries a
/// version stamp (as PyTorch's tensors carry a version counter): the seed-style
/// [`backward_order`](Graph::backward_order) uses only values that one consistent forward pass computed
/// from the current inputs, and fails with [`Error::BackwardBeforeForward`] otherwise.
#[derive(Debug)]
pub struct Graph<T = f64> {
    nodes: Vec<Node>,
    /// The network's description: one node spec per node, in creation order.
    spec: NetworkSpec,
    /// Each node's index by name.
    names: HashMap<String, usize>,
    values: Vec<ArrayD<T>>,
    grads: Vec<ArrayD<T>>,
    /// Whether each node has a value (fed, set, or computed).
    has_value: Vec<bool>,
    /// Whether each node's gradient was computed by the last backward.
    has_grad: Vec<bool>,
    /// When each value was last written, on the graph's clock (0: no valid value). An op
    /// node's value is that of its arguments' current values exactly when it is newer than
    /// each of them.
    stamps: Vec<u64>,
    /// The identity carried by the ids of the nodes this graph creates.
    identity: u64,
    /// The clock that stamps values; only ever grows.
    clock: u64,
    /// Check mode: stop at the first node whose value or gradient is not finite.
    check_finite: bool,
    loss: Option<usize>,
    outputs: Vec<usize>,
    net: NetState,
}

impl<T: Clone> Clone for Graph<T> {
    /// A copy with the same nodes and values. The original's ids stay valid for the nodes
    /// they name in the copy; nodes added later to either graph are that graph's own.
    fn clone(&self) -> Self {
        Graph {
            nodes: self.nodes.clone(),
            spec: self.spec.clone(),
            names: self.names.clone(),
            values: self.values.clone(),
            grads: self.grads.clone(),
            has_value: self.has_value.clone(),
            has_grad: self.has_grad.clone(),
            stamps: self.stamps.clone(),
            identity: new_identity(),
            clock: self.clock,
            check_finite: self.check_finite,
            loss: self.loss,
            outputs: self.outputs.clone(),
            net: self.net.clone(),
        }
    }
}

impl<T: Scalar> Default for Graph<T> {
    fn default() -> Self {
        Graph::new()
    }
}

/// The values a forward pass replaced, to restore them if the pass fails.
type Undo<T> = Vec<(usize, ArrayD<T>, bool, u64)>;

impl<T: Scalar> Graph<T> {
    /// An empty graph, named `Graph` (see [`set_name`](Graph::set_name)).
    pub fn new() -> Self {
        Graph {
            nodes: Vec::new(),
            spec: NetworkSpec {
                name: Cow::Borrowed("Graph"),
                nodes: Cow::Owned(Vec::new()),
                loss: Cow::Borrowed(""),
                outputs: Cow::Owned(Vec::new()),
            },
            names: HashMap::new(),
            values: Vec::new(),
            grads: Vec::new(),
            has_value: Vec::new(),
            has_grad: Vec::new(),
            stamps: Vec::new(),
            identity: new_identity(),
            clock: 0,
            check_finite: false,
            loss: None,
            outputs: Vec::new(),
            net: NetState::new(),
        }
    }

    /// Names the network (its spec's name: shown in DOT exports and saved files).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.spec.name = Cow::Owned(name.into());
    }

    // -----------------------------------------------------------------------------------------
    // Building.
    // -----------------------------------------------------------------------------------------

    /// Adds an input: a leaf fed with each batch, of any shape (checked by the ops that use
    /// it). As a [`Network`] no gradient is computed for it unless asked with
    /// [`set_requires_grad`](Graph::set_requires_grad); the seed-style
    /// [`forward_and_backward`](Graph::forward_and_backward) gives every leaf one, as the
    /// seed does. In seed-style code, weights and biases may be inputs too.
    ///
    /// Fails with [`Error::DuplicateNode`] if the name is taken, and with
    /// [`Error::InvalidArgument`] if it is empty.
    pub fn input(&mut self, name: impl Into<String>) -> Result<NodeId> {
        self.leaf(name.into(), NodeKind::Input { grad: false }, None)
    }

    /// Adds an input with a declared shape: fixed dims (`DimSpec::Fixed(13)`) must match
    /// every fed value, named dims (`DimSpec::Named("batch")`) may change from batch to batch
    /// but must agree across the inputs a forward pass reads ([`Error::InconsistentDim`]),
    /// exactly as a generated network's `input X: [batch, 13]`.
    pub fn input_shaped(&mut self, name: impl Into<String>, shape: &[DimSpec]) -> Result<NodeId> {
        self.leaf(
            name.into(),
            NodeKind::Input { grad: false },
            Some(shape.to_vec()),
        )
    }

    /// Adds a param: a trained leaf of the fixed shape `shape`, set to zero (set it with
    /// [`Network::set`], or draw it with [`crate::init`]). Its gradient is always computed.
    /// Fails like [`input`](Graph::input), and with [`Error::TooLarge`] for a shape too large
    /// to allocate.
    pub fn param(&mut self, name: impl Into<String>, shape: &[usize]) -> Result<NodeId> {
        let name = name.into();
        let value = exec::zeros::<T>(&name, shape)?;
        let grad = exec::zeros::<T>(&name, shape)?;
        let decl = shape.iter().map(|&n| DimSpec::Fixed(n)).collect();
        let id = self.leaf(name, NodeKind::Param, Some(decl))?;
        self.values[id.index] = value;
        self.grads[id.index] = grad;
        self.has_value[id.index] = true;
        self.stamps[id.index] = self.tick();
        Ok(id)
    }

    /// Adds an input whose values must have rank `rank` (any sizes): what the bare form of
    /// `network!` makes of an undeclared leaf, its rank taken from where it is used
    /// (`linear`'s `x` is a matrix). A value of another rank is [`Error::Shape`] when fed.
    pub fn input_of_rank(&mut self, name: impl Into<String>, rank: usize) -> Result<NodeId> {
        let id = self.input(name)?;
        self.nodes[id.index].rank = Some(rank);
        Ok(id)
    }

    /// Adds a param whose shape is given by the first [`set`](Network::set) (of rank `rank`
    /// when given): the seed's way, where weights are fed like data, and what the bare form of
    /// `network!` makes of an undeclared weight or bias. Until set it has no value: a forward
    /// pass that needs it is [`Error::ParamNotSet`], and [`Network::visit_params`] (so the
    /// optimizers, [`init`](crate::init) and [`persist`](crate::persist)) skips it. A later
    /// `set` may change its shape.
    pub fn param_unsized(
        &mut self,
        name: impl Into<String>,
        rank: Option<usize>,
    ) -> Result<NodeId> {
        let id = self.leaf(name.into(), NodeKind::Param, None)?;
        self.nodes[id.index].rank = rank;
        Ok(id)
    }

    /// Asks (or stops asking) `backward` to compute input `id`'s gradient, like `#[grad]` on
    /// an input of `network!` (a training step never computes it). Fails with
    /// [`Error::WrongKind`] for a param (always computed) or an op node.
    pub fn set_requires_grad(&mut self, id: NodeId, on: bool) -> Result<()> {
        let i = self.check(id)?;
        let node = &mut self.spec.nodes.to_mut()[i];
        match node.kind {
            NodeKind::Input { .. } => {
                node.kind = NodeKind::Input { grad: on };
                self.net.restructure();
                Ok(())
            }
            NodeKind::Param => Err(Error::WrongKind {
                name: node.name.to_string(),
                wanted: "an input",
                actual: "a param (whose gradient is always computed)",
            }),
            NodeKind::Op(_) => Err(Error::WrongKind {
                name: node.name.to_string(),
                wanted: "an input",
                actual: "an op node",
            }),
        }
    }

    /// Adds a node computing `op` from `args`, named `name`. Fails if the arity is wrong, an
    /// argument is not a node of this graph, the name is taken, or the op takes literals (use
    /// [`op_with`](Graph::op_with)).
    pub fn op(&mut self, name: impl Into<String>, op: Op, args: &[NodeId]) -> Result<NodeId> {
        self.op_with(name, op, args, &[])
    }

    /// Adds a node computing `op` from the nodes `args` and the literals `attrs` (in the order
    /// the op's signature lists them; e.g. `&[0.01]` for the slope of `leaky_relu`), named
    /// `name`. Fails with [`Error::BadLiteral`] if the op takes another number of literals or
    /// one is not finite in the element type (`1e39` overflows `f32`), with
    /// [`Error::OpShape`] if the arity is wrong, with [`Error::ForeignNode`] if an argument
    /// is not a node of this graph, and with [`Error::DuplicateNode`] if the name is taken.
    pub fn op_with(
        &mut self,
        name: impl Into<String>,
        op: Op,
        args: &[NodeId],
        attrs: &[f64],
    ) -> Result<NodeId> {
        let name = name.into();
        check_literals::<T>(&name, op, attrs)?;
        let written = args.len() + attrs.len();
        if !op.arity().accepts(written) {
            return Err(Error::OpShape {
                node: name,
                message: format!(
                    "`{op}` takes {}, found {written}; expected {}",
                    op.arity(),
                    op.signature()
                ),
            });
        }
        let args = args
            .iter()
            .map(|&a| self.check(a))
            .collect::<Result<Vec<_>>>()?;
        self.check_name(&name)?;
        let spec = NodeSpec {
            name: Cow::Owned(name),
            kind: NodeKind::Op(op),
            shape: None,
            args: args
                .iter()
                .map(|&a| self.spec.nodes[a].name.clone())
                .collect(),
            attrs: Cow::Owned(attrs.to_vec()),
            doc: Cow::Borrowed(""),
        };
        Ok(self.push(spec, args))
    }

    /// `linear(x, w, b) = x·w + b`, named `name`.
    pub fn linear(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        w: NodeId,
        b: NodeId,
    ) -> Result<NodeId> {
        self.op(name, Op::Linear, &[x, w, b])
    }

    /// `sigmoid(x)`, named `name`.
    pub fn sigmoid(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.op(name, Op::Sigmoid, &[x])
    }

    /// `mse(y, a)`, the mean squared error (the seed's argument order: target first), named
    /// `name`.
    pub fn mse(&mut self, name: impl Into<String>, y: NodeId, a: NodeId) -> Result<NodeId> {
        self.op(name, Op::Mse, &[y, a])
    }

    /// `add(x, y)`, elementwise, named `name`. For more terms use [`Graph::op`] with
    /// [`Op::Add`].
    pub fn add(&mut self, name: impl Into<String>, x: NodeId, y: NodeId) -> Result<NodeId> {
        self.op(name, Op::Add, &[x, y])
    }

    /// `relu(x) = max(x, 0)`, elementwise, named `name`.
    pub fn relu(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.op(name, Op::Relu, &[x])
    }

    /// `tanh(x)`, elementwise, named `name`.
    pub fn tanh(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.op(name, Op::Tanh, &[x])
    }

    /// `leaky_relu(x, slope)`, elementwise, named `name`. A `slope` that is not finite in the
    /// element type is [`Error::BadLiteral`].
    pub fn leaky_relu(&mut self, name: impl Into<String>, x: NodeId, slope: f64) -> Result<NodeId> {
        self.op_with(name, Op::LeakyRelu, &[x], &[slope])
    }

    /// `matmul(a, b) = a·b`, named `name`.
    pub fn matmul(&mut self, name: impl Into<String>, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(name, Op::Matmul, &[a, b])
    }

    /// `mul(a, b) = a ⊙ b`, elementwise, named `name`.
    pub fn mul(&mut self, name: impl Into<String>, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(name, Op::Mul, &[a, b])
    }

    /// `sub(a, b) = a - b`, elementwise, named `name`.
    pub fn sub(&mut self, name: impl Into<String>, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(name, Op::Sub, &[a, b])
    }

    /// `sum(x)`, a scalar, named `name`.
    pub fn sum(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.op(name, Op::Sum, &[x])
    }

    /// `mean(x)`, a scalar, named `name`.
    pub fn mean(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.op(name, Op::Mean, &[x])
    }

    /// `softmax(x)` of each row of a `[m, c]` node, named `name`.
    pub fn softmax(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.op(name, Op::Softmax, &[x])
    }

    /// `softmax_cross_entropy(logits, labels)`, a scalar loss, named `name`; `labels` are
    /// class indices (`[m]`, whole numbers below the class count) and get no gradient.
    pub fn softmax_cross_entropy(
        &mut self,
        name: impl Into<String>,
        logits: NodeId,
        labels: NodeId,
    ) -> Result<NodeId> {
        self.op(name, Op::SoftmaxCrossEntropy, &[logits, labels])
    }

    /// `bce(y, p)`, binary cross-entropy of probabilities (target first, as in `mse`), named
    /// `name`.
    pub fn bce(&mut self, name: impl Into<String>, y: NodeId, p: NodeId) -> Result<NodeId> {
        self.op(name, Op::Bce, &[y, p])
    }

    /// `bce_logits(y, z)`, binary cross-entropy of `sigmoid(z)`, from the logits, named
    /// `name`.
    pub fn bce_logits(&mut self, name: impl Into<String>, y: NodeId, z: NodeId) -> Result<NodeId> {
        self.op(name, Op::BceLogits, &[y, z])
    }

    /// Marks op node `id` as the loss: the node `forward` returns and backward starts from
    /// (it must compute a scalar, checked at each forward). Replaces any earlier loss. Fails
    /// with [`Error::WrongKind`] for a leaf.
    pub fn set_loss(&mut self, id: NodeId) -> Result<()> {
        let i = self.check_op(id, "the loss")?;
        self.loss = Some(i);
        self.spec.loss = self.spec.nodes[i].name.clone();
        self.net.restructure();
        Ok(())
    }

    /// The loss, if one is marked.
    pub fn loss(&self) -> Option<NodeId> {
        self.loss.map(|i| self.id(i))
    }

    /// Marks op node `id` as an output: a node [`Network::evaluate`] computes on its own,
    /// from only the inputs it needs. Marking it again does nothing. Fails with
    /// [`Error::WrongKind`] for a leaf.
    pub fn add_output(&mut self, id: NodeId) -> Result<()> {
        let i = self.check_op(id, "an output")?;
        if !self.outputs.contains(&i) {
            self.outputs.push(i);
            let name = self.spec.nodes[i].name.clone();
            self.spec.outputs.to_mut().push(name);
            self.net.restructure();
        }
        Ok(())
    }

    /// The outputs, in the order they were marked.
    pub fn outputs(&self) -> Vec<NodeId> {
        self.outputs.iter().map(|&i| self.id(i)).collect()
    }

    /// Sets node `id`'s doc comment (kept in the spec; a tooltip in DOT exports).
    pub fn set_doc(&mut self, id: NodeId, doc: impl Into<String>) -> Result<()> {
        let i = self.check(id)?;
        self.spec.nodes.to_mut()[i].doc = Cow::Owned(doc.into());
        Ok(())
    }

    /// Replaces argument `index` of op node `node` with `arg`, as assigning to the seed's
    /// `inbound_nodes` would. This can create a cycle, which the next sort (or plan) reports.
    /// The node's value no longer matches its arguments: backward fails until a forward
    /// recomputes it.
    pub fn replace_arg(&mut self, node: NodeId, index: usize, arg: NodeId) -> Result<()> {
        let i = self.check(node)?;
        let a = self.check(arg)?;
        let len = self.nodes[i].args.len();
        if index >= len {
            return Err(Error::OpShape {
                node: self.spec.nodes[i].name.to_string(),
                message: format!("has {len} arguments, so there is no argument {index} to replace"),
            });
        }
        self.nodes[i].args[index] = a;
        let name = self.spec.nodes[a].name.clone();
        self.spec.nodes.to_mut()[i].args.to_mut()[index] = name;
        self.stamps[i] = 0;
        self.net.restructure();
        Ok(())
    }

    /// Rebuilds a network from its [`NetworkSpec`] (a generated network's `net.spec()`): the
    /// same nodes in the same order, params with their shapes (zero), inputs with their
    /// declared shapes and `#[grad]`, the same loss, outputs, docs and name. As a
    /// [`Network`], the graph then gives the generated network's results bit for bit.
    /// Returns the graph and the id of each spec node, in spec order.
    ///
    /// Fails, like the builders, on a duplicate name or an argument named before it is
    /// defined, and with [`Error::InvalidArgument`] for a param whose shape is not fixed.
    pub fn from_spec(spec: &NetworkSpec) -> Result<(Self, Vec<NodeId>)> {
        let mut g = Graph::new();
        g.spec.name = spec.name.clone();
        let mut ids = Vec::with_capacity(spec.nodes.len());
        for node in spec.nodes.iter() {
            let name = node.name.to_string();
            let id = match node.kind {
                NodeKind::Input { grad } => {
                    let id = match &node.shape {
                        Some(shape) => g.input_shaped(name, shape)?,
                        None => g.input(name)?,
                    };
                    g.set_requires_grad(id, grad)?;
                    id
                }
                NodeKind::Param => {
                    let fixed: Option<Vec<usize>> = node.shape.as_deref().and_then(|s| {
                        s.iter()
                            .map(|d| match d {
                                DimSpec::Fixed(n) => Some(*n),
                                DimSpec::Named(_) => None,
                            })
                            .collect()
                    });
                    let Some(fixed) = fixed else {
                        return Err(Error::InvalidArgument {
                            function: "Graph::from_spec",
                            what: format!(
                                "param `{name}` has the shape {}; a param's dims must be fixed numbers",
                                node.shape_text()
                            ),
                        });
                    };
                    g.param(name, &fixed)?
                }
                NodeKind::Op(op) => {
                    let args = node
                        .args
                        .iter()
                        .map(|a| g.find(a))
                        .collect::<Result<Vec<_>>>()?;
                    let id = g.op_with(name, op, &args, &node.attrs)?;
                    g.spec.nodes.to_mut()[id.index].shape = node.shape.clone();
                    id
                }
            };
            g.spec.nodes.to_mut()[id.index].doc = node.doc.clone();
            ids.push(id);
        }
        if !spec.loss.is_empty() {
            let loss = g.find(&spec.loss)?;
            g.set_loss(loss)?;
        }
        for output in spec.outputs.iter() {
            let id = g.find(output)?;
            g.add_output(id)?;
        }
        Ok((g, ids))
    }

    fn leaf(
        &mut self,
        name: String,
        kind: NodeKind,
        shape: Option<Vec<DimSpec>>,
    ) -> Result<NodeId> {
        self.check_name(&name)?;
        let spec = NodeSpec {
            name: Cow::Owned(name),
            kind,
            shape: shape.map(Cow::Owned),
            args: Cow::Borrowed(&[]),
            attrs: Cow::Borrowed(&[]),
            doc: Cow::Borrowed(""),
        };
        Ok(self.push(spec, Vec::new()))
    }

    fn check_name(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidArgument {
                function: "Graph",
                what: "a node's name must not be empty; every node needs its own name".into(),
            });
        }
        if self.names.contains_key(name) {
            return Err(Error::DuplicateNode {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn push(&mut self, spec: NodeSpec, args: Vec<usize>) -> NodeId {
        let index = self.nodes.len();
        self.names.insert(spec.name.to_string(), index);
        self.spec.nodes.to_mut().push(spec);
        self.nodes.push(Node {
            args,
            origin: self.identity,
            rank: None,
        });
        // Empty until fed or computed (an empty array does not allocate).
        self.values.push(ArrayD::zeros(IxDyn(&[0])));
        self.grads.push(ArrayD::zeros(IxDyn(&[0])));
        self.has_value.push(false);
        self.has_grad.push(false);
        self.stamps.push(0);
        self.net.restructure();
        self.id(index)
    }

    // -----------------------------------------------------------------------------------------
    // Looking up.
    // -----------------------------------------------------------------------------------------

    /// The id of the node at `index` (which must exist).
    fn id(&self, index: usize) -> NodeId {
        NodeId {
            index,
            graph: self.nodes[index].origin,
        }
    }

    /// The index of `id`, if it is a node of this graph.
    fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes
            .get(id.index)
            .filter(|n| n.origin == id.graph)
            .map(|_| id.index)
    }

    /// The index of `id`, or [`Error::ForeignNode`].
    fn check(&self, id: NodeId) -> Result<usize> {
        self.index_of(id)
            .ok_or_else(|| Error::ForeignNode { id: id.to_string() })
    }

    /// The index of the node called `name`, or [`Error::UnknownNode`] with a suggestion.
    fn index_named(&self, name: &str) -> Result<usize> {
        match self.names.get(name) {
            Some(&i) => Ok(i),
            None => Err(Error::UnknownNode {
                name: name.to_string(),
                suggestion: closest(name, self.spec.nodes.iter().map(|n| &*n.name)),
            }),
        }
    }

    /// The index of op node `id`, to be used as `what`.
    fn check_op(&self, id: NodeId, what: &'static str) -> Result<usize> {
        let i = self.check(id)?;
        match self.spec.nodes[i].kind {
            NodeKind::Op(_) => Ok(i),
            kind => Err(Error::WrongKind {
                name: self.spec.nodes[i].name.to_string(),
                wanted: if what == "the loss" {
                    "an op node (the loss)"
                } else {
                    "an op node (an output)"
                },
                actual: kind_name(kind),
            }),
        }
    }

    fn op_of(&self, i: usize) -> Option<Op> {
        match self.spec.nodes[i].kind {
            NodeKind::Op(op) => Some(op),
            _ => None,
        }
    }

    fn name_of(&self, i: usize) -> &str {
        &self.spec.nodes[i].name
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The node's name (`None` for an id of another graph).
    pub fn name(&self, id: NodeId) -> Option<&str> {
        self.index_of(id).map(|i| self.name_of(i))
    }

    /// The node called `name`.
    pub fn find(&self, name: &str) -> Result<NodeId> {
        self.index_named(name).map(|i| self.id(i))
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The value of node `key` (an id or a name), once fed or computed: the same as
    /// [`Network::value`] with a name. [`Error::NoValue`] before it has one,
    /// [`Error::ForeignNode`] / [`Error::UnknownNode`] for no node of this graph.
    pub fn value<K: GraphKey>(&self, key: K) -> Result<ArrayViewD<'_, T>> {
        let i = key.index_in(self)?;
        if self.has_value[i] {
            Ok(self.values[i].view())
        } else {
            Err(Error::NoValue {
                name: self.name_of(i).to_string(),
                reason: "it has not been fed, set or computed yet",
            })
        }
    }

    /// d loss / d `key` (an id or a name) as [`Network::grad`] gives it: computed by a
    /// [`backward`](Network::backward) of the current state, else an error.
    pub fn grad<K: GraphKey>(&self, key: K) -> Result<ArrayViewD<'_, T>> {
        let i = key.index_in(self)?;
        self.grad_of(i)
    }

    /// d cost / d node from the last backward (the seed's `node.gradients`, summed over every
    /// consumer of the node), whatever changed since; [`Error::NoGradient`] if the last
    /// backward computed none for it.
    pub fn gradient<K: GraphKey>(&self, key: K) -> Result<ArrayViewD<'_, T>> {
        let i = key.index_in(self)?;
        if self.has_grad[i] {
            Ok(self.grads[i].view())
        } else {
            Err(Error::NoGradient {
                name: self.name_of(i).to_string(),
                reason: "the last backward pass computed no gradient for it",
            })
        }
    }

    // -----------------------------------------------------------------------------------------
    // Feeding.
    // -----------------------------------------------------------------------------------------

    /// Whether `value` can be given to leaf `i`: not an op node; the declared shape, if any;
    /// no dimension of size 0.
    fn check_leaf(&self, i: usize, value: &ArrayViewD<'_, T>) -> Result<()> {
        let node = &self.spec.nodes[i];
        if let NodeKind::Op(_) = node.kind {
            return Err(Error::WrongKind {
                name: node.name.to_string(),
                wanted: "an input",
                actual: "an op node",
            });
        }
        match node.shape.as_deref() {
            Some(decl) => crate::rt::check_shape(value, &node.name, decl),
            None if self.nodes[i].rank.is_some_and(|r| r != value.ndim()) => Err(Error::Shape {
                node: node.name.to_string(),
                expected: rank_text(self.nodes[i].rank.unwrap_or_default()),
                found: value.shape().to_vec(),
            }),
            None => match value.shape().iter().position(|&n| n == 0) {
                Some(axis) => Err(Error::EmptyBatch {
                    node: node.name.to_string(),
                    dim: format!("axis {axis}"),
                    found: value.shape().to_vec(),
                }),
                None => Ok(()),
            },
        }
    }

    /// Sets a leaf's value (what the seed's `topological_sort` does with `feed_dict`).
    ///
    /// Fails with [`Error::WrongKind`] for an op node, with [`Error::Shape`] for a value that
    /// does not fit a declared shape (a param's, or [`input_shaped`](Graph::input_shaped)'s),
    /// and with [`Error::EmptyBatch`] for a value with a dimension of size 0 (as generated
    /// networks do for an empty batch).
    pub fn set_value(&mut self, id: NodeId, value: ArrayD<T>) -> Result<()> {
        let i = self.check(id)?;
        self.check_leaf(i, &value.view())?;
        self.store(i, value);
        Ok(())
    }

    /// Stores a checked leaf value.
    fn store(&mut self, i: usize, value: ArrayD<T>) {
        self.values[i] = value;
        self.has_value[i] = true;
        self.stamps[i] = self.tick();
        self.net.stale();
    }

    /// Copies a checked value into leaf `i`, reusing its buffer when the shape is the same.
    fn copy_into(&mut self, i: usize, value: ArrayViewD<'_, T>) {
        let buf = &mut self.values[i];
        if buf.shape() == value.shape() {
            // Both in standard order (the usual case): a plain copy, several times faster
            // than a dynamic-rank `assign` on a small batch.
            match (buf.as_slice_mut(), value.as_slice()) {
                (Some(to), Some(from)) => to.copy_from_slice(from),
                _ => buf.assign(&value),
            }
        } else {
            *buf = value.to_owned();
            self.net.shape_gen += 1;
        }
        self.has_value[i] = true;
        self.stamps[i] = self.tick();
        self.net.fresh = false;
        self.net.grads_current = false;
    }

    /// The seed's `topological_sort(feed_dict)`: sets each fed leaf's value and returns every
    /// node in an order where each comes after its arguments (Kahn's algorithm from the leaves,
    /// ties broken by creation order).
    ///
    /// The order does not depend on the values, so nothing need be fed to get it: sort once,
    /// then feed each batch with [`set_value`](Graph::set_value) (or [`Network::feed`]) and run
    /// [`forward_and_backward`](Graph::forward_and_backward) in the loop. An input read
    /// without a value is an [`Error::MissingFeed`] from the forward pass (the seed silently
    /// drops that subgraph). A cycle is an [`Error::Cycle`]. Every value is checked as
    /// [`set_value`](Graph::set_value) does; on any error no value is set.
    pub fn topological_sort(
        &mut self,
        feed: impl IntoIterator<Item = (NodeId, ArrayD<T>)>,
    ) -> Result<Vec<NodeId>> {
        let mut values = Vec::new();
        for (id, value) in feed {
            let i = self.check(id)?;
            self.check_leaf(i, &value.view())?;
            values.push((i, value));
        }
        let order = self.sort()?;
        for (i, value) in values {
            self.store(i, value);
        }
        Ok(order.into_iter().map(|i| self.id(i)).collect())
    }

    /// Kahn's algorithm from every leaf, in creation order.
    fn sort(&self) -> Result<Vec<usize>> {
        let n = self.nodes.len();
        let mut consumers = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            for &a in &node.args {
                consumers[a].push(i);
            }
        }
        let mut indegree: Vec<usize> = self.nodes.iter().map(|n| n.args.len()).collect();
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = queue.pop_front() {
            order.push(i);
            for &c in &consumers[i] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    queue.push_back(c);
                }
            }
        }
        let stuck: Vec<bool> = indegree.iter().map(|&d| d > 0).collect();
        if let Some(start) = stuck.iter().position(|&s| s) {
            return Err(Error::Cycle {
                path: self.cycle_from(start, &stuck),
            });
        }
        Ok(order)
    }

    /// The names of a cycle given as nodes each of which has the next as an argument (and the
    /// last the first): in data-flow order (each feeds the next), from the earliest-created
    /// node, with it repeated at the end.
    fn cycle_names(&self, arg_order: Vec<usize>) -> Vec<String> {
        let mut ids: Vec<usize> = arg_order.into_iter().rev().collect();
        let first = ids
            .iter()
            .enumerate()
            .min_by_key(|(_, id)| **id)
            .map_or(0, |(i, _)| i);
        ids.rotate_left(first);
        if let Some(&head) = ids.first() {
            ids.push(head);
        }
        ids.iter().map(|&p| self.name_of(p).to_string()).collect()
    }

    /// Follows unresolved arguments from `start` until a node repeats; returns that cycle.
    fn cycle_from(&self, start: usize, stuck: &[bool]) -> Vec<String> {
        let mut path = vec![start];
        let mut i = start;
        while let Some(&next) = self.nodes[i].args.iter().find(|&&a| stuck[a]) {
            if let Some(pos) = path.iter().position(|&p| p == next) {
                return self.cycle_names(path.split_off(pos));
            }
            path.push(next);
            i = next;
        }
        path.iter().map(|&p| self.name_of(p).to_string()).collect()
    }

    // -----------------------------------------------------------------------------------------
    // The seed's forward, backward and update.
    // -----------------------------------------------------------------------------------------

    /// Turns check mode on or off: forward and backward then stop with
    /// [`Error::NonFinite`] at the first node whose value or gradient holds NaN or an
    /// infinity (like PyTorch's anomaly mode). A leaf holding one is named before any node
    /// computed from it. The same as [`Network::set_check_finite`].
    pub fn set_check_finite(&mut self, on: bool) {
        self.check_finite = on;
    }

    /// In check mode, the error for a non-finite element of `v`.
    fn check_value(&self, i: usize, v: &ArrayD<T>, pass: &'static str) -> Result<()> {
        if !self.check_finite {
            return Ok(());
        }
        let name = self.name_of(i);
        if pass == "forward" && self.op_of(i).is_none() {
            crate::rt::check_finite_leaf(v.view(), name)
        } else {
            crate::rt::check_finite(v.view(), name, pass)
        }
    }

    /// The positions of `order`'s nodes; fails for an id of another graph.
    fn indices(&self, order: &[NodeId]) -> Result<Vec<usize>> {
        order.iter().map(|&id| self.check(id)).collect()
    }

    /// Runs forward over `order` (from [`topological_sort`](Graph::topological_sort)).
    ///
    /// A node whose arguments are not in `order` uses their current values (a partial
    /// forward). Fails if `order` lists a node before one of its arguments, and for the
    /// errors of the ops; on failure every value is left as it was.
    pub fn forward_order(&mut self, order: &[NodeId]) -> Result<()> {
        self.forward_logged(order).map(drop)
    }

    /// [`forward_order`](Graph::forward_order), returning what it replaced.
    fn forward_logged(&mut self, order: &[NodeId]) -> Result<Undo<T>> {
        let order = self.indices(order)?;
        let mut pos = vec![usize::MAX; self.nodes.len()];
        for (k, &i) in order.iter().enumerate() {
            pos[i] = pos[i].min(k);
        }
        for (k, &i) in order.iter().enumerate() {
            if let Some(&a) = self.nodes[i]
                .args
                .iter()
                .find(|&&a| pos[a] >= k && pos[a] != usize::MAX)
            {
                return Err(self.misordered("Graph::forward_order", i, a));
            }
        }
        self.net.stale();
        let mut undo = Vec::new();
        match self.forward_in(&order, &mut undo) {
            Ok(()) => Ok(undo),
            Err(e) => {
                self.rollback(undo);
                Err(e)
            }
        }
    }

    fn forward_in(&mut self, order: &[usize], undo: &mut Undo<T>) -> Result<()> {
        for &i in order {
            match self.op_of(i) {
                None => {
                    if self.has_value[i] {
                        self.check_value(i, &self.values[i], "forward")?;
                    }
                }
                Some(op) => {
                    if self.check_finite {
                        for &a in &self.nodes[i].args {
                            if self.op_of(a).is_none() && self.has_value[a] {
                                self.check_value(a, &self.values[a], "forward")?;
                            }
                        }
                    }
                    let value = self.compute(i, op)?;
                    self.check_value(i, &value, "forward")?;
                    let stamp = self.tick();
                    let old = std::mem::replace(&mut self.values[i], value);
                    undo.push((i, old, self.has_value[i], self.stamps[i]));
                    self.has_value[i] = true;
                    self.stamps[i] = stamp;
                }
            }
        }
        Ok(())
    }

    /// Puts back the values a forward pass replaced.
    fn rollback(&mut self, undo: Undo<T>) {
        for (i, value, had, stamp) in undo.into_iter().rev() {
            self.values[i] = value;
            self.has_value[i] = had;
            self.stamps[i] = stamp;
        }
    }

    /// The error for an order listing node `i` before its argument `a`.
    fn misordered(&self, function: &'static str, i: usize, a: usize) -> Error {
        Error::InvalidArgument {
            function,
            what: format!(
                "the order lists `{}` before its argument `{}`; pass the order `topological_sort` returned",
                self.name_of(i),
                self.name_of(a)
            ),
        }
    }

    fn arg_value(&self, node: usize, arg: usize) -> Result<&ArrayD<T>> {
        match (self.has_value[arg], self.op_of(arg)) {
            (true, _) => Ok(&self.values[arg]),
            (false, None) => Err(Error::MissingFeed {
                input: self.name_of(arg).to_string(),
                needed_by: self.name_of(node).to_string(),
            }),
            (false, Some(_)) => Err(Error::NoValue {
                name: self.name_of(arg).to_string(),
                reason: "it is not computed before its consumer in the order given",
            }),
        }
    }

    fn compute(&self, i: usize, op: Op) -> Result<ArrayD<T>> {
        let args: Vec<Option<&ArrayD<T>>> = self.nodes[i]
            .args
            .iter()
            .map(|&a| self.arg_value(i, a).map(Some))
            .collect::<Result<_>>()?;
        let shapes: Vec<&[usize]> = args.iter().flatten().map(|a| a.shape()).collect();
        let shape = op.infer_shape(&shapes).map_err(|e| Error::OpShape {
            node: self.name_of(i).to_string(),
            message: exec::shape_message(op, &e.message(op, &self.arg_names(i)), &shapes),
        })?;
        let attrs = &self.spec.nodes[i].attrs;
        check_literals::<T>(self.name_of(i), op, attrs)?;
        let mut out = exec::zeros(self.name_of(i), &shape)?;
        let dyn_node = DynNode { args: &args, attrs };
        ops::forward_dyn(op, &dyn_node, out.view_mut()).map_err(|e| self.kernel(i, e))?;
        Ok(out)
    }

    fn arg_names(&self, i: usize) -> Vec<&str> {
        self.nodes[i]
            .args
            .iter()
            .map(|&a| self.name_of(a))
            .collect()
    }

    /// The [`Error`] for a kernel's failure at node `i`.
    fn kernel(&self, i: usize, e: KernelError) -> Error {
        e.into_error(self.name_of(i), &self.arg_names(i))
    }

    /// Runs backward over `order` from `cost`: every node gets d cost / d node, summed over
    /// its consumers. `cost` must be a scalar computed by the last forward.
    ///
    /// Fails with [`Error::BackwardBeforeForward`] unless every node the cost is computed
    /// from holds the value of a forward pass of the current values (none set, updated or
    /// rewired since), and with [`Error::InvalidArgument`] if `order` leaves one of those
    /// nodes out, lists it twice or before its arguments. On failure no gradient changes.
    pub fn backward_order(&mut self, order: &[NodeId], cost: NodeId) -> Result<()> {
        let c = self.check(cost)?;
        let order = self.indices(order)?;
        if !order.contains(&c) {
            return Err(Error::NoValue {
                name: self.name_of(c).to_string(),
                reason: "the cost is not in the sorted order; is it fed from these inputs?",
            });
        }
        if !self.has_value[c] {
            return Err(Error::BackwardBeforeForward);
        }
        let shape = self.values[c].shape();
        if !shape.is_empty() {
            return Err(Error::Shape {
                node: self.name_of(c).to_string(),
                expected: "[] (a scalar cost)".into(),
                found: shape.to_vec(),
            });
        }
        self.check_backward(&order, c)?;

        let mut grads: Vec<Option<ArrayD<T>>> = vec![None; self.nodes.len()];
        grads[c] = Some(ArrayD::from_elem(IxDyn(&[]), T::one()));
        for &i in order.iter().rev() {
            let Some(op) = self.op_of(i) else {
                continue;
            };
            let Some(g) = grads[i].take() else {
                continue; // does not reach the cost
            };
            // Every consumer has contributed by now: the gradient is complete.
            self.check_value(i, &g, "backward")?;
            self.contribute(i, op, &g, &mut grads)?;
            grads[i] = Some(g);
        }
        for &i in &order {
            if let (None, Some(g)) = (self.op_of(i), &grads[i]) {
                self.check_value(i, g, "backward")?;
            }
        }
        for (i, g) in grads.into_iter().enumerate() {
            self.has_grad[i] = g.is_some();
            if let Some(g) = g {
                self.grads[i] = g;
            }
        }
        self.net.grads_current = false;
        Ok(())
    }

    /// Checks that every node `cost` is computed from is in `order` once, after its
    /// arguments, and holds a value computed from its arguments' current values.
    fn check_backward(&self, order: &[usize], cost: usize) -> Result<()> {
        let mut pos = vec![usize::MAX; self.nodes.len()];
        for (k, &i) in order.iter().enumerate() {
            if pos[i] != usize::MAX {
                return Err(Error::InvalidArgument {
                    function: "Graph::backward_order",
                    what: format!(
                        "the order lists `{}` twice; pass the order `topological_sort` returned",
                        self.name_of(i)
                    ),
                });
            }
            pos[i] = k;
        }
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![cost];
        seen[cost] = true;
        while let Some(i) = stack.pop() {
            if pos[i] == usize::MAX {
                return Err(Error::InvalidArgument {
                    function: "Graph::backward_order",
                    what: format!(
                        "`{}` is needed to compute `{}` but is not in the order; pass the order `topological_sort` returned",
                        self.name_of(i),
                        self.name_of(cost)
                    ),
                });
            }
            if !self.has_value[i] || self.stamps[i] == 0 {
                return Err(Error::BackwardBeforeForward);
            }
            for &a in &self.nodes[i].args {
                // An argument missing from the order is reported when it is visited.
                if pos[a] != usize::MAX && pos[a] >= pos[i] {
                    return Err(self.misordered("Graph::backward_order", i, a));
                }
                if self.stamps[a] >= self.stamps[i] {
                    // The argument changed after this node was computed.
                    return Err(Error::BackwardBeforeForward);
                }
                if !std::mem::replace(&mut seen[a], true) {
                    stack.push(a);
                }
            }
        }
        Ok(())
    }

    /// Adds node `i`'s contribution to each of its arguments' gradients.
    fn contribute(
        &self,
        i: usize,
        op: Op,
        g: &ArrayD<T>,
        grads: &mut [Option<ArrayD<T>>],
    ) -> Result<()> {
        for (k, &a) in self.nodes[i].args.iter().enumerate() {
            if !op.differentiable(k) {
                continue; // data, such as labels: no gradient
            }
            let (mut buf, accumulate) = match grads[a].take() {
                Some(buf) => (buf, true),
                None => {
                    if !self.has_value[a] {
                        return Err(Error::BackwardBeforeForward);
                    }
                    (exec::zeros(self.name_of(a), self.values[a].shape())?, false)
                }
            };
            let out = if accumulate {
                GradOut::add(buf.view_mut())
            } else {
                GradOut::write(buf.view_mut())
            };
            let r = self.contribute_one(i, op, k, g, out);
            grads[a] = Some(buf);
            r?;
        }
        Ok(())
    }

    fn contribute_one(
        &self,
        i: usize,
        op: Op,
        k: usize,
        g: &ArrayD<T>,
        out: GradOut<'_, T, IxDyn>,
    ) -> Result<()> {
        let args: Vec<Option<&ArrayD<T>>> = self.nodes[i]
            .args
            .iter()
            .map(|&a| self.arg_value(i, a).map(Some))
            .collect::<Result<_>>()?;
        if !self.has_value[i] {
            return Err(Error::BackwardBeforeForward);
        }
        let b = DynBackward {
            node: DynNode {
                args: &args,
                attrs: &self.spec.nodes[i].attrs,
            },
            value: &self.values[i],
            g,
        };
        ops::backward_dyn(op, &b, k, out).map_err(|e| self.kernel(i, e))
    }

    /// The seed's `forward_and_backward(graph)`, with the cost named: runs forward over
    /// `order`, then backward from `cost`, and returns the cost's value. If either fails,
    /// values and gradients are left as they were.
    pub fn forward_and_backward(&mut self, order: &[NodeId], cost: NodeId) -> Result<T> {
        let undo = self.forward_logged(order)?;
        if let Err(e) = self.backward_order(order, cost) {
            self.rollback(undo);
            return Err(e);
        }
        let c = self.check(cost)?;
        Ok(self.values[c]
            .iter()
            .next()
            .copied()
            .unwrap_or_else(T::zero))
    }

    /// The course's `sgd_update(trainables, learning_rate)`: `value -= lr * gradient` for each
    /// trainable.
    ///
    /// Everything is checked before any value changes, so on failure every trainable keeps
    /// its value bit for bit. Fails with [`Error::InvalidArgument`] for a non-finite `lr` or
    /// a trainable listed twice, with [`Error::NoGradient`] for a trainable without a
    /// gradient or whose value flows into an argument that gets no gradient (the labels of
    /// `softmax_cross_entropy`: its gradient would be missing or incomplete), and with
    /// [`Error::Shape`] if a trainable was given a value of another shape since the backward.
    /// The updated values are new: backward needs a forward of them first.
    pub fn sgd_update(&mut self, trainables: &[NodeId], lr: T) -> Result<()> {
        if !lr.is_finite() {
            return Err(Error::InvalidArgument {
                function: "Graph::sgd_update",
                what: format!("the learning rate must be finite, not {lr}"),
            });
        }
        let ids = self.indices(trainables)?;
        let into_labels = self.feeds_data_args();
        for (k, &t) in ids.iter().enumerate() {
            let name = self.name_of(t);
            if ids[..k].contains(&t) {
                return Err(Error::InvalidArgument {
                    function: "Graph::sgd_update",
                    what: format!("`{name}` is listed twice among the trainables"),
                });
            }
            if into_labels[t] {
                return Err(Error::NoGradient {
                    name: name.to_string(),
                    reason: LABELS_REASON,
                });
            }
            if !(self.has_value[t] && self.has_grad[t]) {
                return Err(Error::NoGradient {
                    name: name.to_string(),
                    reason: "it has no value or gradient yet; run forward_and_backward first",
                });
            }
            let (v, g) = (&self.values[t], &self.grads[t]);
            if v.shape() != g.shape() {
                return Err(Error::Shape {
                    node: name.to_string(),
                    expected: miniflow_ops::format_shape(g.shape()),
                    found: v.shape().to_vec(),
                });
            }
        }
        for t in ids {
            let stamp = self.tick();
            let (v, g) = (&mut self.values[t], &self.grads[t]);
            v.zip_mut_with(g, |v, &g| *v = *v - lr * g);
            self.stamps[t] = stamp;
        }
        self.net.stale();
        Ok(())
    }

    /// Which nodes' values reach an op argument that gets no gradient (the labels of
    /// `softmax_cross_entropy`), directly or through other nodes (cycles allowed).
    fn feeds_data_args(&self) -> Vec<bool> {
        let mut marked = vec![false; self.nodes.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(op) = self.op_of(i) {
                for (k, &a) in node.args.iter().enumerate() {
                    if !op.differentiable(k) {
                        stack.push(a);
                    }
                }
            }
        }
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut marked[i], true) {
                stack.extend_from_slice(&self.nodes[i].args);
            }
        }
        marked
    }

    // -----------------------------------------------------------------------------------------
    // The network path: a plan made once, run on the engine of `crate::exec`.
    // -----------------------------------------------------------------------------------------

    /// The graph's plan (with every rule), made now if the structure changed since the last.
    fn program(&mut self) -> Result<&Program> {
        if self.net.prog.is_none() {
            let prog = self.plan_program()?;
            self.net.sized = vec![0; 1 + prog.plan.outputs.len()];
            self.net.prog = Some(prog);
        }
        self.net.prog.as_ref().ok_or(Error::BackwardBeforeForward)
    }

    /// Plans the graph as a network: the loss, params, inputs and outputs as marked.
    fn plan_program(&self) -> Result<Program> {
        let Some(loss) = self.loss else {
            return Err(Error::InvalidArgument {
                function: "Graph (as a Network)",
                what: "the graph has no loss: mark the node backward starts from with \
                       `Graph::set_loss`"
                    .into(),
            });
        };
        let nodes = self
            .spec
            .nodes
            .iter()
            .zip(&self.nodes)
            .map(|(s, n)| match s.kind {
                NodeKind::Input { grad } => PlanNode::input(grad),
                NodeKind::Param => PlanNode::param(),
                NodeKind::Op(op) => PlanNode::op(op, n.args.clone()),
            })
            .collect();
        let dag = Dag {
            nodes,
            loss,
            outputs: self.outputs.clone(),
        };
        let names = self.spec.nodes.iter().map(|n| n.name.to_string()).collect();
        let attrs = self.spec.nodes.iter().map(|n| n.attrs.to_vec()).collect();
        let decl = self
            .spec
            .nodes
            .iter()
            .map(|n| match n.kind {
                NodeKind::Input { .. } => n.shape.as_deref().map(<[DimSpec]>::to_vec),
                _ => None,
            })
            .collect();
        let prog = Program::new(names, dag, attrs, decl, Rules::ALL)?;
        let into_labels = self.feeds_data_args();
        // What `network!` rejects at compile time: a trained leaf that cannot reach the loss,
        // or whose value flows into labels.
        for (i, node) in self.spec.nodes.iter().enumerate() {
            let wants = match node.kind {
                NodeKind::Param => true,
                NodeKind::Input { grad } => grad,
                NodeKind::Op(_) => false,
            };
            if !wants {
                continue;
            }
            if into_labels[i] {
                return Err(Error::NoGradient {
                    name: node.name.to_string(),
                    reason: LABELS_REASON,
                });
            }
            if node.kind == NodeKind::Param && !prog.plan.backward.grads[i] {
                return Err(Error::NoGradient {
                    name: node.name.to_string(),
                    reason: "it cannot affect the loss: no path leads from it to the loss, so \
                             training would never change it",
                });
            }
        }
        Ok(prog)
    }

    /// Runs the forward pass of `target` on the network path, inferring shapes only if a
    /// leaf changed shape since this pass last ran to the end; stamps what it computed.
    fn run_forward(&mut self, target: Target) -> Result<usize> {
        self.program()?;
        let Graph {
            net,
            values,
            has_value,
            stamps,
            clock,
            check_finite,
            ..
        } = self;
        let Some(prog) = net.prog.as_ref() else {
            return Err(Error::BackwardBeforeForward);
        };
        let which = match target {
            Target::Loss => 0,
            Target::Output(k) => k + 1,
        };
        let opts = RunOpts {
            check: *check_finite,
            infer: net.sized[which] != net.shape_gen,
        };
        let f = prog.forward(target)?;
        net.sized[which] = 0;
        let r = exec::run_forward(prog, values, has_value, target, opts);
        for &i in &f.ops {
            if r.is_ok() {
                *clock += 1;
                stamps[i] = *clock;
                has_value[i] = true;
            } else {
                stamps[i] = 0;
            }
        }
        r?;
        net.sized[which] = net.shape_gen;
        Ok(f.target)
    }

    /// Runs the backward schedule of `pass` on the network path.
    fn run_schedule(&mut self, pass: Pass, lr: T) -> Result<()> {
        let Graph {
            net,
            values,
            grads,
            has_grad,
            check_finite,
            ..
        } = self;
        let Some(prog) = net.prog.as_ref() else {
            return Err(Error::BackwardBeforeForward);
        };
        has_grad.iter_mut().for_each(|g| *g = false);
        exec::run_schedule(prog, values, grads, pass, lr, *check_finite)?;
        has_grad.copy_from_slice(&prog.schedule(pass).grads);
        Ok(())
    }

    /// d loss / d node `i` as [`Network::grad_dyn`] gives it.
    fn grad_of(&self, i: usize) -> Result<ArrayViewD<'_, T>> {
        let computed = match &self.net.prog {
            Some(prog) => prog.plan.backward.grads[i] || prog.plan.training.grads[i],
            None => {
                let prog = self.plan_program()?;
                prog.plan.backward.grads[i] || prog.plan.training.grads[i]
            }
        };
        let name = self.name_of(i);
        if !computed {
            return Err(Error::NoGradient {
                name: name.to_string(),
                reason: match self.spec.nodes[i].kind {
                    NodeKind::Input { grad: false } => {
                        "it is an input whose gradient is not asked for \
                         (`Graph::set_requires_grad`, `#[grad]` in `network!`)"
                    }
                    _ => "it lies on no path from a param or an input with a gradient to the loss",
                },
            });
        }
        if !self.net.grads_current {
            return Err(crate::rt::stale_grad(name));
        }
        Ok(self.grads[i].view())
    }

    /// The index of leaf `name` of kind `wanted` ("an input" or "a param").
    fn leaf_named(&self, name: &str, param: bool) -> Result<usize> {
        let i = self.index_named(name)?;
        let ok = match self.spec.nodes[i].kind {
            NodeKind::Param => param,
            NodeKind::Input { .. } => !param,
            NodeKind::Op(_) => false,
        };
        if ok {
            Ok(i)
        } else {
            Err(crate::rt::wrong_kind(
                &self.spec,
                name,
                if param { "a param" } else { "an input" },
            ))
        }
    }
}

/// How a shape of rank `rank` reads in a message: `[_, _] (rank 2)`.
fn rank_text(rank: usize) -> String {
    format!("[{}] (rank {rank}, any sizes)", vec!["_"; rank].join(", "))
}

/// Why a trained leaf flowing into labels is refused.
const LABELS_REASON: &str = "its value flows into an argument that gets no gradient (the labels \
                             of `softmax_cross_entropy`), so its gradient would be incomplete; \
                             labels must not depend on what is trained";

fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Input { .. } => "an input",
        NodeKind::Param => "a param",
        NodeKind::Op(_) => "an op node",
    }
}

/// A graph is a [`Network`]: everything written over the trait (optimizers, [`init`],
/// [`gradcheck`], [`Fit`], [`persist`], DOT export) works on it, with the generated
/// network's semantics and, for the same network, its results bit for bit (see the
/// [module documentation](self)).
///
/// [`init`]: crate::init
/// [`gradcheck`]: crate::gradcheck
/// [`Fit`]: crate::train::Fit
/// [`persist`]: crate::persist
impl<T: Scalar> Network for Graph<T> {
    type Elem = T;

    fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    fn set_input(&mut self, name: &str, value: ArrayViewD<'_, T>) -> Result<()> {
        let i = self.leaf_named(name, false)?;
        self.check_leaf(i, &value)?;
        self.copy_into(i, value);
        Ok(())
    }

    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, T>) -> Result<()> {
        let i = self.leaf_named(name, true)?;
        self.check_leaf(i, &value)?;
        self.copy_into(i, value);
        Ok(())
    }

    fn forward(&mut self) -> Result<T> {
        self.net.fresh = false;
        self.net.grads_current = false;
        self.run_forward(Target::Loss)?;
        self.program()?;
        let prog = self.net.prog.as_ref().ok_or(Error::BackwardBeforeForward)?;
        let loss = prog.loss_value(&self.values)?;
        self.net.fresh = true;
        Ok(loss)
    }

    fn backward(&mut self) -> Result<()> {
        if !self.net.fresh {
            return Err(Error::BackwardBeforeForward);
        }
        self.net.grads_current = false;
        self.run_schedule(Pass::Backward, T::zero())?;
        self.net.grads_current = true;
        Ok(())
    }

    fn sgd_step(&mut self, lr: T) -> Result<T> {
        crate::rt::check_lr(lr)?;
        if self.check_finite {
            // Every gradient and every updated value checked before any write.
            let loss = self.forward_backward()?;
            crate::rt::sgd_checked(self, lr)?;
            self.net.grads_current = false;
            return Ok(loss);
        }
        let loss = self.forward()?;
        self.net.fresh = false;
        self.net.grads_current = false;
        let r = self.run_schedule(Pass::Training, lr);
        self.touch_params();
        r?;
        Ok(loss)
    }

    fn evaluate_dyn(&mut self, name: &str) -> Result<ArrayViewD<'_, T>> {
        let i = self.index_named(name)?;
        let target = if Some(i) == self.loss {
            Target::Loss
        } else if let Some(k) = self.outputs.iter().position(|&o| o == i) {
            Target::Output(k)
        } else {
            return Err(crate::rt::wrong_kind(
                &self.spec,
                name,
                "an output or the loss",
            ));
        };
        if let Err(e) = self.run_forward(target) {
            self.net.fresh = false;
            return Err(e);
        }
        if target == Target::Loss {
            self.net.fresh = true;
        }
        Ok(self.values[i].view())
    }

    fn value_dyn(&self, name: &str) -> Result<ArrayViewD<'_, T>> {
        self.value(name)
    }

    fn grad_dyn(&self, name: &str) -> Result<ArrayViewD<'_, T>> {
        let i = self.index_named(name)?;
        self.grad_of(i)
    }

    fn set_check_finite(&mut self, on: bool) {
        self.check_finite = on;
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.net.fresh = false;
        let Graph {
            spec,
            values,
            grads,
            has_value,
            ..
        } = self;
        // `index` counts every param, set or not, so that optimizer state stays keyed to the
        // same param when an unsized one is set later.
        let params = spec
            .nodes
            .iter()
            .zip(values.iter_mut().zip(grads.iter()).zip(has_value.iter()))
            .filter(|(n, _)| n.kind == NodeKind::Param)
            .enumerate();
        for (index, (node, ((value, grad), &set))) in params {
            if set {
                f(ParamMut {
                    index,
                    name: &node.name,
                    value: value.view_mut(),
                    grad: grad.view(),
                });
            }
        }
        self.touch_params();
    }
}

impl<T: Scalar> Graph<T> {
    /// After params may have changed: new stamps (the seed-style backward needs a forward of
    /// them).
    fn touch_params(&mut self) {
        for i in 0..self.nodes.len() {
            if self.spec.nodes[i].kind == NodeKind::Param {
                self.clock += 1;
                self.stamps[i] = self.clock;
            }
        }
    }
}

/// Checks that `attrs` are the literals `op` takes: as many, and each finite, also once
/// converted to the element type `T` (`1e39` is finite as `f64` but not as `f32`).
fn check_literals<T: Scalar>(node: &str, op: Op, attrs: &[f64]) -> Result<()> {
    let bad = |message: String| Error::BadLiteral {
        node: node.to_string(),
        message,
    };
    let positions: Vec<usize> = op.literals().collect();
    if attrs.len() != positions.len() {
        let names: Vec<String> = positions
            .iter()
            .filter_map(|&p| op.param(p))
            .map(|p| format!("`{}`", p.name))
            .collect();
        return Err(bad(format!(
            "`{op}` takes {} literal argument{}{}, found {}; expected {}",
            positions.len(),
            if positions.len() == 1 { "" } else { "s" },
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            },
            attrs.len(),
            op.signature()
        )));
    }
    for (&pos, &value) in positions.iter().zip(attrs) {
        op.check_literal(pos, value).map_err(bad)?;
        if !T::from_f64(value).is_finite() {
            let name = op.param(pos).map_or("literal", |p| p.name);
            return Err(bad(format!(
                "the `{name}` of `{op}`, {value:e}, is not finite as {} (its largest value is {:e})",
                std::any::type_name::<T>(),
                T::max_value().to_f64()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn an_unfed_input_is_an_error_at_forward_not_a_dropped_subgraph() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x").unwrap();
        let y = g.input("y").unwrap();
        let s = g.add("s", x, y).unwrap();
        let order = g.topological_sort([(x, array![1.0].into_dyn())]).unwrap();
        assert_eq!(order, [x, y, s]);
        assert_eq!(
            g.forward_order(&order).unwrap_err(),
            Error::MissingFeed {
                input: "y".into(),
                needed_by: "s".into()
            }
        );
    }

    #[test]
    fn the_order_needs_no_values() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x").unwrap();
        let s = g.sigmoid("s", x).unwrap();
        let order = g.topological_sort([]).unwrap();
        assert_eq!(order, [x, s]);
        for v in [1.0, 2.0] {
            g.set_value(x, array![v].into_dyn()).unwrap();
            g.forward_order(&order).unwrap();
            assert_eq!(g.value(s).unwrap()[[0]], 1.0 / (1.0 + (-v).exp()));
        }
    }

    #[test]
    fn cycle_is_reported_with_its_path() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x").unwrap();
        let y = g.input("y").unwrap();
        let a = g.op("a", Op::Add, &[x, y]).unwrap();
        let b = g.op("b", Op::Sigmoid, &[a]).unwrap();
        g.replace_arg(a, 1, b).unwrap();
        let err = g
            .topological_sort([(x, array![1.0].into_dyn()), (y, array![1.0].into_dyn())])
            .unwrap_err();
        assert_eq!(
            err,
            Error::Cycle {
                path: vec!["a".into(), "b".into(), "a".into()]
            }
        );
        assert!(!g.value(x).unwrap_err().to_string().is_empty());
    }

    #[test]
    fn kahn_order_is_deterministic_and_respects_edges() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x").unwrap();
        let y = g.input("y").unwrap();
        let s1 = g.sigmoid("s1", x).unwrap();
        let s2 = g.sigmoid("s2", y).unwrap();
        let sum = g.add("sum", s2, s1).unwrap();
        let order = g
            .topological_sort([(y, array![1.0].into_dyn()), (x, array![2.0].into_dyn())])
            .unwrap();
        assert_eq!(order, vec![x, y, s1, s2, sum]);
    }

    #[test]
    fn op_shape_errors_name_nodes() {
        let mut g = Graph::<f64>::new();
        let x = g.input("X").unwrap();
        let w = g.input("W").unwrap();
        let b = g.input("b").unwrap();
        let f = g.op("f", Op::Linear, &[x, w, b]).unwrap();
        let order = g
            .topological_sort([
                (x, ArrayD::zeros(IxDyn(&[2, 3]))),
                (w, ArrayD::zeros(IxDyn(&[2, 1]))),
                (b, ArrayD::zeros(IxDyn(&[1]))),
            ])
            .unwrap();
        let err = g.forward_order(&order).unwrap_err();
        assert!(
            matches!(&err, Error::OpShape { node, .. } if node == "f"),
            "{err}"
        );
        assert!(err.to_string().contains("dimension 0 of `W` is 2"), "{err}");
        let _ = f;
    }

    #[test]
    fn wrong_arity_is_an_error() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x").unwrap();
        assert!(g.op("s", Op::Sigmoid, &[x, x]).is_err());
        assert!(g
            .op(
                "s",
                Op::Sigmoid,
                &[NodeId {
                    index: 7,
                    graph: g.identity
                }]
            )
            .is_err());
    }
}
