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

use crate::error::{closest, Error, Result};
use crate::network::{NetworkSpec, NodeKind};
use crate::ops::{self, GradOut};
use crate::Scalar;
use miniflow_ops::Op;
use ndarray::{ArrayD, ArrayView, ArrayViewD, Dimension, Ix1, Ix2, IxDyn};
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
    value: Option<ArrayD<T>>,
    grad: Option<ArrayD<T>>,
}

/// A network built at run time, like the seed's MiniFlow.
#[derive(Clone, Debug, Default)]
pub struct Graph<T = f64> {
    nodes: Vec<Node<T>>,
    /// Whether the values are those of the last forward (no value set since).
    fresh: bool,
}

impl<T: Scalar> Graph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Graph {
            nodes: Vec::new(),
            fresh: false,
        }
    }

    /// Adds an input: a leaf whose value is fed (data, weights and biases alike, as in the seed).
    pub fn input(&mut self, name: impl Into<String>) -> NodeId {
        self.push(name.into(), None, Vec::new())
    }

    /// Adds a node computing `op` from `args`, named `name`. Fails if the arity is wrong or an
    /// argument is not a node of this graph.
    pub fn op(&mut self, name: impl Into<String>, op: Op, args: &[NodeId]) -> Result<NodeId> {
        let name = name.into();
        if !op.arity().accepts(args.len()) {
            return Err(Error::OpShape {
                node: name,
                message: format!(
                    "`{op}` takes {}, found {}; expected {}",
                    op.arity(),
                    args.len(),
                    op.signature()
                ),
            });
        }
        for &a in args {
            self.check(a)?;
        }
        Ok(self.push(name, Some(op), args.to_vec()))
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

    fn auto(&mut self, op: Op, args: Vec<NodeId>) -> NodeId {
        let name = format!("{}{}", op.name(), self.nodes.len());
        self.push(name, Some(op), args)
    }

    fn push(&mut self, name: String, op: Option<Op>, args: Vec<NodeId>) -> NodeId {
        self.nodes.push(Node {
            name,
            op,
            args,
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

    /// Runs forward over `order` (from [`topological_sort`](Graph::topological_sort)).
    pub fn forward(&mut self, order: &[NodeId]) -> Result<()> {
        self.fresh = false;
        for &id in order {
            self.check(id)?;
            if let Some(value) = self.compute(id)? {
                self.nodes[id.0].value = Some(value);
            }
        }
        self.fresh = true;
        Ok(())
    }

    fn arg_value(&self, node: &Node<T>, arg: NodeId) -> Result<ArrayViewD<'_, T>> {
        let a = &self.nodes[arg.0];
        a.value
            .as_ref()
            .map(|v| v.view())
            .ok_or_else(|| Error::NoValue {
                name: a.name.clone(),
                reason: if a.op.is_some() {
                    "it comes after its consumer in the order given"
                } else {
                    "it was not fed"
                },
            })
            .map_err(|e| match e {
                Error::NoValue { name, .. } if a.op.is_none() => Error::MissingFeed {
                    input: name,
                    needed_by: node.name.clone(),
                },
                e => e,
            })
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
        let mut out = ArrayD::zeros(IxDyn(&shape));
        match op {
            Op::Linear => ops::linear::forward(
                to::<T, Ix2>(node, &args[0])?,
                to::<T, Ix2>(node, &args[1])?,
                to::<T, Ix1>(node, &args[2])?,
                out.view_mut()
                    .into_dimensionality::<Ix2>()
                    .map_err(|e| internal(node, e))?,
            ),
            Op::Sigmoid => ops::sigmoid::forward(args[0].view(), out.view_mut()),
            Op::Mse => out.fill(ops::mse::forward(args[0].view(), args[1].view())),
            Op::Add => ops::add::forward(&args, out.view_mut()),
        }
        Ok(Some(out))
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
            let result = self.contribute(id, op, &g);
            self.nodes[id.0].grad = Some(g);
            result?;
        }
        Ok(())
    }

    /// Adds node `id`'s contribution to each of its arguments' gradients.
    fn contribute(&mut self, id: NodeId, op: Op, g: &ArrayD<T>) -> Result<()> {
        let arg_ids = self.nodes[id.0].args.clone();
        for (i, &a) in arg_ids.iter().enumerate() {
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
        match op {
            Op::Linear => {
                let (x, w) = (to::<T, Ix2>(node, &args[0])?, to::<T, Ix2>(node, &args[1])?);
                let g = to::<T, Ix2>(node, &g.view())?;
                let accumulate = out.accumulate;
                match i {
                    0 | 1 => {
                        let buf = out
                            .buf
                            .into_dimensionality::<Ix2>()
                            .map_err(|e| internal(node, e))?;
                        let d = Some(GradOut {
                            buf,
                            accumulate,
                            alpha: T::one(),
                        });
                        if i == 0 {
                            ops::linear::backward(x, w, g, d, None, None);
                        } else {
                            ops::linear::backward(x, w, g, None, d, None);
                        }
                    }
                    _ => {
                        let buf = out
                            .buf
                            .into_dimensionality::<Ix1>()
                            .map_err(|e| internal(node, e))?;
                        ops::linear::backward(
                            x,
                            w,
                            g,
                            None,
                            None,
                            Some(GradOut {
                                buf,
                                accumulate,
                                alpha: T::one(),
                            }),
                        );
                    }
                }
            }
            Op::Sigmoid => {
                let s = node.value.as_ref().ok_or_else(|| Error::NoValue {
                    name: node.name.clone(),
                    reason: "run forward before backward",
                })?;
                ops::sigmoid::backward(s.view(), g.view(), out);
            }
            Op::Mse => {
                let g = g.iter().next().copied().unwrap_or_else(T::one);
                let (y, a) = (args[0].view(), args[1].view());
                if i == 0 {
                    ops::mse::backward(y, a, g, Some(out), None);
                } else {
                    ops::mse::backward(y, a, g, None, Some(out));
                }
            }
            Op::Add => ops::add::backward(g.view(), out),
        }
        Ok(())
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
    pub fn sgd_update(&mut self, trainables: &[NodeId], lr: T) -> Result<()> {
        for &t in trainables {
            self.check(t)?;
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
                    g.op(node.name, op, &args)?
                }
            };
            ids.push(id);
        }
        Ok((g, ids))
    }
}

fn to<'a, T, D: Dimension>(node: &Node<T>, v: &ArrayViewD<'a, T>) -> Result<ArrayView<'a, T, D>> {
    v.clone()
        .into_dimensionality::<D>()
        .map_err(|e| internal(node, e))
}

fn internal<T>(node: &Node<T>, e: ndarray::ShapeError) -> Error {
    Error::OpShape {
        node: node.name.clone(),
        message: format!("argument of unexpected rank ({e})"),
    }
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
