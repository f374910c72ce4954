//! Stage 1, parse: the DSL's tokens to a syntax tree that keeps every span.
//!
//! ```text
//! network   := attr* vis "struct" Ident "{" stmt* "}"      (the declared form)
//!            | attr* stmt*                                  (the bare form: an expression)
//! stmt      := attr* ("input" | "param") Ident (":" "[" dims "]")? ";"
//!            | attr* ("loss" | "output")? Ident "=" call ";"
//!            | call ";"                                     (bare form: the loss, `cost`)
//! call      := Ident "(" args ")"
//! dims      := (LitInt | Ident) ("," (LitInt | Ident))* ","?
//! args      := arg ("," arg)* ","?
//! arg       := Ident | call | "-"? (LitInt | LitFloat)
//! ```
//! The last statement's `;` may be left out. Statement attributes: `#[grad]` on an input
//! (compute its gradient) and doc comments.
//!
//! A call nested in an argument becomes a statement of its own, named after the path of ops
//! that leads to it: in `o = linear(tanh(linear(x, w1, b1)), w2, b2)` the inner nodes are
//! `o_tanh` and `o_tanh_linear` (a second nested call of one op in the same call gets `_2`,
//! and a name already taken gets `_2`, `_3`...). What follows sees only flat statements, so
//! the expansion is the one the flat form gives.
//!
//! In the bare form (the course's way: `network! { l1 = linear(X, W1, b1); ... }`) a name that
//! no statement defines is a leaf: a param in a weight or bias position (`w` and `b` of
//! `linear`, `b` of `matmul`), an input elsewhere, every one with its gradient computed, as
//! the seed's test reads dX and dy; `input NAME;` or `param NAME;` overrides it.
//!
//! An argument is a node name or a numeric literal; which positions take literals is the op
//! table's business ([`miniflow_ops::Op::is_literal`]), checked by [`crate::validate`], which
//! also turns a literal into its value.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, parenthesized, Attribute, Ident, Lit, LitFloat, LitInt, Token, Visibility};

/// A whole `network! { ... }` invocation.
pub struct NetworkDef {
    /// Attributes on the struct (doc comments among them), passed through.
    pub attrs: Vec<Attribute>,
    /// The element type from `#[elem(f32)]`; `f64` when absent.
    pub elem: Ident,
    pub vis: Visibility,
    pub name: Ident,
    pub stmts: Vec<Stmt>,
    /// Written without a `struct` header: an expression building a runtime network.
    pub bare: bool,
}

/// One statement of the body.
pub enum Stmt {
    Leaf(Leaf),
    Node(NodeStmt),
}

impl Stmt {
    pub fn name(&self) -> &Ident {
        match self {
            Stmt::Leaf(l) => &l.name,
            Stmt::Node(n) => &n.name,
        }
    }

    pub fn doc(&self) -> &str {
        match self {
            Stmt::Leaf(l) => &l.doc,
            Stmt::Node(n) => &n.doc,
        }
    }
}

/// `input` or `param`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    /// Fed each step; `grad` is set by `#[grad]`.
    Input { grad: bool },
    /// Trained.
    Param,
}

/// `input X: [batch, 2];` or `param W: [2, 1];`.
pub struct Leaf {
    /// The doc comment, lines joined with `\n`.
    pub doc: String,
    pub kind: LeafKind,
    /// The `input` / `param` keyword.
    pub keyword: Ident,
    pub name: Ident,
    pub dims: Vec<DimExpr>,
    /// Whether `: [dims]` was written (the bare form may leave shapes to run time).
    pub sized: bool,
}

/// A dimension as written.
#[derive(Clone)]
pub enum DimExpr {
    Fixed(LitInt),
    Named(Ident),
}

/// What a computed node is for.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// An intermediate node.
    Plain,
    /// `loss`: backward starts here.
    Loss(Span),
    /// `output`: can be evaluated for inference.
    Output,
}

/// One argument of a call, as written.
#[derive(Clone)]
pub enum Arg {
    /// A node name.
    Node(Ident),
    /// A numeric literal (`0.01`, `-1`, `1e-3`).
    Lit(NumLit),
    /// A nested call; the parser names it and replaces it by [`Arg::Node`] (see the module
    /// documentation), so later stages never see one.
    Call(Box<Call>),
}

