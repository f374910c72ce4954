//! Typed errors for everything a user can feed or ask at run time.

pub(crate) use miniflow_ops::closest;
use miniflow_ops::format_shape;

/// What went wrong, naming the node and the shapes involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value fed to a node does not have the node's declared shape.
    #[error(
        "wrong shape for `{node}`: expected {expected}, found {}",
        format_shape(found)
    )]
    Shape {
        /// The node fed.
        node: String,
        /// The declared shape (named dims are shown by name).
        expected: String,
        /// The shape of the value.
        found: Vec<usize>,
    },
    /// A named dimension was fed with size 0 (an empty batch).
    #[error(
        "empty batch: `{node}` was fed with {dim} = 0 ({}); feed at least one row",
        format_shape(found)
    )]
    EmptyBatch {
        /// The input fed.
        node: String,
        /// The named dimension that is 0.
        dim: String,
        /// The shape of the value.
        found: Vec<usize>,
    },
    /// Two inputs disagree on the size of a named dimension.
    #[error(
        "inconsistent dimension `{dim}`: `{first}` gives it {first_size}, but `{second}` gives it {second_size}"
    )]
    InconsistentDim {
        /// The named dimension (e.g. `batch`).
        dim: String,
        /// The input that bound it first.
        first: String,
        /// The size that input gives.
        first_size: usize,
        /// The input that disagrees.
        second: String,
        /// The size it gives.
        second_size: usize,
    },
    /// An op cannot take the shapes of its arguments (runtime graph).
    #[error("`{node}`: {message}")]
    OpShape {
        /// The op node.
        node: String,
        /// What is wrong, naming the arguments and their shapes.
        message: String,
    },
    /// An input that a computation needs was not fed.
    #[error("input `{input}` was not fed, but `{needed_by}` needs it")]
    MissingFeed {
        /// The input left out.
        input: String,
        /// The node (or output) that needs it.
        needed_by: String,
    },
    /// No node has this name.
    #[error("no node named `{name}`{}", did_you_mean(suggestion))]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// The closest existing name, if any is close.
        suggestion: Option<String>,
    },
    /// The node exists but is not of the kind the call needs.
    #[error("`{name}` is {actual}, not {wanted}")]
    WrongKind {
        /// The node.
        name: String,
        /// What the call needs (e.g. "an input").
        wanted: &'static str,
        /// What the node is (e.g. "a param").
        actual: &'static str,
    },
    /// No gradient is computed for this node.
    #[error("no gradient is computed for `{name}`: {reason}")]
    NoGradient {
        /// The node.
        name: String,
        /// Why (e.g. it is an input without `#[grad]`).
        reason: &'static str,
    },
    /// `backward` was called without a `forward` since the inputs or params last changed.
    #[error("backward needs a forward pass of the current inputs and params first")]
    BackwardBeforeForward,
    /// The graph has a cycle (runtime graph).
    #[error("the graph has a cycle: {}", path.join(" -> "))]
    Cycle {
        /// The nodes on the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// A value asked for has not been computed.
    #[error("`{name}` has no value yet: {reason}")]
    NoValue {
        /// The node.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

/// `Result` with miniflow's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_node_and_shapes() {
        let e = Error::Shape {
            node: "X".into(),
            expected: "[batch, 2]".into(),
            found: vec![4, 3],
        };
        assert_eq!(
            e.to_string(),
            "wrong shape for `X`: expected [batch, 2], found [4, 3]"
        );
        let e = Error::UnknownNode {
            name: "W3".into(),
            suggestion: closest("W3", ["W1", "b1"]),
        };
        assert_eq!(e.to_string(), "no node named `W3`; did you mean `W1`?");
    }
}
