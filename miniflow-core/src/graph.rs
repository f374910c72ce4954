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
//! let (x, y) = (g.input("X"), g.input("y"));
//! let (w, b) = (g.input("W"), g.input("b"));
//! let f = g.linear(x, w, b);
//! let a = g.sigmoid(f);
//! let cost = g.mse(y, a);
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
//! Ops with literal arguments take them apart from the node arguments:
//! `g.leaky_relu(z, 0.01)`, or [`Graph::op_with`]`("h", Op::LeakyRelu, &[z], &[0.01])`.
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
use std::collections::VecDeque;
use std::fmt;

/// A node of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(usize);

impl NodeId {
    /// The node's position in creation order.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[derive(Clone, Debug)]
struct Node<T> {
    name: String,
    op: Option<Op>,
    args: Vec<NodeId>,
    /// The op's literal arguments (e.g. leaky_relu's slope).
    attrs: Vec<f64>,
    value: Option<ArrayD<T>>,
    grad: Option<ArrayD<T>>,
}

/// A network built at run time, like the seed's MiniFlow.
#[derive(Clone, Debug, Default)]
pub struct Graph<T = f64> {
    nodes: Vec<Node<T>>,
    /// Whether the values are those of the last forward (no value set since).
    fresh: bool,
    /// Check mode: stop at the first node whose value or gradient is not finite.
    check_finite: bool,
}

impl<T: Scalar> Graph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Graph {
            nodes: Vec::new(),
            fresh: false,
            check_finite: false,
        }
    }

    /// Adds an input: a leaf whose value is fed (data, weights and biases alike, as in the seed).
    pub fn input(&mut self, name: impl Into<String>) -> NodeId {
        self.push(name.into(), None, Vec::new())
    }

    /// Adds a node computing `op` from `args`, named `name`. Fails if the arity is wrong, an
    /// argument is not a node of this graph, or the op takes literals (use
    /// [`op_with`](Graph::op_with)).
    pub fn op(&mut self, name: impl Into<String>, op: Op, args: &[NodeId]) -> Result<NodeId> {
        self.op_with(name, op, args, &[])
    }

    /// Adds a node computing `op` from the nodes `args` and the literals `attrs` (in the order
    /// the op's signature lists them; e.g. `&[0.01]` for the slope of `leaky_relu`), named
    /// `name`. Fails with [`Error::BadLiteral`] if the op takes another number of literals or
    /// one is not finite, and with [`Error::OpShape`] if the arity is wrong.
    pub fn op_with(
        &mut self,
        name: impl Into<String>,
        op: Op,
        args: &[NodeId],
        attrs: &[f64],
    ) -> Result<NodeId> {
        let name = name.into();
        check_literals(&name, op, attrs)?;
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
        for &a in args {
            self.check(a)?;
        }
        Ok(self.push_with(name, Some(op), args.to_vec(), attrs.to_vec()))
    }

    /// `linear(x, w, b) = x·w + b`.
    pub fn linear(&mut self, x: NodeId, w: NodeId, b: NodeId) -> NodeId {
        self.auto(Op::Linear, vec![x, w, b])
    }

    /// `sigmoid(x)`.
    pub fn sigmoid(&mut self, x: NodeId) -> NodeId {
        self.auto(Op::Sigmoid, vec![x])
    }

    /// `mse(y, a)`, the mean squared error (the seed's argument order: target first).
    pub fn mse(&mut self, y: NodeId, a: NodeId) -> NodeId {
        self.auto(Op::Mse, vec![y, a])
    }

    /// `add(x, y)`, elementwise. For more terms use [`Graph::op`] with [`Op::Add`].
    pub fn add(&mut self, x: NodeId, y: NodeId) -> NodeId {
        self.auto(Op::Add, vec![x, y])
    }

    /// `relu(x) = max(x, 0)`, elementwise.
    pub fn relu(&mut self, x: NodeId) -> NodeId {
        self.auto(Op::Relu, vec![x])
    }

    /// `tanh(x)`, elementwise.
    pub fn tanh(&mut self, x: NodeId) -> NodeId {
        self.auto(Op::Tanh, vec![x])
    }

    /// `leaky_relu(x, slope)`, elementwise. A non-finite `slope` is reported by the forward
    /// pass ([`Error::BadLiteral`]); [`op_with`](Graph::op_with) reports it at once.
    pub fn leaky_relu(&mut self, x: NodeId, slope: f64) -> NodeId {
        let name = format!("{}{}", Op::LeakyRelu.name(), self.nodes.len());
        self.push_with(name, Some(Op::LeakyRelu), vec![x], vec![slope])
    }

    /// `matmul(a, b) = a·b`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.auto(Op::Matmul, vec![a, b])
    }

    /// `mul(a, b) = a ⊙ b`, elementwise.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.auto(Op::Mul, vec![a, b])
    }

    /// `sub(a, b) = a - b`, elementwise.
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.auto(Op::Sub, vec![a, b])
    }

    /// `sum(x)`, a scalar.
    pub fn sum(&mut self, x: NodeId) -> NodeId {
        self.auto(Op::Sum, vec![x])
    }

    /// `mean(x)`, a scalar.
    pub fn mean(&mut self, x: NodeId) -> NodeId {
        self.auto(Op::Mean, vec![x])
    }

    /// `softmax(x)` of each row of a `[m, c]` node.
    pub fn softmax(&mut self, x: NodeId) -> NodeId {
        self.auto(Op::Softmax, vec![x])
    }

    /// `softmax_cross_entropy(logits, labels)`, a scalar loss; `labels` get no gradient.
    pub fn softmax_cross_entropy(&mut self, logits: NodeId, labels: NodeId) -> NodeId {
        self.auto(Op::SoftmaxCrossEntropy, vec![logits, labels])
    }

    /// `bce(y, p)`, binary cross-entropy of probabilities (target first, as in `mse`).
    pub fn bce(&mut self, y: NodeId, p: NodeId) -> NodeId {
        self.auto(Op::Bce, vec![y, p])
    }

    /// `bce_logits(y, z)`, binary cross-entropy of `sigmoid(z)`, from the logits.
    pub fn bce_logits(&mut self, y: NodeId, z: NodeId) -> NodeId {
        self.auto(Op::BceLogits, vec![y, z])
    }

    fn auto(&mut self, op: Op, args: Vec<NodeId>) -> NodeId {
        let name = format!("{}{}", op.name(), self.nodes.len());
        self.push(name, Some(op), args)
    }

    fn push(&mut self, name: String, op: Option<Op>, args: Vec<NodeId>) -> NodeId {
        self.push_with(name, op, args, Vec::new())
    }

    fn push_with(
        &mut self,
        name: String,
        op: Option<Op>,
        args: Vec<NodeId>,
        attrs: Vec<f64>,
    ) -> NodeId {
        self.nodes.push(Node {
            name,
            op,
            args,
            attrs,
            value: None,
            grad: None,
        });
        NodeId(self.nodes.len() - 1)
    }

    fn check(&self, id: NodeId) -> Result<()> {
        if id.0 < self.nodes.len() {
            Ok(())
        } else {
            Err(Error::UnknownNode {
                name: id.to_string(),
                suggestion: None,
            })
        }
    }

    /// Replaces argument `index` of op node `node` with `arg`, as assigning to the seed's
    /// `inbound_nodes` would. This can create a cycle, which the next sort reports.
    pub fn replace_arg(&mut self, node: NodeId, index: usize, arg: NodeId) -> Result<()> {
        self.check(node)?;
        self.check(arg)?;
        let n = &mut self.nodes[node.0];
        let len = n.args.len();
        match n.args.get_mut(index) {
            Some(slot) => {
                *slot = arg;
                Ok(())
            }
            None => Err(Error::OpShape {
                node: n.name.clone(),
                message: format!("has {len} arguments, so there is no argument {index} to replace"),
            }),
        }
    }

    /// The node's name.
    pub fn name(&self, id: NodeId) -> Option<&str> {
        self.nodes.get(id.0).map(|n| n.name.as_str())
    }

    /// The node called `name`.
    pub fn find(&self, name: &str) -> Result<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .map(NodeId)
            .ok_or_else(|| Error::UnknownNode {
                name: name.to_string(),
                suggestion: closest(name, self.nodes.iter().map(|n| n.name.as_str())),
            })
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node's value, once fed or computed.
    pub fn value(&self, id: NodeId) -> Option<ArrayViewD<'_, T>> {
        self.nodes.get(id.0)?.value.as_ref().map(|v| v.view())
    }

    /// d cost / d node from the last backward, summed over every consumer of the node.
    pub fn gradient(&self, id: NodeId) -> Option<ArrayViewD<'_, T>> {
        self.nodes.get(id.0)?.grad.as_ref().map(|g| g.view())
    }

    /// Sets an input's value (what the seed's `topological_sort` does with `feed_dict`).
    pub fn set_value(&mut self, id: NodeId, value: ArrayD<T>) -> Result<()> {
        self.check(id)?;
        let node = &mut self.nodes[id.0];
        if node.op.is_some() {
            return Err(Error::WrongKind {
                name: node.name.clone(),
                wanted: "an input",
                actual: "an op node",
            });
        }
        node.value = Some(value);
        self.fresh = false;
        Ok(())
    }

    /// The seed's `topological_sort(feed_dict)`: sets each fed input's value and returns the
    /// nodes reachable from the fed inputs in an order where every node comes after its
    /// arguments (Kahn's algorithm, ties broken by creation order).
    ///
    /// Unlike the seed, a reachable node with an argument that depends on no fed input is an
    /// [`Error::MissingFeed`] rather than a silently dropped subgraph, and a cycle is an
    /// [`Error::Cycle`].
    pub fn topological_sort(
        &mut self,
        feed: impl IntoIterator<Item = (NodeId, ArrayD<T>)>,
    ) -> Result<Vec<NodeId>> {
        let mut fed = Vec::new();
        for (id, value) in feed {
            self.set_value(id, value)?;
            fed.push(id);
        }
        fed.sort();
        fed.dedup();
        let n = self.nodes.len();
        let mut consumers = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            for a in &node.args {
                consumers[a.0].push(NodeId(i));
            }
        }

        let mut reachable = vec![false; n];
        let mut stack = fed.clone();
        for id in &fed {
            reachable[id.0] = true;
        }
        while let Some(id) = stack.pop() {
            for &c in &consumers[id.0] {
                if !reachable[c.0] {
                    reachable[c.0] = true;
                    stack.push(c);
                }
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !reachable[i] {
                continue;
            }
            if let Some(&arg) = node.args.iter().find(|a| !reachable[a.0]) {
                return Err(Error::MissingFeed {
                    input: self.nodes[self.unfed_leaf(arg).0].name.clone(),
                    needed_by: node.name.clone(),
                });
            }
        }

        let mut indegree: Vec<usize> = self.nodes.iter().map(|n| n.args.len()).collect();
        let mut queue: VecDeque<NodeId> = fed.into_iter().collect();
        let mut order = Vec::new();
        while let Some(id) = queue.pop_front() {
            order.push(id);
            for &c in &consumers[id.0] {
                indegree[c.0] -= 1;
                if indegree[c.0] == 0 {
                    queue.push_back(c);
                }
            }
        }
        let stuck: Vec<bool> = (0..n).map(|i| reachable[i] && indegree[i] > 0).collect();
        if let Some(start) = stuck.iter().position(|&s| s) {
            return Err(Error::Cycle {
                path: self.cycle_from(NodeId(start), &stuck),
            });
        }
        Ok(order)
    }

    /// A leaf ancestor of `id` with no value path from the feed (the input to name as missing).
    fn unfed_leaf(&self, mut id: NodeId) -> NodeId {
        let mut steps = 0;
        while let Some(&a) = self.nodes[id.0].args.first() {
            id = a;
            steps += 1;
            if steps > self.nodes.len() {
                break; // a cycle among unfed nodes: name where we are
            }
        }
        id
    }

    /// Follows unresolved arguments from `start` until a node repeats; returns that cycle.
    fn cycle_from(&self, start: NodeId, stuck: &[bool]) -> Vec<String> {
        let mut path = vec![start];
        let mut id = start;
        while let Some(&next) = self.nodes[id.0].args.iter().find(|a| stuck[a.0]) {
            if let Some(pos) = path.iter().position(|&p| p == next) {
                // Report in data-flow order: each node feeds the next.
                let mut ids: Vec<NodeId> = path[pos..].iter().rev().copied().collect();
                // Start at the earliest-created node so the message is stable.
                let first = ids
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, id)| **id)
                    .map_or(0, |(i, _)| i);
                ids.rotate_left(first);
                ids.push(ids[0]);
                let cycle = ids.iter().map(|p| self.nodes[p.0].name.clone()).collect();
                return cycle;
            }
            path.push(next);
            id = next;
        }
        path.iter().map(|p| self.nodes[p.0].name.clone()).collect()
    }

    /// Turns check mode on or off: forward and backward then stop with
    /// [`Error::NonFinite`] at the first node whose value or gradient holds NaN or an
    /// infinity (like PyTorch's anomaly mode).
    pub fn set_check_finite(&mut self, on: bool) {
        self.check_finite = on;
    }

    fn check_value(&self, id: NodeId, v: Option<&ArrayD<T>>, pass: &'static str) -> Result<()> {
        match v {
            Some(v) if self.check_finite => {
                crate::rt::check_finite(v.view(), &self.nodes[id.0].name, pass)
            }
            _ => Ok(()),
        }
    }

    /// Runs forward over `order` (from [`topological_sort`](Graph::topological_sort)).
    pub fn forward(&mut self, order: &[NodeId]) -> Result<()> {
        self.fresh = false;
        for &id in order {
            self.check(id)?;
            if let Some(value) = self.compute(id)? {
                self.check_value(id, Some(&value), "forward")?;
                self.nodes[id.0].value = Some(value);
            } else {
                self.check_value(id, self.nodes[id.0].value.as_ref(), "forward")?;
            }
        }
        self.fresh = true;
        Ok(())
    }

    fn arg_value(&self, node: &Node<T>, arg: NodeId) -> Result<ArrayViewD<'_, T>> {
        let a = &self.nodes[arg.0];
        match (&a.value, a.op) {
            (Some(v), _) => Ok(v.view()),
            (None, None) => Err(Error::MissingFeed {
                input: a.name.clone(),
                needed_by: node.name.clone(),
            }),
            (None, Some(_)) => Err(Error::NoValue {
                name: a.name.clone(),
                reason: "it comes after its consumer in the order given",
            }),
        }
    }

    fn compute(&self, id: NodeId) -> Result<Option<ArrayD<T>>> {
        let node = &self.nodes[id.0];
        let Some(op) = node.op else {
            return Ok(None);
        };
        let args: Vec<ArrayViewD<'_, T>> = node
            .args
            .iter()
            .map(|&a| self.arg_value(node, a))
            .collect::<Result<_>>()?;
        let shape = self.infer(node, op, &args)?;
        check_literals(&node.name, op, &node.attrs)?;
        let mut out = ArrayD::zeros(IxDyn(&shape));
        let dyn_node = DynNode {
            args: &args,
            attrs: &node.attrs,
        };
        ops::forward_dyn(op, &dyn_node, out.view_mut()).map_err(|e| self.kernel(node, e))?;
        Ok(Some(out))
    }

    /// The [`Error`] for a kernel's failure at `node`.
    fn kernel(&self, node: &Node<T>, e: KernelError) -> Error {
        let names: Vec<&str> = node
            .args
            .iter()
            .map(|a| self.nodes[a.0].name.as_str())
            .collect();
        e.into_error(&node.name, &names)
    }

    fn infer(&self, node: &Node<T>, op: Op, args: &[ArrayViewD<'_, T>]) -> Result<Vec<usize>> {
        let shapes: Vec<&[usize]> = args.iter().map(|a| a.shape()).collect();
        op.infer_shape(&shapes).map_err(|e| {
            let names: Vec<&str> = node
                .args
                .iter()
                .map(|a| self.nodes[a.0].name.as_str())
                .collect();
            Error::OpShape {
                node: node.name.clone(),
                message: e.message(op, &names),
            }
        })
    }

    /// Runs backward over `order` from `cost`: every node gets d cost / d node, summed over
    /// its consumers. `cost` must be a scalar computed by the last forward.
    ///
    /// Fails with [`Error::BackwardBeforeForward`] if any value was set since the last forward,
    /// since the stored activations would no longer match the inputs.
    pub fn backward(&mut self, order: &[NodeId], cost: NodeId) -> Result<()> {
        self.check(cost)?;
        if !self.fresh {
            return Err(Error::BackwardBeforeForward);
        }
        let cost_node = &self.nodes[cost.0];
        if !order.contains(&cost) {
            return Err(Error::NoValue {
                name: cost_node.name.clone(),
                reason: "the cost is not in the sorted order; is it fed from these inputs?",
            });
        }
        let shape = match &cost_node.value {
            Some(v) => v.shape().to_vec(),
            None => {
                return Err(Error::NoValue {
                    name: cost_node.name.clone(),
                    reason: "run forward before backward",
                })
            }
        };
        if !shape.is_empty() {
            return Err(Error::Shape {
                node: cost_node.name.clone(),
                expected: "[] (a scalar cost)".into(),
                found: shape,
            });
        }
        for node in &mut self.nodes {
            node.grad = None;
        }
        self.nodes[cost.0].grad = Some(ArrayD::from_elem(IxDyn(&[]), T::one()));
        for &id in order.iter().rev() {
            self.check(id)?;
            let Some(op) = self.nodes[id.0].op else {
                continue;
            };
            let Some(g) = self.nodes[id.0].grad.take() else {
                continue; // does not reach the cost
            };
            // Every consumer has contributed by now: the gradient is complete.
            let result = self
                .check_value(id, Some(&g), "backward")
                .and_then(|()| self.contribute(id, op, &g));
            self.nodes[id.0].grad = Some(g);
            result?;
        }
        for &id in order {
            if self.nodes[id.0].op.is_none() {
                self.check_value(id, self.nodes[id.0].grad.as_ref(), "backward")?;
            }
        }
        Ok(())
    }

    /// Adds node `id`'s contribution to each of its arguments' gradients.
    fn contribute(&mut self, id: NodeId, op: Op, g: &ArrayD<T>) -> Result<()> {
        let arg_ids = self.nodes[id.0].args.clone();
        for (i, &a) in arg_ids.iter().enumerate() {
            if !op.differentiable(i) {
                continue; // data, such as labels: no gradient
            }
            let shape = self.nodes[a.0]
                .value
                .as_ref()
                .map(|v| v.raw_dim())
                .ok_or_else(|| Error::NoValue {
                    name: self.nodes[a.0].name.clone(),
                    reason: "run forward before backward",
                })?;
            let (mut buf, accumulate) = match self.nodes[a.0].grad.take() {
                Some(buf) => (buf, true),
                None => (ArrayD::zeros(shape), false),
            };
            let out = if accumulate {
                GradOut::add(buf.view_mut())
            } else {
                GradOut::write(buf.view_mut())
            };
            let r = self.contribute_one(id, op, i, g, out);
            self.nodes[a.0].grad = Some(buf);
            r?;
        }
        Ok(())
    }

    fn contribute_one(
        &self,
        id: NodeId,
        op: Op,
        i: usize,
        g: &ArrayD<T>,
        out: GradOut<'_, T, IxDyn>,
    ) -> Result<()> {
        let node = &self.nodes[id.0];
        let args: Vec<ArrayViewD<'_, T>> = node
            .args
            .iter()
            .map(|&a| self.arg_value(node, a))
            .collect::<Result<_>>()?;
        let value = node.value.as_ref().ok_or_else(|| Error::NoValue {
            name: node.name.clone(),
            reason: "run forward before backward",
        })?;
        let b = DynBackward {
            node: DynNode {
                args: &args,
                attrs: &node.attrs,
            },
            value: value.view(),
            g: g.view(),
        };
        ops::backward_dyn(op, &b, i, out).map_err(|e| self.kernel(node, e))
    }

    /// The seed's `forward_and_backward(graph)`, with the cost named: runs forward over
    /// `order`, then backward from `cost`, and returns the cost's value.
    pub fn forward_and_backward(&mut self, order: &[NodeId], cost: NodeId) -> Result<T> {
        self.forward(order)?;
        self.backward(order, cost)?;
        Ok(self
            .value(cost)
            .and_then(|v| v.iter().next().copied())
            .unwrap_or_else(T::zero))
    }

    /// The course's `sgd_update(trainables, learning_rate)`: `value -= lr * gradient` for each
    /// trainable.
    ///
    /// Fails with [`Error::NoGradient`] for a trainable whose value flows into an argument
    /// that gets no gradient (the labels of `softmax_cross_entropy`): its gradient would be
    /// missing or incomplete.
    pub fn sgd_update(&mut self, trainables: &[NodeId], lr: T) -> Result<()> {
        for &t in trainables {
            self.check(t)?;
            if self.feeds_data_arg(t) {
                return Err(Error::NoGradient {
                    name: self.nodes[t.0].name.clone(),
                    reason: "its value flows into an argument that gets no gradient (the labels \
                             of `softmax_cross_entropy`), so its gradient would be incomplete; \
                             labels must not depend on what is trained",
                });
            }
            let node = &mut self.nodes[t.0];
            match (&mut node.value, &node.grad) {
                (Some(v), Some(g)) if v.shape() != g.shape() => {
                    return Err(Error::Shape {
                        node: node.name.clone(),
                        expected: miniflow_ops::format_shape(g.shape()),
                        found: v.shape().to_vec(),
                    })
                }
                (Some(v), Some(g)) => v.zip_mut_with(g, |v, &g| *v = *v - lr * g),
                _ => {
                    return Err(Error::NoGradient {
                        name: node.name.clone(),
                        reason: "it has no value or gradient yet; run forward_and_backward first",
                    })
                }
            }
        }
        Ok(())
    }

    /// Whether `t`'s value reaches an op argument that gets no gradient.
    fn feeds_data_arg(&self, t: NodeId) -> bool {
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
    fn depends_on(&self, from: NodeId, target: NodeId) -> bool {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![from];
        while let Some(id) = stack.pop() {
            if id == target {
                return true;
            }
            if let Some(s) = seen.get_mut(id.0) {
                if !std::mem::replace(s, true) {
                    stack.extend_from_slice(&self.nodes[id.0].args);
                }
            }
        }
        false
    }

    /// Rebuilds a generated network's graph from its [`NetworkSpec`]: params and inputs become
    /// inputs, as in the seed. Returns the graph and the id of each spec node, in spec order.
    pub fn from_spec(spec: &NetworkSpec) -> Result<(Self, Vec<NodeId>)> {
        let mut g = Graph::new();
        let mut ids = Vec::with_capacity(spec.nodes.len());
        for node in spec.nodes {
            let id = match node.kind {
                NodeKind::Input { .. } | NodeKind::Param => g.input(node.name),
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

/// Checks that `attrs` are the literals `op` takes: as many, and each finite.
fn check_literals(node: &str, op: Op, attrs: &[f64]) -> Result<()> {
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
        let x = g.input("x");
        let y = g.input("y");
        let s = g.add(x, y);
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
        let x = g.input("x");
        let y = g.input("y");
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
        let x = g.input("x");
        let y = g.input("y");
        let s1 = g.sigmoid(x);
        let s2 = g.sigmoid(y);
        let sum = g.add(s2, s1);
        let order = g
            .topological_sort([(y, array![1.0].into_dyn()), (x, array![2.0].into_dyn())])
            .unwrap();
        assert_eq!(order, vec![x, y, s1, s2, sum]);
    }

    #[test]
    fn op_shape_errors_name_nodes() {
        let mut g = Graph::<f64>::new();
        let x = g.input("X");
        let w = g.input("W");
        let b = g.input("b");
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
    fn wrong_arity_is_an_error() {
        let mut g = Graph::<f64>::new();
        let x = g.input("x");
        assert!(g.op("s", Op::Sigmoid, &[x, x]).is_err());
        assert!(g.op("s", Op::Sigmoid, &[NodeId(7)]).is_err());
    }
}