/// `op(args)` nested in an argument.
#[derive(Clone)]
pub struct Call {
    pub op: Ident,
    pub args: Vec<Arg>,
    pub parens: Span,
}

impl Arg {
    /// An error spanned on the whole argument (both tokens of `-0.5`).
    pub fn error(&self, message: impl std::fmt::Display) -> syn::Error {
        match self {
            Arg::Node(id) => syn::Error::new(id.span(), message),
            Arg::Lit(lit) => syn::Error::new_spanned(lit, message),
            Arg::Call(call) => syn::Error::new(call.op.span(), message),
        }
    }
}

/// A numeric literal argument: an integer or float literal, optionally negated.
#[derive(Clone)]
pub struct NumLit {
    pub minus: Option<Token![-]>,
    pub lit: Lit,
}

impl NumLit {
    /// The literal as written, e.g. `-0.5`.
    pub fn text(&self) -> String {
        let sign = if self.minus.is_some() { "-" } else { "" };
        format!("{sign}{}", self.lit.to_token_stream())
    }

    /// Its value, or why it is not a number a network can use (a suffix other than `f32` /
    /// `f64`, or digits that do not parse). Finiteness is the op's rule, checked by validate.
    pub fn value(&self) -> Result<f64, String> {
        let (digits, suffix) = match &self.lit {
            Lit::Int(l) => (l.base10_digits(), l.suffix()),
            Lit::Float(l) => (l.base10_digits(), l.suffix()),
            _ => return Err(format!("`{}` is not a number", self.text())),
        };
        if !matches!(suffix, "" | "f32" | "f64") {
            return Err(format!(
                "`{}` has the suffix `{suffix}`; write a plain number such as `0.01` (an `f32` or `f64` suffix is allowed)",
                self.text()
            ));
        }
        let v: f64 = digits
            .parse()
            .map_err(|e| format!("`{}` is not a valid number: {e}", self.text()))?;
        Ok(if self.minus.is_some() { -v } else { v })
    }
}

impl ToTokens for NumLit {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.minus.to_tokens(tokens);
        self.lit.to_tokens(tokens);
    }
}

/// `f = linear(X, W, b);`, possibly marked `loss` or `output`.
pub struct NodeStmt {
    /// The doc comment, lines joined with `\n`.
    pub doc: String,
    pub role: Role,
    pub name: Ident,
    pub op: Ident,
    pub args: Vec<Arg>,
    /// The span of `(...)`.
    pub parens: Span,
}

impl Parse for NetworkDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // The declared form starts with attributes, a visibility and `struct`; anything else
        // is the bare form, whose first statement may carry attributes of its own.
        let bare = {
            let fork = input.fork();
            fork.call(Attribute::parse_outer)?;
            fork.parse::<Visibility>()?;
            !fork.peek(Token![struct])
        };
        if bare {
            return parse_bare(input);
        }
        let mut attrs = input.call(Attribute::parse_outer)?;
        let mut elem = None;
        for attr in &attrs {
            if attr.path().is_ident("elem") {
                if elem.is_some() {
                    return Err(syn::Error::new_spanned(attr, "duplicate `#[elem(...)]`"));
                }
                let ty: Ident = attr.parse_args()?;
                if ty != "f32" && ty != "f64" {
                    return Err(syn::Error::new_spanned(
                        &ty,
                        format!("unsupported element type `{ty}`; use `f32` or `f64`"),
                    ));
                }
                elem = Some(ty);
            }
        }
        attrs.retain(|a| !a.path().is_ident("elem"));
        let elem = elem.unwrap_or_else(|| Ident::new("f64", Span::call_site()));
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        let content;
        syn::braced!(content in input);
        let mut stmts = Vec::new();
        while !content.is_empty() {
            stmts.push(parse_stmt(&content, false)?);
        }
        if !input.is_empty() {
            return Err(
                input.error("unexpected tokens after the network; `network!` takes one `struct`")
            );
        }
        Ok(NetworkDef {
            attrs,
            elem,
            vis,
            name,
            stmts: flatten(stmts),
            bare: false,
        })
    }
}

