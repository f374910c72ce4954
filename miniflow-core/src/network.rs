//! The [`Network`] trait that every `network!` implements, and the static description of a
//! network ([`NetworkSpec`]) it carries.

use crate::error::{closest, Error, Result};
use crate::Scalar;
use miniflow_ops::Op;
use ndarray::{ArrayBase, ArrayView, ArrayViewD, ArrayViewMutD, Data, Dimension, IxDyn};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

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

/// One node of a network, as written in the source (or built in a runtime
/// [`Graph`](crate::Graph)).
///
/// Every field is a [`Cow`]: generated networks borrow everything from a `static` (so a spec
/// costs nothing at run time), and a runtime graph owns its spec, built without leaking.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's name.
    pub name: Cow<'static, str>,
    /// Input, param or op.
    pub kind: NodeKind,
    /// The node's declared shape (`[]` for a scalar): inferred at compile time for op nodes
    /// of generated networks. `None` for a node of a runtime [`Graph`](crate::Graph) whose
    /// shape is known only at run time (an input declared without one, and the ops computed
    /// from it).
    pub shape: Option<Cow<'static, [DimSpec]>>,
    /// The op's node arguments, by name (empty for leaves).
    pub args: Cow<'static, [Cow<'static, str>]>,
    /// The op's literal arguments, in order (the `0.01` of `leaky_relu(z, 0.01)`; empty for
    /// most ops and for leaves).
    pub attrs: Cow<'static, [f64]>,
    /// The node's doc comment in the source (empty if none).
    pub doc: Cow<'static, str>,
}

/// Field by field, literals compared bit for bit, so that `NodeSpec` (and [`NetworkSpec`])
/// stay `Eq` though they hold `f64` literals. Borrowed and owned fields compare by content.
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
                .zip(other.attrs.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits())
            && *doc == other.doc
    }
}

impl Eq for NodeSpec {}

impl NodeSpec {
    /// The declared shape as text, e.g. `[batch, 2]` (`[?]` if known only at run time).
    pub fn shape_text(&self) -> String {
        match &self.shape {
            Some(shape) => miniflow_ops::format_shape(shape),
            None => "[?]".to_string(),
        }
    }
}

/// The description of a network: enough to rebuild it as a runtime [`Graph`](crate::Graph),
/// export it, or report errors by name.
///
/// A generated network's spec is a `static` borrowing everything; a runtime graph's owns its
/// strings. Equality compares contents, whichever way they are held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The network's type name.
    pub name: Cow<'static, str>,
    /// All nodes in forward order: every node after its arguments (ties in source order; for
    /// a runtime graph, creation order).
    pub nodes: Cow<'static, [NodeSpec]>,
    /// The node backward starts from (empty for a runtime graph with no loss yet).
    pub loss: Cow<'static, str>,
    /// Nodes named as outputs for inference.
    pub outputs: Cow<'static, [Cow<'static, str>]>,
}

impl NetworkSpec {
    /// The node called `name`, or an [`Error::UnknownNode`] with a suggestion.
    pub fn node(&self, name: &str) -> Result<&NodeSpec> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::UnknownNode {
                name: name.to_string(),
                suggestion: closest(name, self.nodes.iter().map(|n| &*n.name)),
            })
    }

    /// The declared shape of `name` as text, e.g. `[batch, 2]`.
    pub fn shape_text(&self, name: &str) -> Result<String> {
        Ok(self.node(name)?.shape_text())
    }

    /// Whether `name` is one of the outputs.
    pub fn is_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o == name)
    }
}

