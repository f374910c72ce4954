//! Graphviz DOT export of a network's structure ([`NetworkSpec`]).
//!
//! Inputs are blue boxes, params yellow boxes, ops ellipses labelled with their call
//! (`f = linear(X, W, b)`); every node shows its shape. The loss is red with a double border,
//! outputs have a bold border. An edge runs from each node argument to the node using it (twice
//! if it is passed twice); literal arguments appear in the label only. Doc comments become
//! tooltips.
//!
//! ```
//! # fn demo<N: miniflow_core::Network>(net: &N) -> miniflow_core::Result<()> {
//! let dot = net.to_dot(); // or miniflow_core::dot::to_dot(net.spec())
//! miniflow_core::dot::write_dot(net.spec(), "net.dot")?;
//! // then: dot -Tsvg net.dot -o net.svg
//! # let _ = dot; Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::network::{NetworkSpec, NodeKind, NodeSpec};
use miniflow_ops::format_shape;
use std::fmt::Write as _;
use std::path::Path;

/// Escapes `text` for a double-quoted DOT string; line breaks become `\n`, tabs a space, and
/// other control characters (a NUL in a doc comment makes the file unreadable by Graphviz)
/// are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The DOT text of `spec`: a `digraph` named after the network, one node per node of the
/// spec in forward order, one edge per argument.
pub fn to_dot(spec: &NetworkSpec) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_graph(&mut out, spec);
    out
}

fn write_graph(out: &mut String, spec: &NetworkSpec) -> std::fmt::Result {
    writeln!(out, "digraph \"{}\" {{", escape(spec.name))?;
    writeln!(out, "  label=\"{}\";", escape(spec.name))?;
    writeln!(out, "  labelloc=t;")?;
    writeln!(out, "  fontname=\"Helvetica\";")?;
    writeln!(out, "  rankdir=TB;")?;
    writeln!(out, "  node [fontname=\"Helvetica\", fontsize=11];")?;
    writeln!(out, "  edge [color=\"#555555\"];")?;
    for node in spec.nodes {
        let shape = if node.shape.is_empty() {
            "scalar".to_string()
        } else {
            format_shape(node.shape)
        };
        let is_loss = node.name == spec.loss;
        let is_output = spec.outputs.contains(&node.name);
        let (title, detail, attrs) = match node.kind {
            NodeKind::Input { grad } => (
                node.name.to_string(),
                format!("input{} {shape}", if grad { ", with gradient" } else { "" }),
                "shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\"",
            ),
            NodeKind::Param => (
                node.name.to_string(),
                format!("param {shape}"),
                "shape=box, style=filled, fillcolor=\"#fef3c7\"",
            ),
            NodeKind::Op(op) => (
                format!("{} = {}({})", node.name, op.name(), call_args(node)),
                shape,
                "shape=ellipse",
            ),
        };
        let mut marks = Vec::new();
        if is_loss {
            marks.push("loss");
        }
        if is_output {
            marks.push("output");
        }
        let mut label = format!("{title}\n{detail}");
        if !marks.is_empty() {
            label.push_str(&format!("\n({})", marks.join(", ")));
        }
        write!(
            out,
            "  \"{}\" [{attrs}, label=\"{}\"",
            escape(node.name),
            escape(&label)
        )?;
        if is_loss {
            write!(out, ", style=filled, fillcolor=\"#fecaca\", peripheries=2")?;
        }
        if is_output {
            write!(out, ", penwidth=2.5")?;
        }
        if !node.doc.trim().is_empty() {
            write!(out, ", tooltip=\"{}\"", escape(node.doc.trim()))?;
        }
        writeln!(out, "];")?;
    }
    for node in spec.nodes {
        // Literal arguments (such as a slope) are shown in the label only.
        for arg in node
            .args
            .iter()
            .filter(|a| spec.nodes.iter().any(|n| n.name == **a))
        {
            writeln!(out, "  \"{}\" -> \"{}\";", escape(arg), escape(node.name))?;
        }
    }
    writeln!(out, "}}")
}

/// An op node's written arguments: its node arguments, then its literals (the ops' signatures
/// put literals last, as in `leaky_relu(z, 0.01)`).
fn call_args(node: &NodeSpec) -> String {
    let literals = node.attrs.iter().map(|x| x.to_string());
    let args: Vec<String> = node
        .args
        .iter()
        .map(|a| a.to_string())
        .chain(literals)
        .collect();
    args.join(", ")
}

