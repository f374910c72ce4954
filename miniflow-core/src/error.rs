//! Typed errors for everything a user can feed or ask at run time.

pub(crate) use miniflow_ops::closest;
use miniflow_ops::format_shape;

/// What went wrong, naming the node and the shapes involved.
///
/// `Display` and `Debug` both print the message (so `fn main() -> miniflow::Result<()>` shows
/// `Error: wrong shape for ...`); match on the variants, or compare with `==`, to inspect the
/// fields.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value fed to a node does not have the node's declared shape.
    ///
    /// The message suggests a fix for the usual mix-ups: a `[n, 1]` column where a 1-D `[n]`
    /// is expected (`.column(0)`), the reverse (`.insert_axis(Axis(1))`), and one-hot rows
    /// where 1-D class labels are expected.
    #[error(
        "wrong shape for `{node}`: expected {expected}, found {}{}",
        format_shape(found),
        shape_hint(expected, found)
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
    /// The node exists but is not of the kind the call needs. The message says which call
    /// fits (e.g. `set_param` for a param given to `feed`).
    #[error("`{name}` is {actual}, not {wanted}{}", kind_hint(wanted, actual))]
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
    /// A hyperparameter (a learning rate, a step size) is out of its range.
    #[error("invalid {name}: {value}; it must be {expected}")]
    BadHyperparameter {
        /// What it is (e.g. "learning rate").
        name: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: &'static str,
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
    /// the pass computes them (like PyTorch's anomaly mode). A leaf (an input or a param)
    /// holding a non-finite value is named itself, before any node computed from it.
    #[error("{}", non_finite_message(node, pass, *leaf, index, value))]
    NonFinite {
        /// The node whose value (forward) or gradient (backward) is not finite.
        node: String,
        /// `"forward"` or `"backward"`.
        pass: &'static str,
        /// Whether `node` is a leaf whose value, as fed or set, is not finite (rather than a
        /// value the pass computed). Always `false` in the backward pass.
        leaf: bool,
        /// The position of the first offending element, one index per axis (`[row, column]`
        /// for a matrix, `[]` for a scalar).
        index: Vec<usize>,
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
        "`{node}`: row {row} of the labels `{labels}` is {value}, which is not a class index; labels must be whole numbers 0, 1, ... below the number of classes, {classes} (class indices, not one-hot rows or probabilities: for those, pass the index of each row's largest entry, its argmax)"
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
    /// A node name is already taken (runtime graph): names identify nodes, so each must be
    /// unique.
    #[error("a node named `{name}` already exists; every node needs its own name")]
    DuplicateNode {
        /// The name.
        name: String,
    },
    /// A node id that this graph did not hand out (runtime graph): ids belong to the graph
    /// that created them.
    #[error("node {id} is not a node of this graph: it comes from another `Graph` (a node id is only valid in the graph that returned it)")]
    ForeignNode {
        /// The id, as it displays (e.g. `#5`).
        id: String,
    },
    /// A value is too large to allocate (runtime graph): its element count overflows, or the
    /// memory cannot be reserved.
    #[error(
        "`{node}`: a value of shape {} is too large to allocate",
        format_shape(shape)
    )]
    TooLarge {
        /// The node whose value (or gradient) it is.
        node: String,
        /// The shape asked for.
        shape: Vec<usize>,
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
    /// Predictions and labels that must pair up one to one have different lengths
    /// ([`metrics`](crate::metrics)).
    #[error(
        "{function}: {predictions} prediction(s) but {labels} label(s); give one prediction per label (the same rows, in the same order)"
    )]
    LengthMismatch {
        /// The function called (e.g. `accuracy`).
        function: &'static str,
        /// How many predictions it was given.
        predictions: usize,
        /// How many labels.
        labels: usize,
    },
    /// A label or a prediction is not a class index: not a whole number from 0, or not below
    /// the number of classes ([`metrics`](crate::metrics)).
    #[error(
        "{function}: {which} {index} is {value}, which is not a class index{}",
        class_bound(classes)
    )]
    NotAClass {
        /// The function called (e.g. `accuracy`).
        function: &'static str,
        /// `"label"` or `"prediction"`.
        which: &'static str,
        /// Its position in the sequence given.
        index: usize,
        /// The value found.
        value: LabelValue,
        /// The number of classes, if the function knows it.
        classes: Option<usize>,
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

impl std::fmt::Debug for Error {
    /// The message, as `Display` prints it: `fn main() -> miniflow::Result<()>` then shows
    /// `Error: wrong shape for ...` rather than a struct dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// What to do about a shape mix-up that has a usual fix, judged from the declared shape
/// (as [`format_shape`] prints it) and the shape found; empty if none applies.
fn shape_hint(expected: &str, found: &[usize]) -> String {
    let Some(dims) = expected
        .strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
    else {
        return String::new();
    };
    let dims: Vec<&str> = if dims.trim().is_empty() {
        Vec::new()
    } else {
        dims.split(',').map(str::trim).collect()
    };
    match (dims.as_slice(), found) {
        ([_], [n, 1]) => format!(
            "; this is a [{n}, 1] column where a 1-D array is expected: pass `.column(0)` of it"
        ),
        // Labels have a named (batch) dim; a param's dims are all numbers.
        ([d], [_, c]) if *c > 1 && d.parse::<usize>().is_err() => format!(
            "; a 2-D array where a 1-D one is expected: if these are one-hot labels ({c} classes), pass class indices instead (each row's argmax, as a 1-D array)"
        ),
        ([_, "1"], [n]) => format!(
            "; a 1-D array where a column is expected: pass `.insert_axis(Axis(1))` of it (a [{n}, 1] column)"
        ),
        _ => String::new(),
    }
}

/// Which call fits a node of kind `actual`, when a call wanted `wanted`; empty if none.
fn kind_hint(wanted: &str, actual: &str) -> &'static str {
    match (wanted, actual) {
        ("an input", "a param") => "; set a param with `set_param`",
        ("a param", "an input") => "; feed an input with `feed` or `set_input`",
        ("an input" | "a param", "an op node") => {
            "; an op node's value is computed by `forward`, not set"
        }
        ("an input" | "a param", "the loss" | "an output" | "an intermediate node") => {
            "; its value is computed by the forward pass: feed inputs and set params instead"
        }
        _ => "",
    }
}

/// The message of [`Error::NonFinite`].
fn non_finite_message(node: &str, pass: &str, leaf: bool, index: &[usize], value: &str) -> String {
    let at = match index {
        [] => String::new(),
        [i] => format!(" at index {i}"),
        [r, c] => format!(" at row {r}, column {c}"),
        _ => format!(" at index {}", format_shape(index)),
    };
    if pass == "backward" {
        format!("`{node}` got a non-finite gradient ({value}){at} in the backward pass")
    } else if leaf {
        format!(
            "`{node}` holds a non-finite value ({value}){at}, read by the {pass} pass: it was fed or set that way"
        )
    } else {
        format!("`{node}` produced a non-finite value ({value}){at} in the {pass} pass")
    }
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
    /// The shortest form that reads back as the same number, in scientific notation when it
    /// is very large or very small (`1e300`, not 301 digits).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        let a = v.abs();
        if !v.is_finite() || a == 0.0 || (1e-4..1e16).contains(&a) {
            std::fmt::Display::fmt(&v, f)
        } else {
            std::fmt::LowerExp::fmt(&v, f)
        }
    }
}