/// A parameter handed to an optimizer: its value to update and its gradient.
#[derive(Debug)]
pub struct ParamMut<'a, T> {
    /// The param's position among the network's params (stable: source order).
    pub index: usize,
    /// The param's name.
    pub name: &'a str,
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

    /// The network's description: nodes, kinds, shapes, arguments, docs, loss and outputs.
    fn spec(&self) -> &NetworkSpec;

    /// Copies `value` into input `name`, checking it against the declared shape. Named dims
    /// are checked for consistency across inputs at the next forward.
    fn set_input(&mut self, name: &str, value: ArrayViewD<'_, Self::Elem>) -> Result<()>;

    /// [`set_input`](Network::set_input) at the value's own rank, which
    /// [`feed`](Network::feed) calls: generated networks copy a contiguous batch straight
    /// into the input's buffer without going through a dynamic-rank view (most of a small
    /// network's feed). Not for direct use.
    #[doc(hidden)]
    fn __feed_view<D: Dimension>(
        &mut self,
        name: &str,
        value: ArrayView<'_, Self::Elem, D>,
    ) -> Result<()>
    where
        Self: Sized,
    {
        self.set_input(name, value.into_dyn())
    }

    /// Copies `value` into param `name`, which must have exactly its declared shape.
    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, Self::Elem>) -> Result<()>;

    /// Computes the loss from the fed inputs and returns it.
    fn forward(&mut self) -> Result<Self::Elem>;

    /// Computes the gradients of the loss with respect to every param and every `#[grad]`
    /// input, from the values of the last [`forward`](Network::forward).
    fn backward(&mut self) -> Result<()>;

    /// Computes output (or loss) `name` from the inputs it needs (only those), and returns it.
    /// The string-keyed form of [`evaluate`](Network::evaluate), for dynamic code.
    fn evaluate_dyn(&mut self, name: &str) -> Result<ArrayViewD<'_, Self::Elem>>;

    /// The current value of any node, by name. The string-keyed form of
    /// [`value`](Network::value).
    fn value_dyn(&self, name: &str) -> Result<ArrayViewD<'_, Self::Elem>>;

    /// The gradient of the loss with respect to `name` from the last
    /// [`backward`](Network::backward), for every node whose gradient the plan computes. An
    /// error if no backward has run since the network last changed. The string-keyed form of
    /// [`grad`](Network::grad).
    fn grad_dyn(&self, name: &str) -> Result<ArrayViewD<'_, Self::Elem>>;

    /// Turns check mode on or off (off by default). In check mode, forward and backward
    /// verify each node's value and gradient as it is computed and stop with
    /// [`Error::NonFinite`] at the first NaN or infinity, naming the
    /// node, like PyTorch's anomaly mode. It costs one pass over every buffer.
    fn set_check_finite(&mut self, on: bool);

    /// Calls `f` on every param, in source order, with its value and gradient.
    fn visit_params(&mut self, f: &mut dyn FnMut(ParamMut<'_, Self::Elem>));

    /// Feeds input `key` (a typed handle such as `Net::X`, or a name) with `value`, checking
    /// its shape. With a handle, feeding a param or an array of the wrong rank does not
    /// compile.
    fn feed<K, S, D>(&mut self, key: K, value: &ArrayBase<S, D>) -> Result<()>
    where
        Self: Sized,
        K: InputKey<Self, D>,
        S: Data<Elem = Self::Elem>,
        D: Dimension,
    {
        self.__feed_view(key.name(), value.view())
    }

    /// Sets param `key` (a typed handle such as `Net::W`, or a name) to `value`, which must
    /// have its declared shape. With a handle, setting an input or an array of the wrong rank
    /// does not compile.
    fn set<K, S, D>(&mut self, key: K, value: &ArrayBase<S, D>) -> Result<()>
    where
        Self: Sized,
        K: ParamKey<Self, D>,
        S: Data<Elem = Self::Elem>,
        D: Dimension,
    {
        self.set_param(key.name(), value.view().into_dyn())
    }

    /// The current value of node `key`: with a typed handle, a view of the node's rank
    /// (`ArrayView2` for a matrix); with a name, a dynamic-rank view.
    fn value<K: NodeKey<Self>>(&self, key: K) -> Result<ArrayView<'_, Self::Elem, K::Dim>>
    where
        Self: Sized,
    {
        let name = key.name();
        rank(name, self.value_dyn(name)?)
    }

    /// d loss / d `key` from the last [`backward`](Network::backward), with the node's rank
    /// for a typed handle. An error if the plan computes no gradient for it, or no backward
    /// has run since the network last changed.
    fn grad<K: NodeKey<Self>>(&self, key: K) -> Result<ArrayView<'_, Self::Elem, K::Dim>>
    where
        Self: Sized,
    {
        let name = key.name();
        rank(name, self.grad_dyn(name)?)
    }

    /// Computes output (or loss) `key` from the inputs it needs, and returns it with its rank
    /// for a typed handle.
    fn evaluate<K: OutputKey<Self>>(&mut self, key: K) -> Result<ArrayView<'_, Self::Elem, K::Dim>>
    where
        Self: Sized,
    {
        let name = key.name();
        rank(name, self.evaluate_dyn(name)?)
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
        crate::optim::sgd(self, lr)?;
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

/// A view at the rank a key promises. A handle's rank is the node's (the macro proved it), so
/// this fails only for a handle of another network with a node of the same name.
fn rank<'a, T, D: Dimension>(name: &str, v: ArrayViewD<'a, T>) -> Result<ArrayView<'a, T, D>> {
    let found = v.shape().to_vec();
    v.into_dimensionality::<D>().map_err(|_| Error::Shape {
        node: name.to_string(),
        expected: format!("rank {}", D::NDIM.unwrap_or(0)),
        found,
    })
}

// ---------------------------------------------------------------------------------------------
// Typed handles.
// ---------------------------------------------------------------------------------------------

/// What kind of node a [`Handle`] names: the marker types of its second parameter.
pub mod kind {
    /// An input: fed with [`Network::feed`](super::Network::feed).
    #[derive(Clone, Copy, Debug)]
    pub enum Input {}
    /// A param: set with [`Network::set`](super::Network::set), trained.
    #[derive(Clone, Copy, Debug)]
    pub enum Param {}
    /// An `output` or the `loss`: computed on its own with
    /// [`Network::evaluate`](super::Network::evaluate).
    #[derive(Clone, Copy, Debug)]
    pub enum Output {}
    /// Any other computed node: its value and gradient can be read.
    #[derive(Clone, Copy, Debug)]
    pub enum Computed {}
}

/// A typed handle to node `name` of network `N`: a kind (`kind::Input`, `kind::Param`,
/// `kind::Output`, `kind::Computed`) and a rank `D` known at compile time. `network!` makes
/// one associated constant per node (`Course::X`, `Course::W`), so a misspelt name, an array of
/// the wrong rank, or feeding a param as an input is a compile error at the call site.
pub struct Handle<N, K, D> {
    name: &'static str,
    _marker: Marker<N, K, D>,
}

/// Covariant in nothing, owns nothing: a handle is `Copy`, `Send` and `Sync` whatever `N` is.
type Marker<N, K, D> = PhantomData<fn() -> (N, K, D)>;

impl<N, K, D> Handle<N, K, D> {
    /// The handle of node `name`. Only generated code should make handles: a handle promises
    /// that `N` has such a node, of that kind and rank.
    #[doc(hidden)]
    pub const fn new_unchecked(name: &'static str) -> Self {
        Handle {
            name,
            _marker: PhantomData,
        }
    }

    /// The node's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<N, K, D> Clone for Handle<N, K, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N, K, D> Copy for Handle<N, K, D> {}

impl<N, K, D> fmt::Debug for Handle<N, K, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.name)
    }
}

