//! A runtime graph that mirrors the seed's MiniFlow: nodes created at run time, a Kahn
//! topological sort from the fed inputs, `forward_and_backward`, and `sgd_update`.
//!
//! It calls the same kernels as generated code ([`crate::ops`]) and checks shapes with the
//! same rules ([`Op::infer_shape`]), so it serves both as a feature (networks built at run
//! time) and as the oracle generated networks are tested against.
//!
//! ```
//! use miniflow_core::Graph;
//! use ndarray::{array, ArrayD};
//!
//! let mut g = Graph::<f64>::new();
//! let (x, y) = (g.input("X")?, g.input("y")?);
//! let (w, b) = (g.input("W")?, g.input("b")?);
//! let f = g.linear(x, w, b)?;
//! let a = g.sigmoid(f)?;
//! let cost = g.mse(y, a)?;
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
//! take them apart from the node arguments: `g.leaky_relu(z, 0.01)?`, or
//! [`Graph::op_with`]`("h", Op::LeakyRelu, &[z], &[0.01])?`.
//!
//! Values are checked as generated networks check them: a fed value with a dimension of size
//! 0 is [`Error::EmptyBatch`], and [`backward`](Graph::backward) only runs on the values of a
//! forward pass of the current inputs ([`Error::BackwardBeforeForward`] otherwise). A call
//! that fails changes no value, gradient or node.
//!
//! An argument that gets no gradient (the labels of `softmax_cross_entropy`) receives no
//! contribution in [`Graph::backward`]. Every leaf of a graph is an input, so the graph cannot
//! tell data from weights when building; instead [`Graph::sgd_update`] refuses, with
//! [`Error::NoGradient`], to train a node whose value flows into such an argument, since its
//! gradient would be missing or incomplete. (The `network!` macro rejects the same at compile
//! time, for params and `#[grad]` inputs.)

use crate::error::{closest, Error, Result};
use crate::network::{NetworkSpec, NodeKind};
use crate::ops::{self, DynBackward, DynNode, GradOut, KernelError};
use crate::Scalar;
use miniflow_ops::Op;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
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

/// The identity of the next graph created (or cloned).
static NEXT_GRAPH: AtomicU64 = AtomicU64::new(1);

fn new_identity() -> u64 {
    NEXT_GRAPH.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone, Debug)]
struct Node<T> {
    name: String,
    op: Option<Op>,
    args: Vec<usize>,
    /// The op's literal arguments (e.g. leaky_relu's slope).
    attrs: Vec<f64>,
    value: Option<ArrayD<T>>,
    grad: Option<ArrayD<T>>,
    /// The identity of the graph that created the node (a clone keeps its original's nodes).
    origin: u64,
    /// When the value was last written, on the graph's clock (0: no valid value). An op
    /// node's value is that of its arguments' current values exactly when it is newer than
    /// each of them: backward checks this for every node it uses.
    stamp: u64,
}

/// A network built at run time, like the seed's MiniFlow.
///
/// Every value carries a version stamp (as PyTorch's tensors carry a version counter):
/// [`backward`](Graph::backward) uses only values that one consistent forward pass computed
/// from the current inputs, and fails with [`Error::BackwardBeforeForward`] otherwise (a value
/// set, a trainable updated or an argument replaced since). A call that fails changes
/// nothing: no value, gradient or node is left half-updated.
#[derive(Debug)]
pub struct Graph<T = f64> {
    nodes: Vec<Node<T>>,
    /// Each node's index by name.
    names: HashMap<String, usize>,
    /// The identity carried by the ids of the nodes this graph creates.
    identity: u64,
    /// The clock that stamps values; only ever grows.
    clock: u64,
    /// Check mode: stop at the first node whose value or gradient is not finite.
    check_finite: bool,
}

impl<T: Clone> Clone for Graph<T> {
    /// A copy with the same nodes and values. The original's ids stay valid for the nodes
    /// they name in the copy; nodes added later to either graph are that graph's own.
    fn clone(&self) -> Self {
        Graph {
            nodes: self.nodes.clone(),
            names: self.names.clone(),
            identity: new_identity(),
            clock: self.clock,
            check_finite: self.check_finite,
        }
    }
}

impl<T: Scalar> Default for Graph<T> {
    fn default() -> Self {
        Graph::new()
    }
}

/// The values a forward pass replaced, to restore them if the pass fails.
type Undo<T> = Vec<(usize, Option<ArrayD<T>>, u64)>;