/// The bare form: statements only. `#[elem(f32)]` may come first.
fn parse_bare(input: ParseStream) -> syn::Result<NetworkDef> {
    let mut elem = None;
    if input.peek(Token![#]) {
        let fork = input.fork();
        let attrs = fork.call(Attribute::parse_outer)?;
        if let Some(attr) = attrs.first().filter(|a| a.path().is_ident("elem")) {
            let ty: Ident = attr.parse_args()?;
            if ty != "f32" && ty != "f64" {
                return Err(syn::Error::new_spanned(
                    &ty,
                    format!("unsupported element type `{ty}`; use `f32` or `f64`"),
                ));
            }
            elem = Some(ty);
            input.call(Attribute::parse_outer).map(drop)?;
        }
    }
    let mut stmts = Vec::new();
    while !input.is_empty() {
        stmts.push(parse_stmt(input, true)?);
    }
    if stmts.is_empty() {
        return Err(input.error(
            "an empty network; write its statements, e.g. `f = linear(X, W, b); cost = mse(y, sigmoid(f))`",
        ));
    }
    let mut stmts = flatten(stmts);
    declare_leaves(&mut stmts);
    Ok(NetworkDef {
        attrs: Vec::new(),
        elem: elem.unwrap_or_else(|| Ident::new("f64", Span::call_site())),
        vis: Visibility::Inherited,
        name: Ident::new("Net", Span::call_site()),
        stmts,
        bare: true,
    })
}

/// Replaces every nested call by a node of its own, named after its path of ops.
fn flatten(stmts: Vec<Stmt>) -> Vec<Stmt> {
    let mut taken: std::collections::BTreeSet<String> =
        stmts.iter().map(|s| s.name().unraw().to_string()).collect();
    let mut out = Vec::with_capacity(stmts.len());
    for stmt in stmts {
        match stmt {
            Stmt::Node(mut node) => {
                let mut inner = Vec::new();
                node.args = lift(&node.name, node.args, &mut taken, &mut inner);
                out.push(Stmt::Node(node));
                out.extend(inner.into_iter().map(Stmt::Node));
            }
            leaf => out.push(leaf),
        }
    }
    out
}

/// The arguments of `parent`'s call with nested calls lifted into `out` as statements.
fn lift(
    parent: &Ident,
    args: Vec<Arg>,
    taken: &mut std::collections::BTreeSet<String>,
    out: &mut Vec<NodeStmt>,
) -> Vec<Arg> {
    args.into_iter()
        .map(|arg| match arg {
            Arg::Call(call) => {
                let op = miniflow_ops::Op::from_any_name(&call.op.to_string()).map_or_else(
                    || call.op.to_string().to_lowercase(),
                    |op| op.name().to_string(),
                );
                let base = format!("{}_{op}", parent.unraw());
                let mut name = base.clone();
                let mut k = 2;
                while !taken.insert(name.clone()) {
                    name = format!("{base}_{k}");
                    k += 1;
                }
                let ident = Ident::new(&name, call.op.span());
                let args = lift(&ident, call.args, taken, out);
                out.push(NodeStmt {
                    doc: format!("`{}` in `{}`", call.op, parent.unraw()),
                    role: Role::Plain,
                    name: ident.clone(),
                    op: call.op,
                    args,
                    parens: call.parens,
                });
                Arg::Node(ident)
            }
            other => other,
        })
        .collect()
}

/// The bare form's undeclared leaves: a param in a weight or bias position, else an input;
/// both with their gradient computed. Declared after the statements, in order of first use.
fn declare_leaves(stmts: &mut Vec<Stmt>) {
    use miniflow_ops::Op;
    let defined: std::collections::BTreeSet<String> =
        stmts.iter().map(|s| s.name().unraw().to_string()).collect();
    let mut leaves: Vec<(Ident, bool)> = Vec::new();
    for stmt in stmts.iter() {
        let Stmt::Node(node) = stmt else { continue };
        let op = Op::from_any_name(&node.op.to_string());
        let mut k = 0; // node arguments only, literals skipped
        for arg in &node.args {
            let Arg::Node(id) = arg else { continue };
            let weight = matches!((op, k), (Some(Op::Linear), 1 | 2) | (Some(Op::Matmul), 1));
            k += 1;
            let key = id.unraw().to_string();
            if defined.contains(&key) {
                continue;
            }
            match leaves.iter_mut().find(|(l, _)| l.unraw() == key) {
                Some((_, param)) => *param |= weight,
                None => leaves.push((id.clone(), weight)),
            }
        }
    }
    for (name, param) in leaves {
        let kind = if param {
            LeafKind::Param
        } else {
            LeafKind::Input { grad: true }
        };
        let keyword = Ident::new(if param { "param" } else { "input" }, name.span());
        stmts.push(Stmt::Leaf(Leaf {
            doc: String::new(),
            kind,
            keyword,
            name,
            dims: Vec::new(),
            sized: false,
        }));
    }
}

/// One statement; `bare`: of the bare form, where a lone call is the loss and shapes may be
/// left out.
fn parse_stmt(input: ParseStream, bare: bool) -> syn::Result<Stmt> {
    let attrs = input.call(Attribute::parse_outer)?;
    let (doc, grad) = split_attrs(attrs)?;
    if input.peek(Token![let]) {
        let kw: Token![let] = input.parse()?;
        return Err(syn::Error::new(
                kw.span,
                "remove `let`: a network is not Rust code; its statements are `input NAME: [dims];`, `param NAME: [dims];`, `NAME = op(args);`, `output NAME = op(args);` and `loss NAME = op(args);`",
            ));
    }
    if input.peek(Ident) && !input.peek2(Ident) && input.peek2(Ident::peek_any) {
        // `input type: ...`: a Rust keyword where the name goes.
        let fork = input.fork();
        fork.parse::<Ident>()?;
        let name = Ident::parse_any(&fork)?;
        return Err(syn::Error::new(
                name.span(),
                format!(
                    "`{name}` is a Rust keyword, so it cannot name a node as written; write `r#{name}` or choose another name"
                ),
            ));
    }
    if input.peek(Ident) && input.peek2(Ident) {
        let keyword: Ident = input.parse()?;
        match keyword.to_string().as_str() {
                "input" | "param" => parse_leaf(input, doc, grad, keyword, bare).map(Stmt::Leaf),
                "loss" | "output" => {
                    let role = if keyword == "loss" {
                        Role::Loss(keyword.span())
                    } else {
                        Role::Output
                    };
                    no_grad(grad, "a computed node")?;
                    parse_node(input, doc, role).map(Stmt::Node)
                }
                other => Err(syn::Error::new(
                    keyword.span(),
                    format!(
                        "unknown keyword `{other}`; a statement starts with `input`, `param`, `loss`, `output` or a node name{}",
                        crate::suggest::did_you_mean(other, ["input", "param", "loss", "output"])
                    ),
                )),
            }
    } else if input.peek(Ident) && input.peek2(Token![=]) {
        no_grad(grad, "a computed node")?;
        parse_node(input, doc, Role::Plain).map(Stmt::Node)
    } else if bare && input.peek(Ident) && input.peek2(syn::token::Paren) {
        // The seed's nested expression: `MSE(Linear(...), y)` is the loss, `cost`.
        no_grad(grad, "a computed node")?;
        let call = parse_call(input)?;
        let name = Ident::new("cost", call.op.span());
        semicolon(input, call.parens, &name)?;
        Ok(Stmt::Node(NodeStmt {
            doc,
            role: Role::Loss(call.op.span()),
            name,
            op: call.op,
            args: call.args,
            parens: call.parens,
        }))
    } else {
        Err(input.error(
                "expected a statement: `input NAME: [dims];`, `param NAME: [dims];` or `NAME = op(args);`",
            ))
    }
}

/// Separates doc comments from `#[grad]`; anything else is an error.
fn split_attrs(attrs: Vec<Attribute>) -> syn::Result<(String, Option<Attribute>)> {
    let mut docs: Vec<String> = Vec::new();
    let mut grad = None;
    for attr in attrs {
        if attr.path().is_ident("doc") {
            if let syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }),
                ..
            }) = &attr.meta
            {
                docs.push(s.value().trim().to_string());
            }
        } else if attr.path().is_ident("grad") {
            attr.meta.require_path_only()?;
            if grad.is_some() {
                return Err(syn::Error::new_spanned(attr, "duplicate `#[grad]`"));
            }
            grad = Some(attr);
        } else {
            return Err(syn::Error::new_spanned(
                attr.path(),
                "unknown attribute; statements take `#[grad]` (on an input) and doc comments",
            ));
        }
    }
    Ok((docs.join("\n"), grad))
}

