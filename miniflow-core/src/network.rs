//! The [`Network`] trait that every `network!` implements, and the static description of a
//! network ([`NetworkSpec`]) it carries.

use crate::error::{closest, Error, Result};
use crate::Scalar;
use miniflow_ops::Op;
use ndarray::{ArrayBase, ArrayViewD, ArrayViewMutD, Data, Dimension};
use std::fmt;

/// A dimension of a declared shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimSpec {
    /// A size fixed in the source (`2`).
    Fixed(usize),
    /// A size named in the source (`batch`), bound when inputs are fed.
    Named(&'static str),
}

impl fmt::Display for DimSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimSpec::Fixed(n) => write!(f, "{n}"),
            DimSpec::Named(s) => f.write_str(s),
        }
    }
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Fed each step; `grad` says whether its gradient is computed.
    Input {
        /// Whether backward computes this input's gradient (`#[grad]` in the DSL).
        grad: bool,
    },
    /// Trained.
    Param,
    /// Computed by an op from the nodes in [`NodeSpec::args`].
    Op(Op),
}

/// One node of a network, as written in the source.
#[derive(Clone, Copy, Debug)]
pub struct NodeSpec {
    /// The node's name.
    pub name: &'static str,
    /// Input, param or op.
    pub kind: NodeKind,
    /// The node's shape, inferred at compile time for op nodes (`[]` for a scalar).
    pub shape: &'static [DimSpec],
    /// The op's node arguments, by name (empty for leaves).
    pub args: &'static [&'static str],
    /// The op's literal arguments, in order (the `0.01` of `leaky_relu(z, 0.01)`; empty for
    /// most ops and for leaves).
    pub attrs: &'static [f64],
    /// The node's doc comment in the source (empty if none).
    pub doc: &'static str,
}

/// Field by field, literals compared bit for bit, so that `NodeSpec` (and [`NetworkSpec`])
/// stay `Eq` though they hold `f64` literals.
impl PartialEq for NodeSpec {
    fn eq(&self, other: &Self) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let NodeSpec {
            name,
            kind,
            shape,
            args,
            attrs,
            doc,
        } = self;
        *name == other.name
            && *kind == other.kind
            && *shape == other.shape
            && *args == other.args
            && attrs.len() == other.attrs.len()
            && attrs
                .iter()
                .zip(other.attrs)
                .all(|(a, b)| a.to_bits() == b.to_bits())
            && *doc == other.doc
    }
}

impl Eq for NodeSpec {}

/// The static description of a network: enough to rebuild it as a runtime
/// [`Graph`](crate::Graph), export it, or report errors by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The network's type name.
    pub name: &'static str,
    /// All nodes in forward order: every node after its arguments (ties in source order).
    pub nodes: &'static [NodeSpec],
    /// The node backward starts from.
    pub loss: &'static str,
    /// Nodes named as outputs for inference.
    pub outputs: &'static [&'static str],
}

impl NetworkSpec {
    /// The node called `name`, or an [`Error::UnknownNode`] with a suggestion.
    pub fn node(&self, name: &str) -> Result<&'static NodeSpec> {
        let nodes: &'static [NodeSpec] = self.nodes;
        nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::UnknownNode {
                name: name.to_string(),
                suggestion: closest(name, nodes.iter().map(|n| n.name)),
            })
    }

    /// The declared shape of `name` as text, e.g. `[batch, 2]`.
    pub fn shape_text(&self, name: &str) -> Result<String> {
        Ok(miniflow_ops::format_shape(self.node(name)?.shape))
    }
}

/// A parameter handed to an optimizer: its value to update and its gradient.
#[derive(Debug)]
pub struct ParamMut<'a, T> {
    /// The param's position among the network's params (stable: source order).
    pub index: usize,
    /// The param's name.
    pub name: &'static str,
    /// Its value, to update in place.
    pub value: ArrayViewMutD<'a, T>,
    /// d cost / d param from the last backward.
    pub grad: ArrayViewD<'a, T>,
}

/// A network compiled by `network!`: feed inputs, run forward and backward, and visit params.
///
/// Everything an optimizer, a gradient check or a training loop needs, so those are written
/// once for every network. Names are the node names of the source.
pub trait Network {
    /// The element type (`f64` unless the network says otherwise).
    type Elem: Scalar;

    /// The network's static description.
    fn spec(&self) -> &'static NetworkSpec;

    /// Copies `value` into input `name`, checking it against the declared shape. Named dims
    /// are checked for consistency across inputs at the next forward.
    fn set_input(&mut self, name: &str, value: ArrayViewD<'_, Self::Elem>) -> Result<()>;

    /// Copies `value` into param `name`, which must have exactly its declared shape.
    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, Self::Elem>) -> Result<()>;

    /// Computes the loss from the fed inputs and returns it.
    fn forward(&mut self) -> Result<Self::Elem>;

    /// Computes the gradients of the loss with respect to every param and every `#[grad]`
    /// input, from the values of the last [`forward`](Network::forward).
    fn backward(&mut self) -> Result<()>;

    /// Computes output `name` from the inputs it needs (only those), and returns it.
    fn evaluate(&mut self, name: &str) -> Result<ArrayViewD<'_, Self::Elem>>;

    /// The current value of any node.
    fn value(&self, name: &str) -> Result<ArrayViewD<'_, Self::Elem>>;

    /// The gradient of the loss with respect to `name`, from the last backward, for every
    /// node whose gradient the plan computes.
    fn grad(&self, name: &str) -> Result<ArrayViewD<'_, Self::Elem>>;

    /// Turns check mode on or off (off by default). In check mode, forward and backward
    /// verify each node's value and gradient as it is computed and stop with
    /// [`Error::NonFinite`] at the first NaN or infinity, naming the
    /// node, like PyTorch's anomaly mode. It costs one pass over every buffer.
    fn set_check_finite(&mut self, on: bool);

    /// Calls `f` on every param, in source order, with its value and gradient.
    fn visit_params(&mut self, f: &mut dyn FnMut(ParamMut<'_, Self::Elem>));

    /// Feeds an array of any dimensionality (a convenience over [`set_input`](Network::set_input)).
    fn feed<S, D>(&mut self, name: &str, value: &ArrayBase<S, D>) -> Result<()>
    where
        Self: Sized,
        S: Data<Elem = Self::Elem>,
        D: Dimension,
    {
        self.set_input(name, value.view().into_dyn())
    }

    /// One SGD training step on the fed inputs: forward, backward, `value -= lr * grad` for
    /// every param; returns the loss before the update. Generated networks compute only the
    /// gradients the update needs: `#[grad]` inputs' gradients are not refreshed by it.
    ///
    /// Generated networks fuse the update into the backward pass where the plan allows (the
    /// param's value is not read after its gradient is made): such a param is updated by
    /// `value += -lr · contribution` as each contribution is computed, and its gradient
    /// buffer is left as it was. [`grad`](Network::grad) of such a param after `sgd_step`
    /// is therefore not this step's gradient; call [`backward`](Network::backward) for that.
    fn sgd_step(&mut self, lr: Self::Elem) -> Result<Self::Elem> {
        let loss = self.forward_backward()?;
        crate::optim::sgd(self, lr);
        Ok(loss)
    }

    /// [`forward`](Network::forward) then [`backward`](Network::backward); returns the loss.
    fn forward_backward(&mut self) -> Result<Self::Elem> {
        let loss = self.forward()?;
        self.backward()?;
        Ok(loss)
    }

    /// The network's structure as Graphviz DOT text (see [`crate::dot`]).
    fn to_dot(&self) -> String {
        crate::dot::to_dot(self.spec())
    }
}
