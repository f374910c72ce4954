//! Stage 5, expand: the plan to Rust. The emitted code is straight-line calls into
//! `miniflow-core`'s kernels in the planned order: no sort, map or graph walk at run time, and
//! no math of its own. Buffers live in the struct and are resized only when a named dim
//! changes, so a steady-state step does not allocate.
//!
//! Which kernel an op calls, with which operands, is read from the op table's
//! [`KernelCall`] templates, and every backward step comes from the plan with its kernel
//! (fused or not) and its sink: this stage has no per-op code and makes no optimization of
//! its own.

use crate::ast::{LeafKind, NetworkDef};
use crate::plan::{Forward, Plan, Sink, Step};
use crate::shapes::{Shape, SymDim};
use crate::validate::{Kind, Model};
use miniflow_ops::{KernelCall, Operand, Returns};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;

/// `miniflow-core` by a path valid in the user's crate (which depends on `miniflow` alone).
const CORE: CorePath = CorePath;

/// Expands to `::miniflow::__private::miniflow_core`.
struct CorePath;

impl quote::ToTokens for CorePath {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(quote!(::miniflow::__private::miniflow_core));
    }
}

struct Ctx<'a> {
    def: &'a NetworkDef,
    model: &'a Model,
    shapes: &'a [Shape],
    plan: &'a Plan,
    /// Named dims, in order of first appearance among the inputs.
    dims: Vec<String>,
    /// Path to `miniflow-core` inside the impls' block (`__mf_core`).
    core: TokenStream,
    elem: TokenStream,
}

