//! The op table of miniflow: each op's name, arity and shape rule.
//!
//! Both the `network!` macro (at compile time, on symbolic shapes) and the runtime graph
//! (on concrete shapes) ask this crate whether a node is well formed, so the two can never
//! disagree. It has no dependencies, so the proc macro does not compile `ndarray` for the host.
//! The math of each op lives in `miniflow-core`'s `ops` module.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

/// A dimension the shape rules can compare: a concrete `usize` at run time, or a literal-or-name
/// in the macro.
pub trait Dim: Clone + PartialEq + fmt::Display {
    /// Whether shapes `a` and `b` hold the same number of elements.
    fn same_count(a: &[Self], b: &[Self]) -> bool;
}

impl Dim for usize {
    fn same_count(a: &[Self], b: &[Self]) -> bool {
        a.iter().product::<usize>() == b.iter().product::<usize>()
    }
}

/// How many arguments an op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exact(usize),
    /// This many or more.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` arguments are accepted.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |k: usize| if k == 1 { "" } else { "s" };
        match *self {
            Arity::Exact(k) => write!(f, "{k} argument{}", plural(k)),
            Arity::AtLeast(k) => write!(f, "at least {k} argument{}", plural(k)),
        }
    }
}

/// Every op a network can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `linear(x, w, b) = x·w + b`, `b` broadcast over the rows.
    Linear,
    /// `sigmoid(x) = 1 / (1 + e^-x)`, elementwise.
    Sigmoid,
    /// `mse(y, a) = mean((y - a)²)` over all elements; a scalar loss.
    Mse,
    /// `add(x1, x2, ...)`: the elementwise sum of inputs of one shape.
    Add,
}

impl Op {
    /// All ops, in the order the documentation lists them.
    pub const ALL: [Op; 4] = [Op::Linear, Op::Sigmoid, Op::Mse, Op::Add];

