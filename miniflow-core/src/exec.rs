//! The plan executor: runs a network's plan ([`miniflow_ops::plan`]) at run time on
//! dynamic-rank buffers, with the same kernels, in the same order and with the same sinks as
//! the code `network!` expands from that plan.
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
use crate::network::{NetworkSpec, NodeKind};
use crate::ops::{self, DynBackward, DynNode, GradOut};
use crate::Scalar;
use miniflow_ops::plan::{self, Dag, Forward, Node, Plan, PlanError, Rules, Schedule, Sink};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// A network's plan, run at run time. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Executor<T> {
    names: Vec<String>,
    dag: Dag,
    attrs: Vec<Vec<f64>>,
    plan: Plan,
    values: Vec<ArrayD<T>>,
    grads: Vec<ArrayD<T>>,
    /// Whether each leaf has a value.
    set: Vec<bool>,
    /// Which schedule's gradients `grads` holds, if they are current.
    grads_from: Option<Pass>,
    /// Whether the values are those of a forward of the current leaves.
    fresh: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Backward,
    Training,
}

impl<T: Scalar> Executor<T> {
    /// Plans `dag` with `rules`. `names` and `attrs` (each op's literals) are per node.
    pub fn new(names: Vec<String>, dag: Dag, attrs: Vec<Vec<f64>>, rules: Rules) -> Result<Self> {
        let n = dag.nodes.len();
        if names.len() != n || attrs.len() != n {
            return Err(Error::OpShape {
                node: "(executor)".into(),
                message: format!(
                    "{n} nodes, but {} names and {} literal lists",
                    names.len(),
                    attrs.len()
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
        Ok(Executor {
            names,
            dag,
            attrs,
            plan,
            values: vec![ArrayD::zeros(IxDyn(&[])); n],
            grads: vec![ArrayD::zeros(IxDyn(&[])); n],
            set: vec![false; n],
            grads_from: None,
            fresh: false,
        })
    }

    /// The executor of a generated network's spec, planned with `rules`; nodes are numbered as
    /// in `spec.nodes`.
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
            loss: index(spec.loss)?,
            outputs: spec
                .outputs
                .iter()
                .map(|o| index(o))
                .collect::<Result<_>>()?,
        };
        let names = spec.nodes.iter().map(|n| n.name.to_string()).collect();
        let attrs = spec.nodes.iter().map(|n| n.attrs.to_vec()).collect();
        Executor::new(names, dag, attrs, rules)
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The graph being run.
    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// The node called `name`.
    pub fn index(&self, name: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| Error::UnknownNode {
                name: name.to_string(),
                suggestion: crate::error::closest(name, self.names.iter().map(String::as_str)),
            })
    }

    fn leaf_error(&self, node: usize) -> Error {
        Error::WrongKind {
            name: self
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
        match self.dag.nodes.get(node) {
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
        let schedule = match self.grads_from? {
            Pass::Backward => &self.plan.backward,
            Pass::Training => &self.plan.training,
        };
        if *schedule.grads.get(node)? {
            Some(self.grads[node].view())
        } else {
            None
        }
    }

    /// Computes the loss.
    pub fn forward(&mut self) -> Result<T> {
        let Executor {
            names,
            dag,
            attrs,
            plan,
            values,
            set,
            ..
        } = self;
        run_forward(names, dag, attrs, values, set, &plan.loss)?;
        let loss = &values[dag.loss];
        if loss.ndim() != 0 {
            return Err(Error::Shape {
                node: names[dag.loss].clone(),
                expected: "[] (a scalar loss)".into(),
                found: loss.shape().to_vec(),
            });
        }
        self.fresh = true;
        self.grads_from = None;
        Ok(loss.iter().next().copied().unwrap_or_else(T::zero))
    }

    /// Computes output `k` (of [`Dag::outputs`]) from the leaves it needs.
    pub fn evaluate(&mut self, k: usize) -> Result<ArrayViewD<'_, T>> {
        let Executor {
            names,
            dag,
            attrs,
            plan,
            values,
            set,
            ..
        } = self;
        let f = plan.outputs.get(k).ok_or_else(|| Error::UnknownNode {
            name: format!("output #{k}"),
            suggestion: None,
        })?;
        run_forward(names, dag, attrs, values, set, f)?;
        Ok(values[f.target].view())
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
        let Executor {
            names,
            dag,
            attrs,
            plan,
            values,
            grads,
            ..
        } = self;
        let schedule = match pass {
            Pass::Backward => &plan.backward,
            Pass::Training => &plan.training,
        };
        self.grads_from = None;
        run_schedule(names, dag, attrs, values, grads, schedule, lr)?;
        self.grads_from = Some(pass);
        Ok(())
    }
}

/// Runs forward `f`'s op nodes in order.
fn run_forward<T: Scalar>(
    names: &[String],
    dag: &Dag,
    attrs: &[Vec<f64>],
    values: &mut [ArrayD<T>],
    set: &[bool],
    f: &Forward,
) -> Result<()> {
    for &i in &f.ops {
        if let Some(&leaf) = dag.nodes[i]
            .args
            .iter()
            .find(|&&a| dag.nodes[a].as_op().is_none() && !set[a])
        {
            return Err(Error::MissingFeed {
                input: names[leaf].clone(),
                needed_by: names[f.target].clone(),
            });
        }
    }
    for &i in &f.ops {
        let node = &dag.nodes[i];
        let Some(op) = node.as_op() else { continue };
        let arg_names: Vec<&str> = node.args.iter().map(|&a| names[a].as_str()).collect();
        let shapes: Vec<&[usize]> = node.args.iter().map(|&a| values[a].shape()).collect();
        let shape = op.infer_shape(&shapes).map_err(|e| Error::OpShape {
            node: names[i].clone(),
            message: e.message(op, &arg_names),
        })?;
        // A node is never its own argument (the plan checked), so its buffer can be moved out.
        let mut out = std::mem::take(&mut values[i]);
        if out.shape() != shape.as_slice() {
            out = ArrayD::zeros(IxDyn(&shape));
        }
        let views: Vec<ArrayViewD<'_, T>> = node.args.iter().map(|&a| values[a].view()).collect();
        let dyn_node = DynNode {
            args: &views,
            attrs: &attrs[i],
        };
        let r = ops::forward_dyn(op, &dyn_node, out.view_mut());
        drop(views);
        values[i] = out;
        r.map_err(|e| e.into_error(&names[i], &arg_names))?;
    }
    Ok(())
}

/// Runs a backward schedule: sizes and zeroes the buffers it names, seeds the loss with 1,
/// makes every step into its sink, then the updates after.
fn run_schedule<T: Scalar>(
    names: &[String],
    dag: &Dag,
    attrs: &[Vec<f64>],
    values: &mut [ArrayD<T>],
    grads: &mut [ArrayD<T>],
    schedule: &Schedule,
    lr: T,
) -> Result<()> {
    if !schedule.grads[dag.loss] {
        return Ok(()); // nothing wants a gradient
    }
    for (i, &g) in schedule.grads.iter().enumerate() {
        if g && grads[i].shape() != values[i].shape() {
            grads[i] = ArrayD::zeros(values[i].raw_dim());
        }
    }
    for &z in &schedule.zeroed {
        grads[z].fill(T::zero());
    }
    grads[dag.loss].fill(T::one());
    for step in &schedule.steps {
        let node = &dag.nodes[step.node];
        let Some(op) = node.as_op() else { continue };
        let arg_names: Vec<&str> = node.args.iter().map(|&a| names[a].as_str()).collect();
        let internal = |what: &str| Error::OpShape {
            node: names[step.node].clone(),
            message: format!("internal error in the plan: {what}"),
        };
        let into_value = step.sink == Sink::Update;
        if into_value && step.reads(dag).contains(&step.target) {
            return Err(internal("a step updates a param its own kernel reads"));
        }
        let mut buf = if into_value {
            std::mem::take(&mut values[step.target])
        } else {
            std::mem::take(&mut grads[step.target])
        };
        let out = match step.sink {
            Sink::Write => GradOut::write(buf.view_mut()),
            Sink::Add => GradOut::add(buf.view_mut()),
            Sink::Update => GradOut::add_scaled(buf.view_mut(), -lr),
        };
        let views: Vec<ArrayViewD<'_, T>> = node.args.iter().map(|&a| values[a].view()).collect();
        let b = DynBackward {
            node: DynNode {
                args: &views,
                attrs: &attrs[step.node],
            },
            value: values[step.node].view(),
            g: grads[step.node].view(),
        };
        let r = match step.fused {
            Some(inner) => ops::fused_backward_dyn(step.kernel.path, values[inner].view(), &b, out),
            None => ops::backward_dyn(op, &b, step.arg_pos, out),
        };
        drop(b);
        drop(views);
        if into_value {
            values[step.target] = buf;
        } else {
            grads[step.target] = buf;
        }
        r.map_err(|e| e.into_error(&names[step.node], &arg_names))?;
    }
    for &p in &schedule.update_after {
        crate::optim::sgd_update(values[p].view_mut(), grads[p].view(), lr);
    }
    Ok(())
}