pub fn expand(def: &NetworkDef, model: &Model, shapes: &[Shape], plan: &Plan) -> TokenStream {
    let mut dims: Vec<String> = Vec::new();
    for s in shapes {
        for d in s {
            if let SymDim::Named(n) = d {
                if !dims.contains(n) {
                    dims.push(n.clone());
                }
            }
        }
    }
    let cx = Ctx {
        def,
        model,
        shapes,
        plan,
        dims,
        core: quote!(__mf_core),
        elem: {
            let e = &def.elem;
            quote!(#e)
        },
    };
    hygienic(cx.expand())
}

/// The bare form (`let mut net = network! { f = linear(X, W, b); ... };`): an expression that
/// builds a runtime `Graph` of the network, whose shapes are known at run time. The names,
/// arities, cycles and unused nodes were checked here; the graph runs the same plan with the
/// same kernels as a declared network.
pub fn expand_bare(
    def: &NetworkDef,
    model: &Model,
    ranks: &[Option<usize>],
    plan: &Plan,
) -> TokenStream {
    let core = quote!(::miniflow::__private::miniflow_core);
    let elem = &def.elem;
    let name = |i: usize| model.nodes[i].name.unraw().to_string();
    let nodes = plan.order.iter().map(|&i| {
        let node = &model.nodes[i];
        let n = name(i);
        let kind = match &node.kind {
            Kind::Leaf(LeafKind::Input { grad }) => quote!(#core::NodeKind::Input { grad: #grad }),
            Kind::Leaf(LeafKind::Param) => quote!(#core::NodeKind::Param),
            Kind::Op { op, .. } => {
                let v = Ident::new(&format!("{op:?}"), Span::call_site());
                quote!(#core::NodeKind::Op(#core::Op::#v))
            }
        };
        let args = node.args().iter().map(|&a| name(a));
        let attrs: &[f64] = match &node.kind {
            Kind::Op { attrs, .. } => attrs,
            Kind::Leaf(_) => &[],
        };
        let doc = def.stmts[i].doc();
        let rank = match (&node.kind, ranks[i]) {
            (Kind::Leaf(_), Some(r)) => quote!(::core::option::Option::Some(#r)),
            _ => quote!(::core::option::Option::None),
        };
        let shape = match &def.stmts[i] {
            crate::ast::Stmt::Leaf(leaf) if leaf.sized => {
                let dims = leaf.dims.iter().map(|d| match d {
                    crate::ast::DimExpr::Fixed(n) => {
                        let n = n.base10_parse::<usize>().unwrap_or_default();
                        quote!(#core::DimSpec::Fixed(#n))
                    }
                    crate::ast::DimExpr::Named(name) => {
                        let name = name.unraw().to_string();
                        quote!(#core::DimSpec::Named(#name))
                    }
                });
                quote!(::core::option::Option::Some(&[#(#dims),*]))
            }
            _ => quote!(::core::option::Option::None),
        };
        quote!(#core::rt::BareNode { name: #n, kind: #kind, args: &[#(#args),*], attrs: &[#(#attrs),*], doc: #doc, rank: #rank, shape: #shape })
    });
    let loss = name(plan.loss.target);
    let outputs = plan.outputs.iter().map(|f| name(f.target));
    quote! {
        {
            static __MF_NODES: &[#core::rt::BareNode] = &[#(#nodes),*];
            #core::rt::bare_network::<#elem>(__MF_NODES, #loss, &[#(#outputs),*])
        }
    }
}

/// The names the generated code gives its own parameters, locals and closure arguments.
const LOCALS: &[&str] = &[
    "lr", "name", "value", "on", "f", "e", "loss", "grad", "seed", "net", "__binder", "__dims",
    "__need", "__target", "__k", "__a", "fed", "batch",
];

/// Renames the generated code's own parameters and locals (`lr` to `__mf_lr`, ...) and gives
/// them `Span::mixed_site()` hygiene. A pattern that names a constant in scope is a constant
/// pattern whatever its span (items resolve at the call site), so a user's `const lr` would
/// turn `lr: f64` into a refutable pattern: the `__mf_` prefix is what keeps them apart, and
/// mixed-site hygiene keeps the user's locals out of the expansion.
///
/// Field and method names are left alone: an ident after `.` or `fn`, or before a single `:` inside braces (a
/// struct literal's or definition's field).
fn hygienic(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Delimiter, Group, TokenTree};
    fn walk(tokens: TokenStream, in_braces: bool) -> TokenStream {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        let is = |tt: Option<&TokenTree>, c: char| matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c);
        let mut out = Vec::with_capacity(tts.len());
        for (k, tt) in tts.iter().enumerate() {
            out.push(match tt {
                TokenTree::Ident(id) if LOCALS.iter().any(|l| id == l) => {
                    let after_dot = k > 0
                        && (is(tts.get(k - 1), '.')
                            || matches!(tts.get(k - 1), Some(TokenTree::Ident(f)) if f == "fn"));
                    // A field's colon stands alone; a path's `::` is a joint pair (and a
                    // field's type may itself start with `::`).
                    let field = in_braces
                        && matches!(tts.get(k + 1), Some(TokenTree::Punct(p))
                            if p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Alone);
                    if after_dot || field {
                        tt.clone()
                    } else {
                        TokenTree::Ident(Ident::new(&format!("__mf_{id}"), Span::mixed_site()))
                    }
                }
                TokenTree::Group(g) => {
                    let inner = walk(g.stream(), g.delimiter() == Delimiter::Brace);
                    let mut out = Group::new(g.delimiter(), inner);
                    out.set_span(g.span());
                    TokenTree::Group(out)
                }
                other => other.clone(),
            });
        }
        out.into_iter().collect()
    }
    walk(tokens, false)
}

impl Ctx<'_> {
    fn name(&self, i: usize) -> String {
        self.model.nodes[i].name.unraw().to_string()
    }

    fn value(&self, i: usize) -> Ident {
        format_ident!("v_{}", self.model.nodes[i].name)
    }

    fn grad(&self, i: usize) -> Ident {
        format_ident!("g_{}", self.model.nodes[i].name)
    }

    /// The parameter holding input `i`'s value in the compute functions: they read inputs
    /// from views passed in (the network's own buffers, or a borrowed batch), never `self`.
    fn input_param(&self, i: usize) -> Ident {
        format_ident!(
            "__mf_in_{}",
            self.model.nodes[i].name,
            span = Span::mixed_site()
        )
    }

    /// Node `i`'s value where a compute function reads it: `self.v_f`, or an input's view.
    fn read(&self, i: usize) -> TokenStream {
        if self.model.nodes[i].is_input() {
            let p = self.input_param(i);
            quote!(#p)
        } else {
            let v = self.value(i);
            quote!(self.#v)
        }
    }

    /// The view type of input `i`, with lifetime `lt`.
    fn view_type(&self, i: usize, lt: TokenStream) -> TokenStream {
        let (core, elem) = (&self.core, &self.elem);
        let ix = format_ident!("Ix{}", self.shapes[i].len());
        quote!(#core::ndarray::ArrayView<#lt, #elem, #core::ndarray::#ix>)
    }

    /// The compute functions' input parameters: `__mf_in_X: ArrayView2<'_, f64>, ...`.
    fn input_params(&self) -> TokenStream {
        let ps = self.inputs().into_iter().map(|i| {
            let (p, t) = (self.input_param(i), self.view_type(i, quote!('_)));
            quote!(#p: #t)
        });
        quote!(#(#ps),*)
    }

    /// `call(views)` on views of the network's own input buffers. Each buffer is moved out
    /// for the call (so `&mut self` and the views do not overlap) and back after it; a
    /// scalar input is viewed from a copy (an empty rank-0 array does not exist, and making
    /// one would allocate).
    fn with_own_inputs(&self, call: impl FnOnce(TokenStream) -> TokenStream) -> TokenStream {
        let core = &self.core;
        let mut takes = Vec::new();
        let mut views = Vec::new();
        let mut restores = Vec::new();
        for i in self.inputs() {
            let v = self.value(i);
            let t = format_ident!(
                "__mf_t_{}",
                self.model.nodes[i].name,
                span = Span::mixed_site()
            );
            if self.shapes[i].is_empty() {
                takes.push(quote!(let #t = self.#v[()];));
                views.push(quote!(#core::ndarray::aview0(&#t)));
            } else {
                takes.push(quote!(let #t = ::core::mem::take(&mut self.#v);));
                views.push(quote!(#t.view()));
                restores.push(quote!(self.#v = #t;));
            }
        }
        let r = Ident::new("__mf_r", Span::mixed_site());
        let call = call(quote!(#(#views),*));
        quote! {{
            #(#takes)*
            let #r = #call;
            #(#restores)*
            #r
        }}
    }

    /// The type of node `i`'s buffers, by the full path (the struct is outside the block
    /// where `__mf_core` is in scope).
    fn array_type(&self, i: usize) -> TokenStream {
        let elem = &self.elem;
        let ix = format_ident!("Ix{}", self.shapes[i].len());
        quote!(#CORE::ndarray::Array<#elem, #CORE::ndarray::#ix>)
    }

    /// The node's shape as an `IxN(...)` expression; named dims read from `dims` (a local
    /// `[usize; N]`), or are 0 when `dims` is `None`.
    fn dim_expr(&self, i: usize, dims: Option<&Ident>) -> TokenStream {
        let core = &self.core;
        let ix = format_ident!("Ix{}", self.shapes[i].len());
        let parts = self.shapes[i].iter().map(|d| match (d, dims) {
            (SymDim::Fixed(n), _) => quote!(#n),
            (SymDim::Named(n), Some(dims)) => {
                let k = self.dim_index(n);
                quote!(#dims[#k])
            }
            (SymDim::Named(_), None) => quote!(0usize),
        });
        quote!(#core::ndarray::#ix(#(#parts),*))
    }

    fn dim_index(&self, name: &str) -> usize {
        self.dims.iter().position(|d| d == name).unwrap_or(0)
    }

    fn dim_specs(&self, i: usize) -> TokenStream {
        let core = &self.core;
        let parts = self.shapes[i].iter().map(|d| match d {
            SymDim::Fixed(n) => quote!(#core::DimSpec::Fixed(#n)),
            SymDim::Named(n) => quote!(#core::DimSpec::Named(#n)),
        });
        quote!(&[#(#parts),*])
    }

    fn inputs(&self) -> Vec<usize> {
        (0..self.model.nodes.len())
            .filter(|&i| self.model.nodes[i].is_input())
            .collect()
    }

    fn params(&self) -> Vec<usize> {
        (0..self.model.nodes.len())
            .filter(|&i| self.model.nodes[i].is_param())
            .collect()
    }

    /// Nodes with a gradient buffer: those either schedule computes.
    fn grads(&self) -> Vec<usize> {
        (0..self.model.nodes.len())
            .filter(|&i| self.plan.backward.grads[i] || self.plan.training.grads[i])
            .collect()
    }

    fn expand(&self) -> TokenStream {
        let NetworkDef {
            attrs, vis, name, ..
        } = self.def;
        let core = &self.core;
        let elem = &self.elem;
        let n_inputs = self.inputs().len();
        // `#[cfg]` on the network removes every item it expands to, not only the struct.
        let cfgs: Vec<&syn::Attribute> =
            attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();

        let value_fields = (0..self.model.nodes.len()).map(|i| {
            let (f, t) = (self.value(i), self.array_type(i));
            quote!(#f: #t)
        });
        let grad_fields = self.grads().into_iter().map(|i| {
            let (f, t) = (self.grad(i), self.array_type(i));
            quote!(#f: #t)
        });
        let value_inits = (0..self.model.nodes.len()).map(|i| {
            let (f, d) = (self.value(i), self.dim_expr(i, None));
            quote!(#f: #core::ndarray::Array::zeros(#d))
        });
        let grad_inits = self.grads().into_iter().map(|i| {
            let (f, d) = (self.grad(i), self.dim_expr(i, None));
            quote!(#f: #core::ndarray::Array::zeros(#d))
        });

        let loss = self.plan.loss.target;
        let loss_value = self.value(loss);
        let forward_fns = [self.forward_fn(&self.plan.loss), self.forward_outputs_fn()];
        let forward_loss = format_ident!("__forward_{}", loss);
        let backward_body = self.backward_body(false);
        let backward_sgd_body = self.backward_body(true);
        let (batch_struct, batch_methods) = self.batch(&cfgs);
        let input_params = self.input_params();
        let own_forward_loss = self.with_own_inputs(|v| quote!(self.#forward_loss(self.__fed, #v)));
        let own_backward = self.with_own_inputs(|v| quote!(self.__backward(#v)));
        let own_sgd = self.with_own_inputs(|v| quote!(self.__sgd(lr, self.__fed, #v)));
        let input_args = self.inputs().into_iter().map(|i| self.input_param(i));
        let input_args = quote!(#(#input_args),*);
        let spec = self.spec();
        let set_input = self.set_input();
        let set_param = self.set_param();
        let evaluate = self.evaluate();
        let value_arms = (0..self.model.nodes.len()).map(|i| {
            let (n, f) = (self.name(i), self.value(i));
            quote!(#n => ::core::result::Result::Ok(self.#f.view().into_dyn()))
        });
        let grad_arms = self.grads().into_iter().map(|i| {
            let (n, f) = (self.name(i), self.grad(i));
            quote!(#n => self.#f.view().into_dyn())
        });
        let grad_body = if self.grads().is_empty() {
            quote!(::core::result::Result::Err(#core::rt::no_grad(self.spec(), name)))
        } else {
            quote! {
                let grad = match name {
                    #(#grad_arms,)*
                    _ => return ::core::result::Result::Err(#core::rt::no_grad(self.spec(), name)),
                };
                if !self.__grads {
                    return ::core::result::Result::Err(#core::rt::stale_grad(name));
                }
                ::core::result::Result::Ok(grad)
            }
        };
        let visits = self.params().into_iter().enumerate().map(|(k, i)| {
            let (n, v, g) = (self.name(i), self.value(i), self.grad(i));
            quote!(f(#core::ParamMut {
                index: #k,
                name: #n,
                value: self.#v.view_mut().into_dyn(),
                grad: self.#g.view().into_dyn(),
            });)
        });
        let handles = (0..self.model.nodes.len()).map(|i| self.handle(i));
        let new_doc = format!(
            "Creates `{name}` ready to train: params drawn by `miniflow::init::Init::Default` \
             (per use: `U(±1/sqrt(fan_in))` for weights, He for weights feeding `relu`, biases \
             zero) from the fixed seed `miniflow::init::DEFAULT_SEED`, so every `new()` is the \
             same network. No input is fed."
        );
        let seeded_doc =
            format!("Creates `{name}` with params drawn as by [`{name}::new`], from `seed`.");
        let zeroed_doc = format!(
            "Creates `{name}` with every param zero (it cannot learn until its params are set \
             or initialised: see `miniflow::init`)."
        );

        quote! {
            #(#attrs)*
            #[allow(non_snake_case)]
            #vis struct #name {
                __fed: [bool; #n_inputs],
                __fresh: bool,
                __grads: bool,
                __check: bool,
                #(#value_fields,)*
                #(#grad_fields,)*
            }

            #batch_struct

            // The impls in a block of their own, where `__mf_core` names `miniflow-core`:
            // the path repeats in every kernel call, and a short one keeps the expansion small.
            #(#cfgs)*
            const _: () = {
            use #CORE as __mf_core;

            #[allow(non_snake_case, non_upper_case_globals, unused_variables, deprecated, clippy::all)]
            impl #name {
                #(#handles)*
                #batch_methods

                #[doc = #new_doc]
                pub fn new() -> Self {
                    Self::seeded(#core::init::DEFAULT_SEED)
                }

                #[doc = #seeded_doc]
                pub fn seeded(seed: u64) -> Self {
                    let mut net = Self::zeroed();
                    #core::init::default(&mut net, seed);
                    net
                }

                #[doc = #zeroed_doc]
                pub fn zeroed() -> Self {
                    #name {
                        __fed: [false; #n_inputs],
                        __fresh: false,
                        __grads: false,
                        __check: false,
                        #(#value_inits,)*
                        #(#grad_inits,)*
                    }
                }

                #(#forward_fns)*

                /// The loss's forward on the fed inputs.
                fn __forward_own(&mut self) -> #core::Result<()> {
                    #own_forward_loss
                }

                fn __backward(&mut self, #input_params) -> #core::Result<()> {
                    #backward_body
                    ::core::result::Result::Ok(())
                }

                /// A training step on input views (the fed buffers, or a borrowed batch);
                /// returns the loss. Fused, or in check mode every gradient and every updated
                /// value checked before any write.
                fn __sgd(&mut self, lr: #elem, fed: [bool; #n_inputs], #input_params) -> #core::Result<#elem> {
                    self.#forward_loss(fed, #input_args)?;
                    let loss = self.#loss_value[()];
                    if self.__check {
                        self.__backward(#input_args)?;
                        #core::rt::sgd_checked(self, lr)?;
                    } else {
                        self.__backward_sgd(lr, #input_args)?;
                    }
                    ::core::result::Result::Ok(loss)
                }

                fn __backward_sgd(&mut self, lr: #elem, #input_params) -> #core::Result<()> {
                    #backward_sgd_body
                    ::core::result::Result::Ok(())
                }
            }

            #[allow(deprecated)]
            impl ::core::default::Default for #name {
                fn default() -> Self {
                    Self::new()
                }
            }

            #[allow(non_snake_case, deprecated, clippy::all)]
            impl #core::Network for #name {
                type Elem = #elem;

                fn spec(&self) -> &#core::NetworkSpec {
                    #spec
                }

                fn set_input(&mut self, name: &str, value: #core::ndarray::ArrayViewD<'_, #elem>) -> #core::Result<()> {
                    self.__feed_view(name, value)
                }

                fn __feed_view<__MfD: #core::ndarray::Dimension>(&mut self, name: &str, value: #core::ndarray::ArrayView<'_, #elem, __MfD>) -> #core::Result<()> {
                    #set_input
                }

                fn set_param(&mut self, name: &str, value: #core::ndarray::ArrayViewD<'_, #elem>) -> #core::Result<()> {
                    #set_param
                }

                fn forward(&mut self) -> #core::Result<#elem> {
                    self.__grads = false;
                    self.__forward_own()?;
                    self.__fresh = true;
                    ::core::result::Result::Ok(self.#loss_value[()])
                }

                fn backward(&mut self) -> #core::Result<()> {
                    if !self.__fresh {
                        return ::core::result::Result::Err(#core::Error::BackwardBeforeForward);
                    }
                    self.__grads = false;
                    #own_backward?;
                    self.__grads = true;
                    ::core::result::Result::Ok(())
                }

                fn set_check_finite(&mut self, on: bool) {
                    self.__check = on;
                }

                fn sgd_step(&mut self, lr: #elem) -> #core::Result<#elem> {
                    #core::rt::check_lr(lr)?;
                    self.__grads = false;
                    self.__fresh = false;
                    #own_sgd
                }

                fn evaluate_dyn(&mut self, name: &str) -> #core::Result<#core::ndarray::ArrayViewD<'_, #elem>> {
                    #evaluate
                }

                fn value_dyn(&self, name: &str) -> #core::Result<#core::ndarray::ArrayViewD<'_, #elem>> {
                    match name {
                        #(#value_arms,)*
                        _ => ::core::result::Result::Err(#core::rt::wrong_kind(self.spec(), name, "a node")),
                    }
                }

                fn grad_dyn(&self, name: &str) -> #core::Result<#core::ndarray::ArrayViewD<'_, #elem>> {
                    #grad_body
                }

                fn visit_params(&mut self, f: &mut dyn ::core::ops::FnMut(#core::ParamMut<'_, #elem>)) {
                    let _ = &f; // a network without params never calls it
                    self.__fresh = false;
                    #(#visits)*
                }
            }
            };
        }
    }

    /// `<Net>Batch<'a>`, one borrowed view per input, and the methods that run on it in place
    /// (`sgd_step_on`, `loss_on`). None for a network without inputs.
    fn batch(&self, cfgs: &[&syn::Attribute]) -> (TokenStream, TokenStream) {
        let inputs = self.inputs();
        if inputs.is_empty() {
            return (TokenStream::new(), TokenStream::new());
        }
        let (core, elem) = (&self.core, &self.elem);
        let NetworkDef { vis, name, .. } = self.def;
        let net = name.unraw().to_string();
        let ty = format_ident!("{}Batch", name.unraw(), span = name.span());
        let fields: Vec<&Ident> = inputs.iter().map(|&i| &self.model.nodes[i].name).collect();
        let field_defs = inputs.iter().map(|&i| {
            let f = &self.model.nodes[i].name;
            let ix = format_ident!("Ix{}", self.shapes[i].len());
            let doc = format!(
                "Input `{}` {}.",
                self.name(i),
                miniflow_ops::format_shape(&self.shapes[i])
            );
            quote! {
                #[doc = #doc]
                #vis #f: #CORE::ndarray::ArrayView<'a, #elem, #CORE::ndarray::#ix>
            }
        });
        let struct_doc = format!(
            "A batch for [`{net}::sgd_step_on`] and [`{net}::loss_on`]: a borrowed view of \
             each input of `{net}`, read in place (nothing is copied into the network). \
             Every field must be given: the compiler checks the names and ranks, the step \
             checks the sizes."
        );
        let checks = inputs.iter().map(|&i| {
            let (f, n, decl) = (&self.model.nodes[i].name, self.name(i), self.dim_specs(i));
            quote!(#core::rt::check_shape(&batch.#f, #n, #decl)?;)
        });
        let checks = quote!(#(#checks)*);
        let n = inputs.len();
        let forward = format_ident!("__forward_{}", self.plan.loss.target);
        let loss = self.value(self.plan.loss.target);
        let views = quote!(#(batch.#fields),*);
        let step_doc =
            "One SGD step on `batch`, read where it lies: as [`Network::sgd_step`] after \
             feeding each input, without copying the batch into the network. Returns the \
             loss before the update.\n\n\
             The network's own input buffers are neither read nor changed, so inputs fed \
             earlier stay fed; values and gradients afterwards are those of `batch`, and \
             [`Network::backward`] needs a forward first. Views of any memory layout are \
             accepted (a contiguous one takes the fastest kernels). In check mode every \
             value, gradient and update is checked first, as in `sgd_step`.\n\n\
             [`Network::sgd_step`]: ::miniflow::Network::sgd_step\n\
             [`Network::backward`]: ::miniflow::Network::backward\n\n\
             # Errors\n\n\
             As `feed` and `sgd_step`: a size that does not match an input's declaration, \
             named dims that disagree between inputs, a learning rate that is not finite; \
             on `Err`, no param has changed.";
        let loss_doc =
            "The loss on `batch`, read where it lies: as [`Network::forward`] after feeding \
             each input, without copying the batch. Values afterwards are those of `batch`; \
             [`Network::backward`] needs a forward first.\n\n\
             [`Network::forward`]: ::miniflow::Network::forward\n\
             [`Network::backward`]: ::miniflow::Network::backward";
        let def = quote! {
            #(#cfgs)*
            #[doc = #struct_doc]
            #[allow(non_snake_case)]
            #[derive(Clone, Copy, Debug)]
            #vis struct #ty<'a> {
                #(#field_defs,)*
            }
        };
        let methods = quote! {
            #[doc = #step_doc]
            pub fn sgd_step_on(&mut self, batch: #ty<'_>, lr: #elem) -> #core::Result<#elem> {
                #core::rt::check_lr(lr)?;
                #checks
                self.__fresh = false;
                self.__grads = false;
                self.__sgd(lr, [true; #n], #views)
            }

            #[doc = #loss_doc]
            pub fn loss_on(&mut self, batch: #ty<'_>) -> #core::Result<#elem> {
                #checks
                self.__fresh = false;
                self.__grads = false;
                self.#forward([true; #n], #views)?;
                ::core::result::Result::Ok(self.#loss[()])
            }
        };
        (def, methods)
    }

    /// The typed handle of node `i`: `pub const X: Handle<Net, kind::Input, Ix2>`.
    fn handle(&self, i: usize) -> TokenStream {
        let core = &self.core;
        let node = &self.model.nodes[i];
        let (ident, name) = (&node.name, self.name(i));
        let net = &self.def.name;
        let vis = &self.def.vis;
        let (kind, what) = match &node.kind {
            Kind::Leaf(LeafKind::Input { .. }) => ("Input", "input: fed with `feed`"),
            Kind::Leaf(LeafKind::Param) => ("Param", "param: set with `set`, trained"),
            Kind::Op { .. } if i == self.plan.loss.target => ("Output", "the loss"),
            Kind::Op { .. } if self.model.outputs.contains(&i) => {
                ("Output", "output: computed on its own with `evaluate`")
            }
            Kind::Op { .. } => ("Computed", "computed node: read with `value` and `grad`"),
        };
        let kind = Ident::new(kind, Span::call_site());
        let ix = format_ident!("Ix{}", self.shapes[i].len());
        let shape = miniflow_ops::format_shape(&self.shapes[i]);
        let mut doc = format!("`{name}` {shape}, {what}.");
        let own = self.def.stmts[i].doc();
        if !own.is_empty() {
            doc = format!("{own}\n\n{doc}");
        }
        quote! {
            #[doc = #doc]
            #vis const #ident: #core::Handle<#net, #core::kind::#kind, #core::ndarray::#ix> =
                #core::Handle::new_unchecked(#name);
        }
    }

    /// `__forward_<target>`: check feeds (`fed`), bind named dims, size buffers, run the
    /// kernels.
    fn forward_fn(&self, f: &Forward) -> TokenStream {
        let core = &self.core;
        let fn_name = format_ident!("__forward_{}", f.target);
        let target = self.name(f.target);
        let slot = self.input_slots();
        let fed_checks = f.inputs.iter().map(|&i| {
            let k = slot[i];
            let n = self.name(i);
            quote! {
                if !fed[#k] {
                    return ::core::result::Result::Err(#core::rt::missing(#n, #target));
                }
            }
        });
        let n_dims = self.dims.len();
        let dims = Ident::new("__dims", Span::call_site());
        let binds = f.inputs.iter().flat_map(|&i| {
            let (v, n) = (self.read(i), self.name(i));
            self.shapes[i]
                .iter()
                .enumerate()
                .filter_map(move |(axis, d)| match d {
                    SymDim::Named(dim) => Some((axis, dim.clone(), v.clone(), n.clone())),
                    SymDim::Fixed(_) => None,
                })
                .map(|(axis, dim, v, n)| {
                    let k = self.dim_index(&dim);
                    quote!(__binder.bind(#k, #dim, #v.shape()[#axis], #n)?;)
                })
        });
        let sizes = f.ops.iter().map(|&i| {
            let (v, d) = (self.value(i), self.dim_expr(i, Some(&dims)));
            quote!(#core::rt::ensure(&mut self.#v, #d);)
        });
        let calls = f.ops.iter().map(|&i| {
            let (call, v, n) = (self.forward_call(i), self.value(i), self.name(i));
            quote! {
                #call
                if self.__check {
                    #core::rt::check_finite(self.#v.view(), #n, "forward")?;
                }
            }
        });
        // Check mode names a non-finite leaf (input or param) itself, before any op reads it.
        let mut leaves: Vec<usize> = f
            .ops
            .iter()
            .flat_map(|&i| self.model.nodes[i].args().to_vec())
            .filter(|&a| self.model.nodes[a].args().is_empty())
            .collect();
        leaves.sort_unstable();
        leaves.dedup();
        let input_checks = leaves.into_iter().map(|i| {
            let (v, n) = (self.read(i), self.name(i));
            quote!(#core::rt::check_finite_leaf(#v.view(), #n)?;)
        });
        let n_inputs = self.inputs().len();
        let params = self.input_params();
        quote! {
            fn #fn_name(&mut self, fed: [bool; #n_inputs], #params) -> #core::Result<()> {
                if self.__check {
                    #(#input_checks)*
                }
                #(#fed_checks)*
                let mut __binder = <#core::rt::Binder<#n_dims> as ::core::default::Default>::default();
                #(#binds)*
                let #dims = __binder.dims();
                let _ = #dims;
                #(#sizes)*
                #(#calls)*
                ::core::result::Result::Ok(())
            }
        }
    }

    /// Each input's position among the inputs (its slot in `__fed`), by node index.
    fn input_slots(&self) -> Vec<usize> {
        let mut slot = vec![0; self.model.nodes.len()];
        for (k, i) in self.inputs().into_iter().enumerate() {
            slot[i] = k;
        }
        slot
    }

    /// `__forward_output(target)`: computes any output from the inputs it needs. One function
    /// for every output, each op guarded by a needed-set walked at run time from the target,
    /// so the code grows with the nodes, not with nodes × outputs. (The loss, computed every
    /// step, keeps its own straight-line function.)
    fn forward_outputs_fn(&self) -> TokenStream {
        if self.plan.outputs.is_empty() {
            return TokenStream::new();
        }
        let core = &self.core;
        let n = self.model.nodes.len();
        let need = Ident::new("__need", Span::call_site());
        let names = (0..n).map(|i| self.name(i));
        let args = (0..n).map(|i| {
            let a = self.model.nodes[i].args();
            quote!(&[#(#a),*])
        });
        let reverse = self.plan.order.iter().rev();
        let leaves: Vec<usize> = (0..n)
            .filter(|&i| self.model.nodes[i].args().is_empty())
            .collect();
        let leaf_checks = leaves.iter().map(|&i| {
            let (v, name) = (self.read(i), self.name(i));
            quote!(if #need[#i] { #core::rt::check_finite_leaf(#v.view(), #name)?; })
        });
        let slot = self.input_slots();
        let fed_checks = self.inputs().into_iter().map(|i| {
            let (k, name) = (slot[i], self.name(i));
            quote! {
                if #need[#i] && !fed[#k] {
                    return ::core::result::Result::Err(#core::rt::missing(#name, __NAMES[__target]));
                }
            }
        });
        let n_dims = self.dims.len();
        let dims = Ident::new("__dims", Span::call_site());
        let mut binds = Vec::new();
        for i in self.inputs() {
            let (v, name) = (self.read(i), self.name(i));
            for (axis, d) in self.shapes[i].iter().enumerate() {
                if let SymDim::Named(dim) = d {
                    let k = self.dim_index(dim);
                    binds.push(quote!(if #need[#i] { __binder.bind(#k, #dim, #v.shape()[#axis], #name)?; }));
                }
            }
        }
        let ops = self
            .plan
            .order
            .iter()
            .filter(|&&i| !self.model.nodes[i].args().is_empty())
            .map(|&i| {
                let (v, d, name) = (self.value(i), self.dim_expr(i, Some(&dims)), self.name(i));
                let call = self.forward_call(i);
                quote! {
                    if #need[#i] {
                        #core::rt::ensure(&mut self.#v, #d);
                        #call
                        if self.__check {
                            #core::rt::check_finite(self.#v.view(), #name, "forward")?;
                        }
                    }
                }
            });
        let n_inputs = self.inputs().len();
        let params = self.input_params();
        let own = self.with_own_inputs(|v| quote!(self.__forward_output(__target, self.__fed, #v)));
        quote! {
            fn __forward_output_own(&mut self, __target: usize) -> #core::Result<()> {
                #own
            }

            fn __forward_output(&mut self, __target: usize, fed: [bool; #n_inputs], #params) -> #core::Result<()> {
                static __NAMES: [&str; #n] = [#(#names),*];
                static __ARGS: [&[usize]; #n] = [#(#args),*];
                let mut #need = [false; #n];
                #need[__target] = true;
                for &__k in &[#(#reverse),*] {
                    if #need[__k] {
                        for &__a in __ARGS[__k] {
                            #need[__a] = true;
                        }
                    }
                }
                if self.__check {
                    #(#leaf_checks)*
                }
                #(#fed_checks)*
                let mut __binder = <#core::rt::Binder<#n_dims> as ::core::default::Default>::default();
                #(#binds)*
                let #dims = __binder.dims();
                let _ = #dims;
                #(#ops)*
                ::core::result::Result::Ok(())
            }
        }
    }

    /// The node's arguments and literals (none for a leaf).
    fn operands_of(&self, i: usize) -> (&[usize], &[f64]) {
        match &self.model.nodes[i].kind {
            Kind::Op { args, attrs, .. } => (args, attrs),
            Kind::Leaf(_) => (&[], &[]),
        }
    }

    /// The kernel call computing node `i`.
    fn forward_call(&self, i: usize) -> TokenStream {
        match &self.model.nodes[i].kind {
            Kind::Op { op, .. } => self.kernel_call(i, &op.forward_kernel(), None, None),
            Kind::Leaf(_) => TokenStream::new(),
        }
    }

    /// A call of `call` (an op-table or rule template) for node `i`, with `dx` as its
    /// [`Operand::Dx`] and `inner` the node its [`Operand::Inner`] names. Never panics: an
    /// operand the template names but the node lacks (a table bug) becomes a `compile_error!`.
    fn kernel_call(
        &self,
        i: usize,
        call: &KernelCall,
        dx: Option<&TokenStream>,
        inner: Option<usize>,
    ) -> TokenStream {
        let (core, elem) = (&self.core, &self.elem);
        let (args, attrs) = self.operands_of(i);
        let (value, grad) = (self.value(i), self.grad(i));
        let broken = |what: &str| {
            let msg = format!(
                "internal error in miniflow's op table: `{}` names {what}",
                call.path
            );
            quote!(::core::compile_error!(#msg))
        };
        let operands = call.operands.iter().map(|operand| match *operand {
            Operand::Arg(k) => match args.get(k) {
                Some(&a) => {
                    let v = self.read(a);
                    quote!(#v.view())
                }
                None => broken("a missing argument"),
            },
            Operand::Args => {
                let vs = args.iter().map(|&a| self.read(a));
                quote!(&[#(#vs.view()),*])
            }
            Operand::Literal(k) => match attrs.get(k) {
                Some(a) => quote!(<#elem as #core::Scalar>::from_f64(#a)),
                None => broken("a missing literal"),
            },
            Operand::Value => quote!(self.#value.view()),
            Operand::Out => quote!(self.#value.view_mut()),
            Operand::Grad => quote!(self.#grad.view()),
            Operand::GradScalar => quote!(self.#grad[()]),
            Operand::Dx => match dx {
                Some(dx) => dx.clone(),
                None => broken("a gradient output in a forward call"),
            },
            Operand::Inner => match inner {
                Some(n) => {
                    let v = self.read(n);
                    quote!(#v.view())
                }
                None => broken("a fused node in a call that fuses none"),
            },
        });
        let path = call
            .path
            .split("::")
            .map(|part| Ident::new(part, Span::call_site()));
        let invoke = quote!(#core::ops::#(#path)::*(#(#operands),*));
        // The argument names for a kernel's error, built only for kernels that can fail (a
        // variadic op's list per call would make the expansion quadratic in its arity).
        let fail = || {
            let node = self.name(i);
            let names = args.iter().map(|&a| self.name(a));
            quote!(.map_err(|e| e.into_error(#node, &[#(#names),*]))?)
        };
        match call.returns {
            Returns::Unit => quote!(#invoke;),
            Returns::Scalar => quote!(self.#value[()] = #invoke;),
            Returns::Fallible => {
                let fail = fail();
                quote!(#invoke #fail;)
            }
            Returns::FallibleScalar => {
                let fail = fail();
                quote!(self.#value[()] = #invoke #fail;)
            }
        }
    }

    /// A backward pass: `backward`'s schedule, or with `sgd` the training step's (a local `lr`
    /// in scope), where params the plan updates in place get their contributions straight
    /// into their value and the rest `value -= lr·grad` at the end.
    fn backward_body(&self, sgd: bool) -> TokenStream {
        let core = &self.core;
        let loss = self.plan.loss.target;
        let schedule = if sgd {
            &self.plan.training
        } else {
            &self.plan.backward
        };
        if !schedule.grads[loss] {
            return if sgd {
                quote!(let _ = (&self, lr);)
            } else {
                quote!(let _ = &self;)
            };
        }
        // Params' gradient buffers have fixed shapes from `new`; the rest follow their values.
        // Both passes size every buffer, so switching between them never allocates.
        let sizes = self
            .grads()
            .into_iter()
            .filter(|&i| !self.model.nodes[i].is_param())
            .map(|i| {
                let (g, v) = (self.grad(i), self.read(i));
                quote!(#core::rt::ensure(&mut self.#g, #v.raw_dim());)
            });
        let zeroed = schedule.zeroed.iter().map(|&i| {
            let g = self.grad(i);
            quote!(self.#g.fill(0.0);)
        });
        let seed = self.grad(loss);
        let steps = &schedule.steps;
        // In check mode, a gradient is checked once complete: after its last contribution.
        let mut last_of = vec![usize::MAX; self.model.nodes.len()];
        for (k, step) in steps.iter().enumerate() {
            last_of[step.target] = k;
        }
        let calls = steps.iter().enumerate().map(|(k, step)| {
            let call = self.backward_call(step);
            if last_of[step.target] != k {
                return call;
            }
            let n = self.name(step.target);
            let buf = match step.sink {
                Sink::Update => self.value(step.target),
                Sink::Write | Sink::Add => self.grad(step.target),
            };
            quote! {
                #call
                if self.__check {
                    #core::rt::check_finite(self.#buf.view(), #n, "backward")?;
                }
            }
        });
        let updates = schedule.update_after.iter().map(|&p| {
            let (v, g) = (self.value(p), self.grad(p));
            quote!(#core::optim::sgd_update(self.#v.view_mut(), self.#g.view(), lr);)
        });
        quote! {
            #(#sizes)*
            #(#zeroed)*
            self.#seed.fill(1.0);
            #(#calls)*
            #(#updates)*
        }
    }

    /// The kernel call making `step`'s contribution, into the buffer its sink names.
    fn backward_call(&self, step: &Step) -> TokenStream {
        let core = &self.core;
        let d = match step.sink {
            Sink::Write => {
                let g = self.grad(step.target);
                quote!(#core::ops::GradOut::write(self.#g.view_mut()))
            }
            Sink::Add => {
                let g = self.grad(step.target);
                quote!(#core::ops::GradOut::add(self.#g.view_mut()))
            }
            Sink::Update => {
                let v = self.value(step.target);
                quote!(#core::ops::GradOut::add_scaled(self.#v.view_mut(), -lr))
            }
        };
        self.kernel_call(step.node, &step.kernel, Some(&d), step.fused)
    }

    fn spec(&self) -> TokenStream {
        let core = &self.core;
        let nodes = self.plan.order.iter().map(|&i| {
            let node = &self.model.nodes[i];
            let n = self.name(i);
            let kind = match &node.kind {
                Kind::Leaf(LeafKind::Input { grad }) => quote!(#core::NodeKind::Input { grad: #grad }),
                Kind::Leaf(LeafKind::Param) => quote!(#core::NodeKind::Param),
                Kind::Op { op, .. } => {
                    let v = Ident::new(&format!("{op:?}"), Span::call_site());
                    quote!(#core::NodeKind::Op(#core::Op::#v))
                }
            };
            let shape = self.dim_specs(i);
            let args = node.args().iter().map(|&a| self.name(a));
            let attrs = self.operands_of(i).1;
            let doc = self.def.stmts[i].doc();
            quote!(#core::NodeSpec { name: __mf_b(#n), kind: #kind, shape: ::core::option::Option::Some(__mf_b(#shape)), args: __mf_b(&[#(__mf_b(#args)),*]), attrs: __mf_b(&[#(#attrs),*]), doc: __mf_b(#doc) })
        });
        let name = self.def.name.unraw().to_string();
        let loss = self.name(self.plan.loss.target);
        let outputs = self.plan.outputs.iter().map(|f| self.name(f.target));
        // Everything borrowed from the static: `Cow::Borrowed`, under a short name.
        quote! {
            use #core::rt::Cow::Borrowed as __mf_b;
            static SPEC: #core::NetworkSpec = #core::NetworkSpec {
                name: __mf_b(#name),
                nodes: __mf_b(&[#(#nodes),*]),
                loss: __mf_b(#loss),
                outputs: __mf_b(&[#(__mf_b(#outputs)),*]),
            };
            &SPEC
        }
    }

    fn set_input(&self) -> TokenStream {
        let core = &self.core;
        let arms = self.inputs().into_iter().enumerate().map(|(k, i)| {
            let (n, v, decl) = (self.name(i), self.value(i), self.dim_specs(i));
            quote!(#n => {
                #core::rt::load(&mut self.#v, value, #n, #decl)?;
                self.__fed[#k] = true;
                self.__fresh = false;
                self.__grads = false;
                ::core::result::Result::Ok(())
            })
        });
        quote! {
            match name {
                #(#arms)*
                _ => ::core::result::Result::Err(#core::rt::wrong_kind(self.spec(), name, "an input")),
            }
        }
    }

    fn set_param(&self) -> TokenStream {
        let core = &self.core;
        let arms = self.params().into_iter().map(|i| {
            let (n, v, decl) = (self.name(i), self.value(i), self.dim_specs(i));
            quote!(#n => {
                #core::rt::load(&mut self.#v, value, #n, #decl)?;
                self.__fresh = false;
                self.__grads = false;
                ::core::result::Result::Ok(())
            })
        });
        quote! {
            match name {
                #(#arms)*
                _ => ::core::result::Result::Err(#core::rt::wrong_kind(self.spec(), name, "a param")),
            }
        }
    }

    fn evaluate(&self) -> TokenStream {
        let core = &self.core;
        let loss = self.plan.loss.target;
        let (ln, lv) = (self.name(loss), self.value(loss));
        let arms = self.plan.outputs.iter().map(|f| {
            let (n, v, t) = (self.name(f.target), self.value(f.target), f.target);
            quote!(#n => {
                self.__forward_output_own(#t)?;
                ::core::result::Result::Ok(self.#v.view().into_dyn())
            })
        });
        quote! {
            match name {
                #(#arms)*
                #ln => {
                    self.__forward_own()?;
                    self.__fresh = true;
                    ::core::result::Result::Ok(self.#lv.view().into_dyn())
                }
                _ => ::core::result::Result::Err(#core::rt::wrong_kind(self.spec(), name, "an output or the loss")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn expand_str(tokens: TokenStream) -> String {
        crate::network(tokens).to_string()
    }

    #[test]
    fn emits_straight_line_kernel_calls_in_order() {
        let out = expand_str(quote! { pub struct Course {
            #[grad] input X: [batch, 2]; #[grad] input y: [batch]; param W: [2, 1]; param b: [1];
            loss cost = mse(y, a); a = sigmoid(f); f = linear(X, W, b);
        }});
        let f = out.find("ops :: linear :: forward").unwrap();
        let a = out.find("ops :: sigmoid :: forward").unwrap();
        let c = out.find("ops :: mse :: forward").unwrap();
        assert!(f < a && a < c, "forward calls in planned order");
        let mse_b = out.find("ops :: mse :: backward").unwrap();
        let sig_b = out.find("ops :: sigmoid :: backward").unwrap();
        let lin_b = out.find("ops :: linear :: backward").unwrap();
        assert!(mse_b < sig_b && sig_b < lin_b, "backward in reverse order");
        assert!(
            !out.contains("HashMap") && !out.contains("sort"),
            "no run-time graph walk"
        );
    }

    #[test]
    fn skips_gradients_nobody_needs() {
        let out = expand_str(quote! { struct N {
            input X: [batch, 2]; input y: [batch]; param W: [2, 1]; param b: [1];
            f = linear(X, W, b); loss cost = mse(y, f);
        }});
        assert!(
            !out.contains("g_X"),
            "no gradient buffer for an input without #[grad]"
        );
        assert!(!out.contains("g_y"));
        assert!(
            !out.contains("linear :: backward_x"),
            "no dX for an input without #[grad]"
        );
        assert!(out.contains("linear :: backward_w") && out.contains("linear :: backward_b"));
    }

    #[test]
    fn literals_labels_and_fallible_kernels() {
        let out = expand_str(quote! { struct N {
            input x: [n, 2]; input t: [n]; param w: [2, 3];
            z = matmul(x, w); h = leaky_relu(z, -0.25);
            loss l = softmax_cross_entropy(h, t);
        }});
        // The literal is converted to the element type at the call, and kept in the spec.
        assert!(
            out.contains("ops :: leaky_relu :: forward (self . v_z . view () , < f64 as __mf_core :: Scalar > :: from_f64 (- 0.25f64) , self . v_h . view_mut ())"),
            "{out}"
        );
        assert!(out.contains("attrs : __mf_b (& [- 0.25f64])"), "{out}");
        // A fallible kernel's error names the node and its arguments.
        assert!(
            out.contains(
                ". map_err (| __mf_e | __mf_e . into_error (\"l\" , & [\"h\" , \"t\"])) ?"
            ),
            "{out}"
        );
        // The labels get no gradient buffer and no contribution.
        assert!(!out.contains("g_t"), "{out}");
    }

    #[test]
    fn hygiene_keeps_field_names_whatever_their_type() {
        // A field typed by an absolute path (`fed: ::a::B`) is a field, not a path `fed::`.
        let out = hygienic(quote!(
            struct S {
                fed: ::a::B,
                lr: f64,
            }
            fn f(fed: u8) {
                fed::g();
            }
        ))
        .to_string();
        assert!(out.contains("{ fed : :: a :: B , lr : f64"), "{out}");
        assert!(out.contains("fn f (__mf_fed : u8)"), "{out}");
        assert!(out.contains("__mf_fed :: g"), "{out}");
    }

    #[test]
    fn errors_become_compile_errors() {
        let out = expand_str(quote! { struct N { input x: [n]; loss l = sigmod(x); } });
        assert!(out.starts_with(":: core :: compile_error !"), "{out}");
    }
}