    /// The name used in the DSL and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Linear => "linear",
            Op::Sigmoid => "sigmoid",
            Op::Mse => "mse",
            Op::Add => "add",
        }
    }

    /// The op called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// How many arguments the op takes.
    pub fn arity(self) -> Arity {
        match self {
            Op::Linear => Arity::Exact(3),
            Op::Sigmoid => Arity::Exact(1),
            Op::Mse => Arity::Exact(2),
            Op::Add => Arity::AtLeast(2),
        }
    }

    /// The op's signature with its shape rule, for messages and documentation.
    pub fn signature(self) -> &'static str {
        match self {
            Op::Linear => "linear(x: [m, k], w: [k, n], b: [n]) -> [m, n]",
            Op::Sigmoid => "sigmoid(x: S) -> S",
            Op::Mse => "mse(y: S, a: T) -> [], where S and T hold the same number of elements",
            Op::Add => "add(x1: S, x2: S, ...) -> S",
        }
    }

    /// Whether the op's value is a scalar loss that backward can start from.
    pub fn is_loss(self) -> bool {
        matches!(self, Op::Mse)
    }

    /// The output shape of the op applied to arguments of shapes `args`, or what is wrong
    /// with them.
    pub fn infer_shape<D: Dim>(self, args: &[&[D]]) -> Result<Vec<D>, ShapeError<D>> {
        if !self.arity().accepts(args.len()) {
            return Err(ShapeError {
                arg: 0,
                kind: ShapeErrorKind::Arity {
                    expected: self.arity(),
                    found: args.len(),
                },
            });
        }
        match self {
            Op::Linear => {
                let (x, w, b) = (args[0], args[1], args[2]);
                rank(0, x, 2)?;
                rank(1, w, 2)?;
                rank(2, b, 1)?;
                same_dim((1, w, 0), (0, x, 1))?;
                same_dim((2, b, 0), (1, w, 1))?;
                Ok(vec![x[0].clone(), w[1].clone()])
            }
            Op::Sigmoid => Ok(args[0].to_vec()),
            Op::Mse => {
                if !D::same_count(args[0], args[1]) {
                    return Err(ShapeError {
                        arg: 1,
                        kind: ShapeErrorKind::Count {
                            expected: args[0].to_vec(),
                            found: args[1].to_vec(),
                        },
                    });
                }
                Ok(Vec::new())
            }
            Op::Add => {
                for (i, arg) in args.iter().enumerate().skip(1) {
                    if *arg != args[0] {
                        return Err(ShapeError {
                            arg: i,
                            kind: ShapeErrorKind::Shape {
                                expected: args[0].to_vec(),
                                found: arg.to_vec(),
                            },
                        });
                    }
                }
                Ok(args[0].to_vec())
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn rank<D: Dim>(arg: usize, shape: &[D], expected: usize) -> Result<(), ShapeError<D>> {
    if shape.len() == expected {
        Ok(())
    } else {
        Err(ShapeError {
            arg,
            kind: ShapeErrorKind::Rank {
                expected,
                found: shape.len(),
            },
        })
    }
}

/// Checks that axis `a.2` of argument `a.0` equals axis `b.2` of argument `b.0`; blames `a`.
fn same_dim<D: Dim>(a: (usize, &[D], usize), b: (usize, &[D], usize)) -> Result<(), ShapeError<D>> {
    if a.1[a.2] == b.1[b.2] {
        Ok(())
    } else {
        Err(ShapeError {
            arg: a.0,
            kind: ShapeErrorKind::Dim {
                axis: a.2,
                found: a.1[a.2].clone(),
                other_arg: b.0,
                other_axis: b.2,
                expected: b.1[b.2].clone(),
            },
        })
    }
}

/// Why an op cannot take its arguments. `arg` is the index of the argument to blame.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeError<D> {
    /// The argument to blame (0 for arity errors).
    pub arg: usize,
    /// What is wrong with it.
    pub kind: ShapeErrorKind<D>,
}

/// The kinds of [`ShapeError`].
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeErrorKind<D> {
    /// The op was given the wrong number of arguments.
    Arity {
        /// What the op accepts.
        expected: Arity,
        /// How many it got.
        found: usize,
    },
    /// The argument has the wrong rank.
    Rank {
        /// The rank the op needs.
        expected: usize,
        /// The argument's rank.
        found: usize,
    },
    /// One axis of the argument must equal an axis of another argument.
    Dim {
        /// The blamed argument's axis.
        axis: usize,
        /// Its size.
        found: D,
        /// The other argument.
        other_arg: usize,
        /// The other argument's axis.
        other_axis: usize,
        /// Its size.
        expected: D,
    },
    /// The argument must hold as many elements as argument 0.
    Count {
        /// Argument 0's shape.
        expected: Vec<D>,
        /// The blamed argument's shape.
        found: Vec<D>,
    },
    /// The argument must have the shape of argument 0.
    Shape {
        /// Argument 0's shape.
        expected: Vec<D>,
        /// The blamed argument's shape.
        found: Vec<D>,
    },
}

/// Formats a shape as `[a, b]`.
pub fn format_shape<D: fmt::Display>(shape: &[D]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[{}]", dims.join(", "))
}

impl<D: Dim> ShapeError<D> {
    /// A message naming the arguments by `names` (the nodes passed to the op), in the style
    /// shared by compile-time and run-time errors.
    pub fn message(&self, op: Op, names: &[&str]) -> String {
        let name = |i: usize| names.get(i).copied().unwrap_or("?");
        let body = match &self.kind {
            ShapeErrorKind::Arity { expected, found } => {
                format!("`{op}` takes {expected}, found {found}")
            }
            ShapeErrorKind::Rank { expected, found } => format!(
                "`{}` has rank {found}, but argument {} of `{op}` must have rank {expected}",
                name(self.arg),
                self.arg + 1,
            ),
            ShapeErrorKind::Dim {
                axis,
                found,
                other_arg,
                other_axis,
                expected,
            } => format!(
                "dimension {axis} of `{}` is {found}, but it must equal dimension {other_axis} of `{}`, which is {expected}",
                name(self.arg),
                name(*other_arg),
            ),
            ShapeErrorKind::Count { expected, found } => format!(
                "`{}` has shape {} and `{}` has shape {}: they must hold the same number of elements",
                name(0),
                format_shape(expected),
                name(self.arg),
                format_shape(found),
            ),
            ShapeErrorKind::Shape { expected, found } => format!(
                "`{}` has shape {} but `{}` has shape {}: the arguments of `{op}` must have one shape",
                name(self.arg),
                format_shape(found),
                name(0),
                format_shape(expected),
            ),
        };
        match self.kind {
            // These already say what the rule is.
            ShapeErrorKind::Count { .. } | ShapeErrorKind::Shape { .. } => body,
            _ => format!("{body}; expected {}", op.signature()),
        }
    }
}

/// The name in `names` closest to `name` by edit distance, if it is close enough to be a
/// plausible typo (for "did you mean" hints, at compile time and at run time alike).
pub fn closest<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    names
        .into_iter()
        .map(|n| (edit_distance(name, n), n))
        .filter(|&(d, n)| d > 0 && d <= (name.chars().count().max(n.chars().count()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n.to_string())
}

/// Edit distance counting an adjacent transposition as one edit (optimal string alignment),
/// so `inptu` is one typo away from `input`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        assert_eq!(Op::from_name("sigmod"), None);
    }

    #[test]
    fn linear_shape() {
        let s = Op::Linear.infer_shape::<usize>(&[&[4, 2], &[2, 3], &[3]]);
        assert_eq!(s, Ok(vec![4, 3]));
    }

    #[test]
    fn linear_inner_dim_blames_w() {
        let e = Op::Linear
            .infer_shape::<usize>(&[&[4, 2], &[5, 3], &[3]])
            .unwrap_err();
        assert_eq!(e.arg, 1);
        assert_eq!(
            e.message(Op::Linear, &["X", "W", "b"]),
            "dimension 0 of `W` is 5, but it must equal dimension 1 of `X`, which is 2; \
             expected linear(x: [m, k], w: [k, n], b: [n]) -> [m, n]"
        );
    }

    #[test]
    fn linear_bias_blames_b() {
        let e = Op::Linear
            .infer_shape::<usize>(&[&[4, 2], &[2, 3], &[2]])
            .unwrap_err();
        assert_eq!(e.arg, 2);
        assert!(matches!(
            e.kind,
            ShapeErrorKind::Dim {
                found: 2,
                expected: 3,
                ..
            }
        ));
    }

    #[test]
    fn linear_rank() {
        let e = Op::Linear
            .infer_shape::<usize>(&[&[4], &[2, 3], &[3]])
            .unwrap_err();
        assert_eq!(e.arg, 0);
        assert!(matches!(
            e.kind,
            ShapeErrorKind::Rank {
                expected: 2,
                found: 1
            }
        ));
    }

    #[test]
    fn mse_compares_counts_like_the_seed() {
        assert_eq!(Op::Mse.infer_shape::<usize>(&[&[3], &[3, 1]]), Ok(vec![]));
        let e = Op::Mse.infer_shape::<usize>(&[&[3], &[3, 2]]).unwrap_err();
        assert_eq!(e.arg, 1);
    }

    #[test]
    fn add_needs_one_shape_and_two_args() {
        assert_eq!(
            Op::Add.infer_shape::<usize>(&[&[2, 2], &[2, 2], &[2, 2]]),
            Ok(vec![2, 2])
        );
        let e = Op::Add
            .infer_shape::<usize>(&[&[2, 2], &[2, 1]])
            .unwrap_err();
        assert_eq!(e.arg, 1);
        let e = Op::Add.infer_shape::<usize>(&[&[2, 2]]).unwrap_err();
        assert!(matches!(e.kind, ShapeErrorKind::Arity { found: 1, .. }));
    }

    #[test]
    fn closest_suggests_typos_only() {
        assert_eq!(
            closest("sigmod", ["sigmoid", "linear"]),
            Some("sigmoid".into())
        );
        assert_eq!(closest("W3", ["W1", "b1"]), Some("W1".into()));
        assert_eq!(closest("zzz", ["sigmoid", "linear"]), None);
        assert_eq!(closest("x", ["x"]), None);
        assert_eq!(closest("inptu", ["input", "param"]), Some("input".into()));
    }

    #[test]
    fn arity_display() {
        assert_eq!(Arity::Exact(1).to_string(), "1 argument");
        assert_eq!(Arity::AtLeast(2).to_string(), "at least 2 arguments");
    }
}