/// What names an input of `N` fed with an array of rank `D`: a typed handle of that rank, or
/// a name (any rank, checked at run time).
#[diagnostic::on_unimplemented(
    message = "only inputs are fed, and this handle is not an input's: `{Self}`",
    label = "not an input of this network",
    note = "`feed` takes an input's handle (e.g. `Net::X`) and an array of the input's rank; params are set with `set`"
)]
pub trait InputKey<N, D> {
    /// The input's name.
    fn name(&self) -> &str;
}

/// What names a param of `N` set with an array of rank `D`: a typed handle of that rank, or a
/// name.
#[diagnostic::on_unimplemented(
    message = "only params are set, and this handle is not a param's: `{Self}`",
    label = "not a param of this network",
    note = "`set` takes a param's handle (e.g. `Net::W`) and an array of the param's rank; inputs are fed with `feed`"
)]
pub trait ParamKey<N, D> {
    /// The param's name.
    fn name(&self) -> &str;
}

/// What names any node of `N`: a typed handle (read back at its rank) or a name (read back
/// at dynamic rank).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not name a node of `{N}`",
    label = "a handle of another network",
    note = "use a handle of this network's type (e.g. `Net::W`) or a name"
)]
pub trait NodeKey<N> {
    /// The rank the value is read back at.
    type Dim: Dimension;
    /// The node's name.
    fn name(&self) -> &str;
}

/// What names an output (or the loss) of `N`: a typed handle, or a name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an output of `{N}`",
    label = "only `output` nodes and the loss can be evaluated",
    note = "mark the node `output NAME = ...` in the network to evaluate it on its own"
)]
pub trait OutputKey<N>: NodeKey<N> {}

// A name: `&str`, `&String`, ... (any rank; checked at run time).
impl<N, D, T: AsRef<str> + ?Sized> InputKey<N, D> for &T {
    fn name(&self) -> &str {
        (**self).as_ref()
    }
}

impl<N, D, T: AsRef<str> + ?Sized> ParamKey<N, D> for &T {
    fn name(&self) -> &str {
        (**self).as_ref()
    }
}

impl<N, T: AsRef<str> + ?Sized> NodeKey<N> for &T {
    type Dim = IxDyn;
    fn name(&self) -> &str {
        (**self).as_ref()
    }
}

impl<N, T: AsRef<str> + ?Sized> OutputKey<N> for &T {}

impl<N, D> InputKey<N, D> for Handle<N, kind::Input, D> {
    fn name(&self) -> &str {
        self.name
    }
}

impl<N, D> ParamKey<N, D> for Handle<N, kind::Param, D> {
    fn name(&self) -> &str {
        self.name
    }
}

impl<N, K, D: Dimension> NodeKey<N> for Handle<N, K, D> {
    type Dim = D;
    fn name(&self) -> &str {
        self.name
    }
}

impl<N, D: Dimension> OutputKey<N> for Handle<N, kind::Output, D> {}