fn no_grad(grad: Option<Attribute>, what: &str) -> syn::Result<()> {
    match grad {
        Some(attr) => Err(syn::Error::new_spanned(
            attr,
            format!("`#[grad]` goes on an input, not on {what}; params and computed nodes get their gradients already"),
        )),
        None => Ok(()),
    }
}

fn parse_leaf(
    input: ParseStream,
    doc: String,
    grad: Option<Attribute>,
    keyword: Ident,
    bare: bool,
) -> syn::Result<Leaf> {
    let kind = if keyword == "input" {
        LeafKind::Input {
            grad: grad.is_some(),
        }
    } else {
        no_grad(grad, "a param")?;
        LeafKind::Param
    };
    let name: Ident = input.parse()?;
    if bare && !input.peek(Token![:]) {
        // `input X;`: a leaf whose shape is known at run time.
        semicolon(input, name.span(), &name)?;
        let kind = match kind {
            LeafKind::Input { .. } => LeafKind::Input { grad: true },
            param => param,
        };
        return Ok(Leaf {
            doc,
            kind,
            keyword,
            name,
            dims: Vec::new(),
            sized: false,
        });
    }
    input.parse::<Token![:]>()?;
    let content;
    let brackets = bracketed!(content in input);
    let dims: Punctuated<DimExpr, Token![,]> =
        content.parse_terminated(DimExpr::parse, Token![,])?;
    semicolon(input, brackets.span.close(), &name)?;
    Ok(Leaf {
        doc,
        kind,
        keyword,
        name,
        dims: dims.into_iter().collect(),
        sized: true,
    })
}

