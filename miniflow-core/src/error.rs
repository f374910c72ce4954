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
    /// In check mode, a node produced NaN or an infinity: the first such node, in the order
    /// the pass computes them (like PyTorch's anomaly mode).
    #[error(
        "`{node}` produced a non-finite value ({value}) at flat index {index} in the {pass} pass"
    )]
    NonFinite {
        /// The node whose value (forward) or gradient (backward) is not finite.
        node: String,
        /// `"forward"` or `"backward"`.
        pass: &'static str,
        /// The first offending element, in row-major order.
        index: usize,
        /// That element: `NaN`, `inf` or `-inf`.
        value: String,
    },
    /// A value asked for has not been computed.
    #[error("`{name}` has no value yet: {reason}")]
    NoValue {
        /// The node.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A label fed to `softmax_cross_entropy` is not a class index: labels must be whole
    /// numbers `0.0, 1.0, ...` below the number of classes.
    #[error(
        "`{node}`: row {row} of the labels `{labels}` is {value}, which is not a class index; labels must be whole numbers 0, 1, ... below the number of classes, {classes}"
    )]
    BadLabel {
        /// The op node (e.g. the `softmax_cross_entropy` node).
        node: String,
        /// The node passed as its labels.
        labels: String,
        /// The row holding the bad label.
        row: usize,
        /// The label found there.
        value: LabelValue,
        /// The number of classes (columns of the logits).
        classes: usize,
    },
    /// A literal argument of an op (e.g. the slope of `leaky_relu`) is missing, extra, or not
    /// a finite number (runtime graph; the `network!` macro rejects these at compile time).
    #[error("`{node}`: {message}")]
    BadLiteral {
        /// The op node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be opened or read (data, DOT output).
    #[error("cannot read or write `{file}`: {what}")]
    Io {
        /// The file.
        file: String,
        /// The kind of I/O error (e.g. `NotFound`).
        kind: std::io::ErrorKind,
        /// The operating system's message.
        what: String,
    },
    /// A file read as gzip (by its `.gz` name or its magic bytes) does not decompress.
    #[error("`{file}` is not valid gzip: {what}")]
    Gzip {
        /// The file.
        file: String,
        /// What the decoder reported.
        what: String,
    },
    /// A data file is malformed: a bad number, a ragged row, an empty file, a header that does
    /// not match the data.
    #[error("{file}, line {line}{}: {what}", at_column(column))]
    Parse {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The 1-based field (column) on that line, when one field is at fault.
        column: Option<usize>,
        /// What is wrong.
        what: String,
    },
    /// An argument is outside what the function accepts (a batch size of 0, a split fraction
    /// above 1, a buffer of the wrong shape, a row index out of range).
    #[error("{function}: {what}")]
    InvalidArgument {
        /// The function called.
        function: &'static str,
        /// What is wrong with the argument.
        what: String,
    },
    /// A gzipped file decompresses to more than the configured limit (a guard against
    /// decompression bombs).
    #[error(
        "`{file}` decompresses to more than {limit} bytes; if the file is trusted, raise the limit with CsvOptions::max_decompressed_bytes"
    )]
    DecompressedTooLarge {
        /// The file.
        file: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// An optimizer was given a param whose gradient does not have the param's shape (a
    /// hand-written [`Network`](crate::Network) can do this; `network!` cannot). The step
    /// changed nothing.
    #[error(
        "the gradient of `{param}` has shape {}, but the param has shape {}; nothing was updated (a Network must give each param a gradient of the param's shape)",
        format_shape(grad),
        format_shape(value)
    )]
    GradShape {
        /// The param.
        param: String,
        /// The param's shape.
        value: Vec<usize>,
        /// Its gradient's shape.
        grad: Vec<usize>,
    },
    /// A file is not a readable safetensors file: truncated, corrupt, or another format.
    #[error("`{file}` is not a valid safetensors file: {what}")]
    BadFile {
        /// The file.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// A load found tensors missing for some params, or tensors that no param takes; every
    /// such name is listed. Nothing was loaded.
    #[error("{}", tensor_names(file, missing, unexpected))]
    TensorNames {
        /// The file.
        file: String,
        /// Params the file has no tensor for.
        missing: Vec<String>,
        /// Tensors in the file that no param takes.
        unexpected: Vec<String>,
    },
    /// A tensor has another element type than its param. Nothing was loaded.
    #[error(
        "`{file}`: tensor `{tensor}` is {found}, but `{param}` is {expected}; nothing was loaded (to convert, load with Load::convert_dtype(true))"
    )]
    TensorDtype {
        /// The file.
        file: String,
        /// The tensor's name in the file.
        tensor: String,
        /// The param it was to fill.
        param: String,
        /// The param's element type (`F64`, `F32`).
        expected: &'static str,
        /// The tensor's element type (`F32`, `BF16`, ...).
        found: &'static str,
    },
    /// A tensor has another shape than its param. Nothing was loaded.
    #[error("{}", tensor_shape(file, tensor, param, expected, found))]
    TensorShape {
        /// The file.
        file: String,
        /// The tensor's name in the file.
        tensor: String,
        /// The param it was to fill.
        param: String,
        /// The param's shape.
        expected: Box<[usize]>,
        /// The tensor's shape (after any transpose asked for).
        found: Box<[usize]>,
    },
    /// Saved training state does not fit the object it is loaded into (another optimizer,
    /// sampler or scaler, a missing entry, inconsistent values). Nothing was changed.
    #[error("`{file}`: {what}")]
    BadState {
        /// The file.
        file: String,
        /// What is wrong and what to do.
        what: String,
    },
}

fn tensor_names(file: &str, missing: &[String], unexpected: &[String]) -> String {
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("no tensor for param(s) {}", list(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!("tensor(s) {} match no param", list(unexpected)));
    }
    format!(
        "`{file}`: {}; nothing was loaded (map names with Load::rename, or load a subset with Load::partial)",
        parts.join("; ")
    )
}

fn tensor_shape(
    file: &str,
    tensor: &str,
    param: &str,
    expected: &[usize],
    found: &[usize],
) -> String {
    let mut msg = format!(
        "`{file}`: tensor `{tensor}` has shape {}, but `{param}` has shape {}; nothing was loaded",
        format_shape(found),
        format_shape(expected)
    );
    if let ([a, b], [c, d]) = (expected, found) {
        if a == d && b == c && a != b {
            msg.push_str(
                " (it looks transposed: PyTorch's nn.Linear stores weights as [out, in], miniflow as [in, out]; load with Load::transpose)",
            );
        }
    }
    msg
}

fn at_column(column: &Option<usize>) -> String {
    match column {
        Some(c) => format!(", column {c}"),
        None => String::new(),
    }
}

/// A value carried by an [`Error`], compared bit for bit so that [`Error`] stays `Eq` (a NaN
/// label equals itself). Displays as the number.
#[derive(Clone, Copy, Debug)]
pub struct LabelValue(pub f64);

impl PartialEq for LabelValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for LabelValue {}

impl std::fmt::Display for LabelValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
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