impl<T: Scalar> Graph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Graph {
            nodes: Vec::new(),
            names: HashMap::new(),
            identity: new_identity(),
            clock: 0,
            check_finite: false,
        }
    }

    /// Adds an input: a leaf whose value is fed (data, weights and biases alike, as in the
    /// seed). Fails with [`Error::DuplicateNode`] if the name is taken.
    pub fn input(&mut self, name: impl Into<String>) -> Result<NodeId> {
        let name = name.into();
        self.check_name(&name)?;
        Ok(self.push(name, None, Vec::new(), Vec::new()))
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
        Ok(self.push(name, Some(op), args, attrs.to_vec()))
    }

    /// `linear(x, w, b) = x·w + b`.
    pub fn linear(&mut self, x: NodeId, w: NodeId, b: NodeId) -> Result<NodeId> {
        self.auto(Op::Linear, &[x, w, b], &[])
    }

    /// `sigmoid(x)`.
    pub fn sigmoid(&mut self, x: NodeId) -> Result<NodeId> {
        self.auto(Op::Sigmoid, &[x], &[])
    }

    /// `mse(y, a)`, the mean squared error (the seed's argument order: target first).
    pub fn mse(&mut self, y: NodeId, a: NodeId) -> Result<NodeId> {
        self.auto(Op::Mse, &[y, a], &[])
    }

    /// `add(x, y)`, elementwise. For more terms use [`Graph::op`] with [`Op::Add`].
    pub fn add(&mut self, x: NodeId, y: NodeId) -> Result<NodeId> {
        self.auto(Op::Add, &[x, y], &[])
    }

    /// `relu(x) = max(x, 0)`, elementwise.
    pub fn relu(&mut self, x: NodeId) -> Result<NodeId> {
        self.auto(Op::Relu, &[x], &[])
    }

    /// `tanh(x)`, elementwise.
    pub fn tanh(&mut self, x: NodeId) -> Result<NodeId> {
        self.auto(Op::Tanh, &[x], &[])
    }

    /// `leaky_relu(x, slope)`, elementwise. A `slope` that is not finite in the element type
    /// is [`Error::BadLiteral`].
    pub fn leaky_relu(&mut self, x: NodeId, slope: f64) -> Result<NodeId> {
        self.auto(Op::LeakyRelu, &[x], &[slope])
    }

    /// `matmul(a, b) = a·b`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.auto(Op::Matmul, &[a, b], &[])
    }

    /// `mul(a, b) = a ⊙ b`, elementwise.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.auto(Op::Mul, &[a, b], &[])
    }

    /// `sub(a, b) = a - b`, elementwise.
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.auto(Op::Sub, &[a, b], &[])
    }

    /// `sum(x)`, a scalar.
    pub fn sum(&mut self, x: NodeId) -> Result<NodeId> {
        self.auto(Op::Sum, &[x], &[])
    }

    /// `mean(x)`, a scalar.
    pub fn mean(&mut self, x: NodeId) -> Result<NodeId> {
        self.auto(Op::Mean, &[x], &[])
    }

    /// `softmax(x)` of each row of a `[m, c]` node.
    pub fn softmax(&mut self, x: NodeId) -> Result<NodeId> {
        self.auto(Op::Softmax, &[x], &[])
    }

    /// `softmax_cross_entropy(logits, labels)`, a scalar loss; `labels` are class indices
    /// (`[m]`, whole numbers below the class count) and get no gradient.
    pub fn softmax_cross_entropy(&mut self, logits: NodeId, labels: NodeId) -> Result<NodeId> {
        self.auto(Op::SoftmaxCrossEntropy, &[logits, labels], &[])
    }

    /// `bce(y, p)`, binary cross-entropy of probabilities (target first, as in `mse`).
    pub fn bce(&mut self, y: NodeId, p: NodeId) -> Result<NodeId> {
        self.auto(Op::Bce, &[y, p], &[])
    }

    /// `bce_logits(y, z)`, binary cross-entropy of `sigmoid(z)`, from the logits.
    pub fn bce_logits(&mut self, y: NodeId, z: NodeId) -> Result<NodeId> {
        self.auto(Op::BceLogits, &[y, z], &[])
    }

    /// A node named after its op and position (`linear4`; `linear4_1` if that is taken).
    fn auto(&mut self, op: Op, args: &[NodeId], attrs: &[f64]) -> Result<NodeId> {
        let base = format!("{}{}", op.name(), self.nodes.len());
        let mut name = base.clone();
        let mut k = 0;
        while self.names.contains_key(&name) {
            k += 1;
            name = format!("{base}_{k}");
        }
        self.op_with(name, op, args, attrs)
    }

    fn check_name(&self, name: &str) -> Result<()> {
        if self.names.contains_key(name) {
            Err(Error::DuplicateNode {
                name: name.to_string(),
            })
        } else {
            Ok(())
        }
    }

    fn push(&mut self, name: String, op: Option<Op>, args: Vec<usize>, attrs: Vec<f64>) -> NodeId {
        let index = self.nodes.len();
        self.names.insert(name.clone(), index);
        self.nodes.push(Node {
            name,
            op,
            args,
            attrs,
            value: None,
            grad: None,
            origin: self.identity,
            stamp: 0,
        });
        self.id(index)
    }

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

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Replaces argument `index` of op node `node` with `arg`, as assigning to the seed's
    /// `inbound_nodes` would. This can create a cycle, which the next sort reports. The node's
    /// value no longer matches its arguments: backward fails until a forward recomputes it.
    pub fn replace_arg(&mut self, node: NodeId, index: usize, arg: NodeId) -> Result<()> {
        let i = self.check(node)?;
        let a = self.check(arg)?;
        let n = &mut self.nodes[i];
        let len = n.args.len();
        match n.args.get_mut(index) {
            Some(slot) => {
                *slot = a;
                n.stamp = 0;
                Ok(())
            }
            None => Err(Error::OpShape {
                node: n.name.clone(),
                message: format!("has {len} arguments, so there is no argument {index} to replace"),
            }),
        }
    }

    /// The node's name (`None` for an id of another graph).
    pub fn name(&self, id: NodeId) -> Option<&str> {
        self.index_of(id).map(|i| self.nodes[i].name.as_str())
    }

    /// The node called `name`.
    pub fn find(&self, name: &str) -> Result<NodeId> {
        match self.names.get(name) {
            Some(&i) => Ok(self.id(i)),
            None => Err(Error::UnknownNode {
                name: name.to_string(),
                suggestion: closest(name, self.nodes.iter().map(|n| n.name.as_str())),
            }),
        }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node's value, once fed or computed (`None` for an id of another graph).
    pub fn value(&self, id: NodeId) -> Option<ArrayViewD<'_, T>> {
        let i = self.index_of(id)?;
        self.nodes[i].value.as_ref().map(|v| v.view())
    }

    /// d cost / d node from the last backward, summed over every consumer of the node
    /// (`None` for an id of another graph).
    pub fn gradient(&self, id: NodeId) -> Option<ArrayViewD<'_, T>> {
        let i = self.index_of(id)?;
        self.nodes[i].grad.as_ref().map(|g| g.view())
    }

    /// Sets an input's value (what the seed's `topological_sort` does with `feed_dict`).
    ///
    /// Fails with [`Error::WrongKind`] for an op node and with [`Error::EmptyBatch`] for a
    /// value with a dimension of size 0 (as generated networks do for an empty batch).
    pub fn set_value(&mut self, id: NodeId, value: ArrayD<T>) -> Result<()> {
        let i = self.check(id)?;
        self.check_feed(i, &value)?;
        self.nodes[i].value = Some(value);
        self.nodes[i].stamp = self.tick();
        Ok(())
    }

    /// Whether `value` can be fed to node `i`.
    fn check_feed(&self, i: usize, value: &ArrayD<T>) -> Result<()> {
        let node = &self.nodes[i];
        if node.op.is_some() {
            return Err(Error::WrongKind {
                name: node.name.clone(),
                wanted: "an input",
                actual: "an op node",
            });
        }
        if let Some(axis) = value.shape().iter().position(|&n| n == 0) {
            return Err(Error::EmptyBatch {
                node: node.name.clone(),
                dim: format!("axis {axis}"),
                found: value.shape().to_vec(),
            });
        }
        Ok(())
    }

    /// The seed's `topological_sort(feed_dict)`: sets each fed input's value and returns the
    /// nodes reachable from the fed inputs in an order where every node comes after its
    /// arguments (Kahn's algorithm, ties broken by creation order).
    ///
    /// Unlike the seed, a reachable node with an argument that depends on no fed input is an
    /// [`Error::MissingFeed`] rather than a silently dropped subgraph, and a cycle (including
    /// one behind an argument that is not fed) is an [`Error::Cycle`]. Every value is checked
    /// as [`set_value`](Graph::set_value) does; on any error no value is set.
    pub fn topological_sort(
        &mut self,
        feed: impl IntoIterator<Item = (NodeId, ArrayD<T>)>,
    ) -> Result<Vec<NodeId>> {
        let mut values = Vec::new();
        for (id, value) in feed {
            let i = self.check(id)?;
            self.check_feed(i, &value)?;
            values.push((i, value));
        }
        let mut fed: Vec<usize> = values.iter().map(|(i, _)| *i).collect();
        fed.sort_unstable();
        fed.dedup();
        let order = self.sort(&fed)?;
        for (i, value) in values {
            self.nodes[i].value = Some(value);
            self.nodes[i].stamp = self.tick();
        }
        Ok(order.into_iter().map(|i| self.id(i)).collect())
    }

    /// Kahn's algorithm from the fed leaves `fed` (sorted, unique).
    fn sort(&self, fed: &[usize]) -> Result<Vec<usize>> {
        let n = self.nodes.len();
        let mut consumers = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            for &a in &node.args {
                consumers[a].push(i);
            }
        }

        let mut reachable = vec![false; n];
        let mut stack = fed.to_vec();
        for &i in fed {
            reachable[i] = true;
        }
        while let Some(i) = stack.pop() {
            for &c in &consumers[i] {
                if !reachable[c] {
                    reachable[c] = true;
                    stack.push(c);
                }
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !reachable[i] {
                continue;
            }
            if let Some(&arg) = node.args.iter().find(|&&a| !reachable[a]) {
                return Err(self.blame_unreachable(arg, i));
            }
        }

        let mut indegree: Vec<usize> = self.nodes.iter().map(|n| n.args.len()).collect();
        let mut queue: VecDeque<usize> = fed.iter().copied().collect();
        let mut order = Vec::new();
        while let Some(i) = queue.pop_front() {
            order.push(i);
            for &c in &consumers[i] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    queue.push_back(c);
                }
            }
        }
        let stuck: Vec<bool> = (0..n).map(|i| reachable[i] && indegree[i] > 0).collect();
        if let Some(start) = stuck.iter().position(|&s| s) {
            return Err(Error::Cycle {
                path: self.cycle_from(start, &stuck),
            });
        }
        Ok(order)
    }

    /// Why argument `arg` of `needed_by` has no value path from the feed: a cycle among its
    /// ancestors (reported first, since feeding cannot fix it), or else the first unfed leaf
    /// among them (first arguments first).
    fn blame_unreachable(&self, arg: usize, needed_by: usize) -> Error {
        // Iterative depth-first search: 0 unseen, 1 on the path, 2 done.
        let mut state = vec![0u8; self.nodes.len()];
        let mut path: Vec<(usize, usize)> = vec![(arg, 0)];
        state[arg] = 1;
        let mut leaf = None;
        while let Some(&mut (i, ref mut next)) = path.last_mut() {
            let args = &self.nodes[i].args;
            if args.is_empty() {
                leaf.get_or_insert(i);
            }
            match args.get(*next) {
                Some(&a) => {
                    *next += 1;
                    match state[a] {
                        0 => {
                            state[a] = 1;
                            path.push((a, 0));
                        }
                        1 => {
                            let from = path.iter().position(|&(p, _)| p == a).unwrap_or(0);
                            let ids: Vec<usize> = path[from..].iter().map(|&(p, _)| p).collect();
                            return Error::Cycle {
                                path: self.cycle_names(ids),
                            };
                        }
                        _ => {}
                    }
                }
                None => {
                    state[i] = 2;
                    path.pop();
                }
            }
        }
        Error::MissingFeed {
            input: self.nodes[leaf.unwrap_or(arg)].name.clone(),
            needed_by: self.nodes[needed_by].name.clone(),
        }
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
        ids.iter().map(|&p| self.nodes[p].name.clone()).collect()
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
        path.iter().map(|&p| self.nodes[p].name.clone()).collect()
    }

    /// Turns check mode on or off: forward and backward then stop with
    /// [`Error::NonFinite`] at the first node whose value or gradient holds NaN or an
    /// infinity (like PyTorch's anomaly mode). A leaf holding one is named before any node
    /// computed from it.
    pub fn set_check_finite(&mut self, on: bool) {
        self.check_finite = on;
    }

    /// In check mode, the error for a non-finite element of `v`.
    fn check_value(&self, i: usize, v: &ArrayD<T>, pass: &'static str) -> Result<()> {
        if !self.check_finite {
            return Ok(());
        }
        let name = &self.nodes[i].name;
        if pass == "forward" && self.nodes[i].op.is_none() {
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
    pub fn forward(&mut self, order: &[NodeId]) -> Result<()> {
        self.forward_logged(order).map(drop)
    }

    /// [`forward`](Graph::forward), returning what it replaced.
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
                return Err(self.misordered("Graph::forward", i, a));
            }
        }
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
            match self.nodes[i].op {
                None => {
                    if let Some(v) = &self.nodes[i].value {
                        self.check_value(i, v, "forward")?;
                    }
                }
                Some(op) => {
                    if self.check_finite {
                        for &a in &self.nodes[i].args {
                            if let (None, Some(v)) = (self.nodes[a].op, &self.nodes[a].value) {
                                self.check_value(a, v, "forward")?;
                            }
                        }
                    }
                    let value = self.compute(i, op)?;
                    self.check_value(i, &value, "forward")?;
                    let stamp = self.tick();
                    let node = &mut self.nodes[i];
                    undo.push((i, node.value.replace(value), node.stamp));
                    node.stamp = stamp;
                }
            }
        }
        Ok(())
    }

    /// Puts back the values a forward pass replaced.
    fn rollback(&mut self, undo: Undo<T>) {
        for (i, value, stamp) in undo.into_iter().rev() {
            self.nodes[i].value = value;
            self.nodes[i].stamp = stamp;
        }
    }

    /// The error for an order listing node `i` before its argument `a`.
    fn misordered(&self, function: &'static str, i: usize, a: usize) -> Error {
        Error::InvalidArgument {
            function,
            what: format!(
                "the order lists `{}` before its argument `{}`; pass the order `topological_sort` returned",
                self.nodes[i].name, self.nodes[a].name
            ),
        }
    }

    fn arg_value(&self, node: &Node<T>, arg: usize) -> Result<ArrayViewD<'_, T>> {
        let a = &self.nodes[arg];
        match (&a.value, a.op) {
            (Some(v), _) => Ok(v.view()),
            (None, None) => Err(Error::MissingFeed {
                input: a.name.clone(),
                needed_by: node.name.clone(),
            }),
            (None, Some(_)) => Err(Error::NoValue {
                name: a.name.clone(),
                reason: "it is not computed before its consumer in the order given",
            }),
        }
    }

    fn compute(&self, i: usize, op: Op) -> Result<ArrayD<T>> {
        let node = &self.nodes[i];
        let args: Vec<ArrayViewD<'_, T>> = node
            .args
            .iter()
            .map(|&a| self.arg_value(node, a))
            .collect::<Result<_>>()?;
        let shape = self.infer(node, op, &args)?;
        check_literals::<T>(&node.name, op, &node.attrs)?;
        let mut out = zeros(&node.name, &shape)?;
        let dyn_node = DynNode {
            args: &args,
            attrs: &node.attrs,
        };
        ops::forward_dyn(op, &dyn_node, out.view_mut()).map_err(|e| self.kernel(node, e))?;
        Ok(out)
    }

    /// The [`Error`] for a kernel's failure at `node`.
    fn kernel(&self, node: &Node<T>, e: KernelError) -> Error {
        let names: Vec<&str> = node
            .args
            .iter()
            .map(|&a| self.nodes[a].name.as_str())
            .collect();
        e.into_error(&node.name, &names)
    }

    fn infer(&self, node: &Node<T>, op: Op, args: &[ArrayViewD<'_, T>]) -> Result<Vec<usize>> {
        let shapes: Vec<&[usize]> = args.iter().map(|a| a.shape()).collect();
        op.infer_shape(&shapes).map_err(|e| {
            let names: Vec<&str> = node
                .args
                .iter()
                .map(|&a| self.nodes[a].name.as_str())
                .collect();
            let mut message = e.message(op, &names);
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
            Error::OpShape {
                node: node.name.clone(),
                message,
            }
        })
    }

    /// Runs backward over `order` from `cost`: every node gets d cost / d node, summed over
    /// its consumers. `cost` must be a scalar computed by the last forward.
    ///
    /// Fails with [`Error::BackwardBeforeForward`] unless every node the cost is computed
    /// from holds the value of a forward pass of the current values (none set, updated or
    /// rewired since), and with [`Error::InvalidArgument`] if `order` leaves one of those
    /// nodes out, lists it twice or before its arguments. On failure no gradient changes.
    pub fn backward(&mut self, order: &[NodeId], cost: NodeId) -> Result<()> {
        let c = self.check(cost)?;
        let order = self.indices(order)?;
        let cost_node = &self.nodes[c];
        if !order.contains(&c) {
            return Err(Error::NoValue {
                name: cost_node.name.clone(),
                reason: "the cost is not in the sorted order; is it fed from these inputs?",
            });
        }
        let shape = match &cost_node.value {
            Some(v) => v.shape().to_vec(),
            None => return Err(Error::BackwardBeforeForward),
        };
        if !shape.is_empty() {
            return Err(Error::Shape {
                node: cost_node.name.clone(),
                expected: "[] (a scalar cost)".into(),
                found: shape,
            });
        }
        self.check_backward(&order, c)?;

        let mut grads: Vec<Option<ArrayD<T>>> = vec![None; self.nodes.len()];
        grads[c] = Some(ArrayD::from_elem(IxDyn(&[]), T::one()));
        for &i in order.iter().rev() {
            let Some(op) = self.nodes[i].op else {
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
            if let (None, Some(g)) = (self.nodes[i].op, &grads[i]) {
                self.check_value(i, g, "backward")?;
            }
        }
        for (node, g) in self.nodes.iter_mut().zip(grads) {
            node.grad = g;
        }
        Ok(())
    }

    /// Checks that every node `cost` is computed from is in `order` once, after its
    /// arguments, and holds a value computed from its arguments' current values.
    fn check_backward(&self, order: &[usize], cost: usize) -> Result<()> {
        let mut pos = vec![usize::MAX; self.nodes.len()];
        for (k, &i) in order.iter().enumerate() {
            if pos[i] != usize::MAX {
                return Err(Error::InvalidArgument {
                    function: "Graph::backward",
                    what: format!(
                        "the order lists `{}` twice; pass the order `topological_sort` returned",
                        self.nodes[i].name
                    ),
                });
            }
            pos[i] = k;
        }
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![cost];
        seen[cost] = true;
        while let Some(i) = stack.pop() {
            let node = &self.nodes[i];
            if pos[i] == usize::MAX {
                return Err(Error::InvalidArgument {
                    function: "Graph::backward",
                    what: format!(
                        "`{}` is needed to compute `{}` but is not in the order; pass the order `topological_sort` returned",
                        node.name, self.nodes[cost].name
                    ),
                });
            }
            if node.value.is_none() || node.stamp == 0 {
                return Err(Error::BackwardBeforeForward);
            }
            for &a in &node.args {
                // An argument missing from the order is reported when it is visited.
                if pos[a] != usize::MAX && pos[a] >= pos[i] {
                    return Err(self.misordered("Graph::backward", i, a));
                }
                if self.nodes[a].stamp >= node.stamp {
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
                    let shape = self.nodes[a]
                        .value
                        .as_ref()
                        .map(|v| v.shape().to_vec())
                        .ok_or(Error::BackwardBeforeForward)?;
                    (zeros(&self.nodes[a].name, &shape)?, false)
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
        let node = &self.nodes[i];
        let args: Vec<ArrayViewD<'_, T>> = node
            .args
            .iter()
            .map(|&a| self.arg_value(node, a))
            .collect::<Result<_>>()?;
        let value = node.value.as_ref().ok_or(Error::BackwardBeforeForward)?;
        let b = DynBackward {
            node: DynNode {
                args: &args,
                attrs: &node.attrs,
            },
            value: value.view(),
            g: g.view(),
        };
        ops::backward_dyn(op, &b, k, out).map_err(|e| self.kernel(node, e))
    }

    /// The seed's `forward_and_backward(graph)`, with the cost named: runs forward over
    /// `order`, then backward from `cost`, and returns the cost's value. If either fails,
    /// values and gradients are left as they were.
    pub fn forward_and_backward(&mut self, order: &[NodeId], cost: NodeId) -> Result<T> {
        let undo = self.forward_logged(order)?;
        if let Err(e) = self.backward(order, cost) {
            self.rollback(undo);
            return Err(e);
        }
        Ok(self
            .value(cost)
            .and_then(|v| v.iter().next().copied())
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
        for (k, &t) in ids.iter().enumerate() {
            let node = &self.nodes[t];
            if ids[..k].contains(&t) {
                return Err(Error::InvalidArgument {
                    function: "Graph::sgd_update",
                    what: format!("`{}` is listed twice among the trainables", node.name),
                });
            }
            if self.feeds_data_arg(t) {
                return Err(Error::NoGradient {
                    name: node.name.clone(),
                    reason: "its value flows into an argument that gets no gradient (the labels \
                             of `softmax_cross_entropy`), so its gradient would be incomplete; \
                             labels must not depend on what is trained",
                });
            }
            match (&node.value, &node.grad) {
                (Some(v), Some(g)) if v.shape() != g.shape() => {
                    return Err(Error::Shape {
                        node: node.name.clone(),
                        expected: miniflow_ops::format_shape(g.shape()),
                        found: v.shape().to_vec(),
                    })
                }
                (Some(_), Some(_)) => {}
                _ => {
                    return Err(Error::NoGradient {
                        name: node.name.clone(),
                        reason: "it has no value or gradient yet; run forward_and_backward first",
                    })
                }
            }
        }
        for t in ids {
            let stamp = self.tick();
            let node = &mut self.nodes[t];
            if let (Some(v), Some(g)) = (&mut node.value, &node.grad) {
                v.zip_mut_with(g, |v, &g| *v = *v - lr * g);
            }
            node.stamp = stamp;
        }
        Ok(())
    }

    /// Whether `t`'s value reaches an op argument that gets no gradient.
    fn feeds_data_arg(&self, t: usize) -> bool {
        self.nodes.iter().any(|n| {
            n.op.is_some_and(|op| {
                n.args
                    .iter()
                    .enumerate()
                    .any(|(k, &a)| !op.differentiable(k) && self.depends_on(a, t))
            })
        })
    }

    /// Whether `from` is `target` or computed from it (cycles allowed).
    fn depends_on(&self, from: usize, target: usize) -> bool {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            if i == target {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend_from_slice(&self.nodes[i].args);
            }
        }
        false
    }

    /// Rebuilds a generated network's graph from its [`NetworkSpec`]: params and inputs become
    /// inputs, as in the seed. Returns the graph and the id of each spec node, in spec order.
    /// Fails, like the builders, on a duplicate name or an argument named before it is
    /// defined.
    pub fn from_spec(spec: &NetworkSpec) -> Result<(Self, Vec<NodeId>)> {
        let mut g = Graph::new();
        let mut ids = Vec::with_capacity(spec.nodes.len());
        for node in spec.nodes {
            let id = match node.kind {
                NodeKind::Input { .. } | NodeKind::Param => g.input(node.name)?,
                NodeKind::Op(op) => {
                    let args = node
                        .args
                        .iter()
                        .map(|a| g.find(a))
                        .collect::<Result<Vec<_>>>()?;
                    g.op_with(node.name, op, &args, node.attrs)?
                }
            };
            ids.push(id);
        }
        Ok((g, ids))
    }
}

/// A zero-filled array of `shape` for node `node`, or [`Error::TooLarge`] if its size
/// overflows or the memory cannot be reserved (never a panic or an abort).
fn zeros<T: Scalar>(node: &str, shape: &[usize]) -> Result<ArrayD<T>> {
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
    fn unfed_input_is_an_error_not_a_dropped_subgraph() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x").unwrap();
        let y = g.input("y").unwrap();
        let s = g.add(x, y).unwrap();
        let _ = s;
        let err = g
            .topological_sort([(x, array![1.0].into_dyn())])
            .unwrap_err();
        assert_eq!(
            err,
            Error::MissingFeed {
                input: "y".into(),
                needed_by: "add2".into()
            }
        );
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
    }

    #[test]
    fn kahn_order_is_deterministic_and_respects_edges() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x").unwrap();
        let y = g.input("y").unwrap();
        let s1 = g.sigmoid(x).unwrap();
        let s2 = g.sigmoid(y).unwrap();
        let sum = g.add(s2, s1).unwrap();
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
        let err = g.forward(&order).unwrap_err();
        assert!(
            matches!(&err, Error::OpShape { node, .. } if node == "f"),
            "{err}"
        );
        assert!(err.to_string().contains("dimension 0 of `W` is 2"), "{err}");
        let _ = f;
    }

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