impl Parse for DimExpr {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Token![-]) {
            let minus: Token![-] = input.parse()?;
            let rest: TokenStream = if input.peek(LitInt) || input.peek(LitFloat) {
                input.parse::<Lit>()?.into_token_stream()
            } else {
                TokenStream::new()
            };
            let mut written = minus.to_token_stream();
            written.extend(rest.clone());
            return Err(syn::Error::new_spanned(
                written,
                format!("a dimension must be a positive integer such as `2`, not `-{rest}`"),
            ));
        }
        if input.peek(LitInt) {
            // Dims follow the rule of literal arguments: a plain number, no suffix.
            let lit: LitInt = input.parse()?;
            if !lit.suffix().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "`{lit}` has the suffix `{}`; a dimension is a plain integer such as `{}`",
                        lit.suffix(),
                        lit.base10_digits()
                    ),
                ));
            }
            Ok(DimExpr::Fixed(lit))
        } else if input.peek(LitFloat) {
            let lit: LitFloat = input.parse()?;
            Err(syn::Error::new(
                lit.span(),
                format!("`{lit}` is not an integer; a dimension is a positive integer such as `2`"),
            ))
        } else if input.peek(Ident) {
            Ok(DimExpr::Named(input.parse()?))
        } else {
            Err(input.error("expected a dimension: an integer like `2` or a name like `batch`"))
        }
    }
}

fn parse_node(input: ParseStream, doc: String, role: Role) -> syn::Result<NodeStmt> {
    let name: Ident = input.parse()?;
    input.parse::<Token![=]>()?;
    let call = parse_call(input)?;
    semicolon(input, call.parens, &name)?;
    Ok(NodeStmt {
        doc,
        role,
        name,
        op: call.op,
        args: call.args,
        parens: call.parens,
    })
}

/// `op(args)`, the arguments possibly calls themselves.
fn parse_call(input: ParseStream) -> syn::Result<Call> {
    let op: Ident = input.parse()?;
    let content;
    let parens = parenthesized!(content in input);
    let args: Punctuated<Arg, Token![,]> = content.parse_terminated(parse_arg, Token![,])?;
    Ok(Call {
        op,
        args: args.into_iter().collect(),
        parens: parens.span.join(),
    })
}