/// What class indices a metric accepts, for [`Error::NotAClass`].
fn class_bound(classes: &Option<usize>) -> String {
    match classes {
        Some(0) => "; there are no classes (no class names?)".to_string(),
        Some(1) => "; the only class index is 0 (1 class)".to_string(),
        Some(k) => format!("; class indices are whole numbers 0 to {} ({k} classes)", k - 1),
        None => "; class indices are whole numbers 0, 1, 2, ... (class indices, not one-hot rows or probabilities: for those, take each row's argmax)".to_string(),
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

    #[test]
    fn debug_is_the_message() {
        let e = Error::Shape {
            node: "X".into(),
            expected: "[batch, 4]".into(),
            found: vec![2, 5],
        };
        assert_eq!(
            format!("{e:?}"),
            "wrong shape for `X`: expected [batch, 4], found [2, 5]"
        );
        assert_eq!(format!("{e:#?}"), e.to_string());
    }

    #[test]
    fn shape_hints_only_for_the_usual_mix_ups() {
        assert!(shape_hint("[batch]", &[4, 1]).contains(".column(0)"));
        assert!(shape_hint("[batch]", &[4, 3]).contains("one-hot"));
        assert_eq!(shape_hint("[3]", &[1, 3]), "", "a param is not labels");
        assert!(shape_hint("[batch, 1]", &[4]).contains(".insert_axis(Axis(1))"));
        assert_eq!(shape_hint("[batch, 2]", &[4]), "");
        assert_eq!(shape_hint("[batch, 2]", &[4, 3]), "");
        assert_eq!(shape_hint("[] (a scalar cost)", &[2, 1]), "");
        assert_eq!(shape_hint("", &[2, 1]), "");
    }

    #[test]
    fn label_values_print_compactly() {
        for (v, want) in [
            (1e300, "1e300"),
            (-1e300, "-1e300"),
            (1e-300, "1e-300"),
            (0.5, "0.5"),
            (3.0, "3"),
            (-1.0, "-1"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (123456789.0, "123456789"),
            (2.5e20, "2.5e20"),
        ] {
            assert_eq!(LabelValue(v).to_string(), want);
        }
    }

    #[test]
    fn non_finite_positions_read_as_rows_and_columns() {
        let e = |index: Vec<usize>, pass, leaf| Error::NonFinite {
            node: "h".into(),
            pass,
            leaf,
            index,
            value: "NaN".into(),
        };
        assert_eq!(
            e(vec![], "forward", false).to_string(),
            "`h` produced a non-finite value (NaN) in the forward pass"
        );
        assert_eq!(
            e(vec![3], "forward", false).to_string(),
            "`h` produced a non-finite value (NaN) at index 3 in the forward pass"
        );
        assert_eq!(
            e(vec![1, 2], "backward", false).to_string(),
            "`h` got a non-finite gradient (NaN) at row 1, column 2 in the backward pass"
        );
        assert_eq!(
            e(vec![1, 2, 3], "forward", true).to_string(),
            "`h` holds a non-finite value (NaN) at index [1, 2, 3], read by the forward pass: it was fed or set that way"
        );
    }
}