/// Writes [`to_dot`]`(spec)` to the file at `path`.
pub fn write_dot(spec: &NetworkSpec, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    std::fs::write(path, to_dot(spec)).map_err(|e| Error::Io {
        file: path.display().to_string(),
        kind: e.kind(),
        what: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::DimSpec;
    use miniflow_ops::Op;

    static SPEC: NetworkSpec = NetworkSpec {
        name: "Course",
        nodes: &[
            NodeSpec {
                name: "X",
                kind: NodeKind::Input { grad: true },
                shape: &[DimSpec::Named("batch"), DimSpec::Fixed(2)],
                args: &[],
                attrs: &[],
                doc: "The \"data\".",
            },
            NodeSpec {
                name: "W",
                kind: NodeKind::Param,
                shape: &[DimSpec::Fixed(2), DimSpec::Fixed(1)],
                args: &[],
                attrs: &[],
                doc: "",
            },
            NodeSpec {
                name: "f",
                kind: NodeKind::Op(Op::Add),
                shape: &[DimSpec::Named("batch"), DimSpec::Fixed(2)],
                args: &["X", "X"],
                attrs: &[],
                doc: "",
            },
            NodeSpec {
                name: "c",
                kind: NodeKind::Op(Op::Mse),
                shape: &[],
                args: &["f", "X"],
                attrs: &[],
                doc: "",
            },
        ],
        loss: "c",
        outputs: &["f"],
    };

    #[test]
    fn nodes_edges_and_marks() {
        let dot = to_dot(&SPEC);
        assert!(dot.starts_with("digraph \"Course\" {\n"), "{dot}");
        assert!(dot.ends_with("}\n"));
        assert!(dot.contains(
            "\"X\" [shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\", label=\"X\\ninput, with gradient [batch, 2]\", tooltip=\"The \\\"data\\\".\"];"
        ), "{dot}");
        assert!(dot.contains("label=\"W\\nparam [2, 1]\""), "{dot}");
        assert!(
            dot.contains("label=\"f = add(X, X)\\n[batch, 2]\\n(output)\", penwidth=2.5"),
            "{dot}"
        );
        assert!(dot.contains("label=\"c = mse(f, X)\\nscalar\\n(loss)\", style=filled, fillcolor=\"#fecaca\", peripheries=2"), "{dot}");
        assert_eq!(dot.matches("\"X\" -> \"f\";").count(), 2);
        assert_eq!(dot.matches(" -> ").count(), 4);
    }

    #[test]
    fn literal_arguments_are_labelled_not_linked() {
        static LIT: NetworkSpec = NetworkSpec {
            name: "Lit",
            nodes: &[
                NodeSpec {
                    name: "x",
                    kind: NodeKind::Param,
                    shape: &[DimSpec::Fixed(3)],
                    args: &[],
                    attrs: &[],
                    doc: "",
                },
                NodeSpec {
                    name: "s",
                    kind: NodeKind::Op(Op::LeakyRelu),
                    shape: &[DimSpec::Fixed(3)],
                    args: &["x"],
                    attrs: &[0.5],
                    doc: "",
                },
            ],
            loss: "s",
            outputs: &[],
        };
        let dot = to_dot(&LIT);
        assert!(
            dot.contains("label=\"s = leaky_relu(x, 0.5)\\n[3]\\n(loss)\""),
            "{dot}"
        );
        assert_eq!(dot.matches(" -> ").count(), 1, "{dot}");
        assert!(!dot.contains("\"0.5\" ->"), "{dot}");
    }

    #[test]
    fn escapes_quotes_and_backslashes() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// Issue 8: a NUL (or any control character) in a doc comment used to reach the file.
    #[test]
    fn drops_control_characters() {
        assert_eq!(escape("a\0b\x07c\r\td\u{85}e"), "abc de");
        assert!(!escape("x\u{0}").chars().any(char::is_control));
    }

    #[test]
    fn write_dot_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("miniflow-dot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.dot");
        write_dot(&SPEC, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), to_dot(&SPEC));
        let bad = dir.join("no-such-dir").join("g.dot");
        assert!(matches!(
            write_dot(&SPEC, &bad),
            Err(Error::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            })
        ));
    }
}