/// The `;` ending the statement `name` (optional after the last statement), or an error at
/// the statement's last token.
fn semicolon(input: ParseStream, last: Span, name: &Ident) -> syn::Result<()> {
    if input.peek(Token![;]) {
        input.parse::<Token![;]>().map(drop)
    } else if input.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new(
            last,
            format!("expected `;` after the statement defining `{name}`"),
        ))
    }
}

fn parse_arg(input: ParseStream) -> syn::Result<Arg> {
    let number = |input: ParseStream| input.peek(LitInt) || input.peek(LitFloat);
    if input.peek(Ident) && !input.peek2(syn::token::Paren) {
        input.parse().map(Arg::Node)
    } else if input.peek(Ident) {
        parse_call(input).map(|c| Arg::Call(Box::new(c)))
    } else if number(input) || (input.peek(Token![-]) && !input.peek2(Ident)) {
        let minus: Option<Token![-]> = input.parse()?;
        if !number(input) {
            return Err(input.error("expected a number after `-`"));
        }
        Ok(Arg::Lit(NumLit {
            minus,
            lit: input.parse()?,
        }))
    } else if input.peek(Token![-]) {
        Err(input.error(
            "a node cannot be negated inside a call; compute `sub(a, b)` in a statement of its own",
        ))
    } else {
        Err(input.error("expected a node name or a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<NetworkDef> {
        syn::parse2(tokens)
    }

    #[test]
    fn parses_the_course_network() {
        let def = parse(quote! {
            /// Docs.
            pub struct Course {
                #[grad] input X: [batch, 2];
                input y: [batch];
                param W: [2, 1];
                param b: [1];
                f = linear(X, W, b);
                output a = sigmoid(f);
                loss cost = mse(y, a);
            }
        })
        .unwrap();
        assert_eq!(def.name, "Course");
        assert_eq!(def.attrs.len(), 1);
        assert_eq!(def.elem, "f64");
        assert_eq!(def.stmts.len(), 7);
        let Stmt::Leaf(x) = &def.stmts[0] else {
            panic!("X is a leaf")
        };
        assert_eq!(x.kind, LeafKind::Input { grad: true });
        assert!(matches!(&x.dims[0], DimExpr::Named(n) if n == "batch"));
        let Stmt::Leaf(w) = &def.stmts[2] else {
            panic!("W is a leaf")
        };
        assert_eq!(w.kind, LeafKind::Param);
        assert!(matches!(&w.dims[1], DimExpr::Fixed(l) if l.base10_digits() == "1"));
        let Stmt::Node(f) = &def.stmts[4] else {
            panic!("f is a node")
        };
        assert_eq!(f.op, "linear");
        assert_eq!(f.args.len(), 3);
        assert!(matches!(&f.args[1], Arg::Node(w) if w == "W"));
        assert!(matches!(f.role, Role::Plain));
        let Stmt::Node(cost) = &def.stmts[6] else {
            panic!("cost is a node")
        };
        assert!(matches!(cost.role, Role::Loss(_)));
    }

    #[test]
    fn element_type_attribute() {
        let def =
            parse(quote! { #[elem(f32)] struct N { input x: [1]; loss l = mse(x, x); } }).unwrap();
        assert_eq!(def.elem, "f32");
        assert!(
            def.attrs.is_empty(),
            "#[elem] is consumed, not passed through"
        );
        let err = parse(quote! { #[elem(i32)] struct N {} }).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("unsupported element type `i32`"),
            "{err}"
        );
    }

    #[test]
    fn a_node_may_be_called_like_a_keyword() {
        let def = parse(quote! { struct N { input x: [1]; loss = sigmoid(x); } }).unwrap();
        assert_eq!(def.stmts[1].name(), "loss");
    }

    #[test]
    fn rejects_unknown_keyword_with_suggestion() {
        let err = parse(quote! { struct N { inptu x: [1]; } }).err().unwrap();
        assert!(err.to_string().contains("did you mean `input`"), "{err}");
    }

    #[test]
    fn rejects_grad_on_param_and_unknown_attributes() {
        let err = parse(quote! { struct N { #[grad] param w: [1]; } })
            .err()
            .unwrap();
        assert!(err.to_string().contains("goes on an input"), "{err}");
        let err = parse(quote! { struct N { #[foo] input x: [1]; } })
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown attribute"), "{err}");
    }

    #[test]
    fn literal_arguments() {
        let def =
            parse(quote! { struct N { h = leaky_relu(z, 0.01); k = f(x, -2, 1e-3f32); } }).unwrap();
        let Stmt::Node(h) = &def.stmts[0] else {
            panic!("h is a node")
        };
        let Arg::Lit(slope) = &h.args[1] else {
            panic!("0.01 is a literal")
        };
        assert_eq!(slope.value(), Ok(0.01));
        assert_eq!(slope.text(), "0.01");
        let Stmt::Node(k) = &def.stmts[1] else {
            panic!("k is a node")
        };
        let values: Vec<f64> = k.args[1..]
            .iter()
            .map(|a| match a {
                Arg::Lit(l) => l.value().unwrap(),
                _ => panic!("a literal"),
            })
            .collect();
        assert_eq!(values, [-2.0, 1e-3]);

        let def = parse(quote! { struct N { h = f(x, 1e999, 2u8); } }).unwrap();
        let Stmt::Node(h) = &def.stmts[0] else {
            panic!("h is a node")
        };
        let (Arg::Lit(big), Arg::Lit(int)) = (&h.args[1], &h.args[2]) else {
            panic!("literals")
        };
        assert_eq!(
            big.value(),
            Ok(f64::INFINITY),
            "finiteness is validate's rule"
        );
        assert!(int.value().unwrap_err().contains("suffix `u8`"));

        for bad in [
            quote! { struct N { h = f(x, "a"); } },
            quote! { struct N { h = f(-x); } },
        ] {
            assert!(parse(bad).is_err());
        }
        let err = parse(quote! { struct N { h = f(x, -); } }).err().unwrap();
        assert!(
            err.to_string().contains("expected a number after `-`"),
            "{err}"
        );
    }

    #[test]
    fn lifts_nested_calls_and_requires_semicolons_between_statements() {
        let def = parse(quote! { struct N { a = sigmoid(tanh(x), relu(x)); } }).unwrap();
        let names: Vec<String> = def.stmts.iter().map(|s| s.name().to_string()).collect();
        assert_eq!(names, ["a", "a_tanh", "a_relu"]);
        let Stmt::Node(a) = &def.stmts[0] else {
            panic!("a is a node")
        };
        assert!(matches!(&a.args[0], Arg::Node(n) if n == "a_tanh"));
        // The last `;` may be left out; one between statements may not.
        assert!(parse(quote! { struct N { input x: [1] } }).is_ok());
        assert!(parse(quote! { struct N { input x: [1] param w: [1]; } }).is_err());
    }

    #[test]
    fn the_bare_form_declares_what_it_uses() {
        let def = parse(quote! {
            l1 = linear(X, W1, b1); s1 = sigmoid(l1); l2 = linear(s1, W2, b2); cost = mse(l2, y)
        })
        .unwrap();
        assert!(def.bare);
        let leaves: Vec<(String, LeafKind)> = def
            .stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Leaf(l) => Some((l.name.to_string(), l.kind)),
                Stmt::Node(_) => None,
            })
            .collect();
        let input = LeafKind::Input { grad: true };
        assert_eq!(
            leaves,
            [
                ("X".to_string(), input),
                ("W1".to_string(), LeafKind::Param),
                ("b1".to_string(), LeafKind::Param),
                ("W2".to_string(), LeafKind::Param),
                ("b2".to_string(), LeafKind::Param),
                ("y".to_string(), input),
            ]
        );
        // The seed's nested expression, its op names as in MiniFlow: the loss is `cost`.
        let def = parse(quote! { MSE(Linear(Sigmoid(Linear(X, W1, b1)), W2, b2), y) }).unwrap();
        assert_eq!(def.stmts[0].name().to_string(), "cost");
        assert_eq!(def.stmts.len(), 4 + 6);
        // `param` / `input` without dims override the guess.
        let def = parse(quote! { param X; cost = mse(X, y) }).unwrap();
        assert!(matches!(&def.stmts[0], Stmt::Leaf(l) if l.kind == LeafKind::Param && !l.sized));
    }
}
