//! Macro robustness: `miniflow_codegen::network` on random and mutated token streams never
//! panics, and always returns either code (a struct and its impls, no `compile_error!`) or
//! only `compile_error!` invocations, each with a non-empty message. Expanding the same input
//! twice gives the same tokens.
//!
//! Seeds: the valid and invalid networks of `tests-ui/tests/ui/*.rs`, `tests/suite/`,
//! `tests/common/`, `examples/` and `benches/` (every `network! { ... }` body in them), a few
//! inline ones, and random valid networks over the whole op table from
//! `tests-gen/src/netgen.rs`. Each case applies one to four mutations to a seed (drop,
//! duplicate, swap, insert or replace tokens; idents to keywords, op names or other names;
//! literals to 0, huge, negative, float, suffixed or string; truncation; changed or removed
//! delimiters; splices from another seed), or is a stream of random tokens.
//!
//! `fuzz_short` runs 10,000 cases (a few seconds); `MINIFLOW_FUZZ_CASES=N` changes that, and
//! `MINIFLOW_FUZZ_SEED` the seed. `fuzz_long` (ignored) runs 200,000:
//! `cargo test -p miniflow-codegen --test robustness -- --ignored --nocapture`.
//! A panic is minimized (tokens deleted while it still panics) and reported with its input.

#[path = "../../tests-gen/src/netgen.rs"]
mod netgen;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Instant;

// ---------------------------------------------------------------------------------------
// A token tree we can edit, rendered back to text and re-lexed.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Tok {
    Group(Delimiter, Vec<Tok>),
    Ident(String),
    Punct(char, Spacing),
    Lit(String),
}

fn from_stream(ts: TokenStream) -> Vec<Tok> {
    ts.into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => Tok::Group(g.delimiter(), from_stream(g.stream())),
            TokenTree::Ident(i) => Tok::Ident(i.to_string()),
            TokenTree::Punct(p) => Tok::Punct(p.as_char(), p.spacing()),
            TokenTree::Literal(l) => Tok::Lit(l.to_string()),
        })
        .collect()
}

fn render(toks: &[Tok], out: &mut String) {
    for t in toks {
        match t {
            Tok::Group(d, inner) => {
                let (open, close) = match d {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                render(inner, out);
                out.push_str(close);
                out.push(' ');
            }
            Tok::Ident(s) | Tok::Lit(s) => {
                out.push_str(s);
                out.push(' ');
            }
            Tok::Punct(c, spacing) => {
                out.push(*c);
                if *spacing == Spacing::Alone {
                    out.push(' ');
                }
            }
        }
    }
}

fn to_text(toks: &[Tok]) -> String {
    let mut s = String::new();
    render(toks, &mut s);
    s
}

// ---------------------------------------------------------------------------------------
// Seeds.
// ---------------------------------------------------------------------------------------

/// The body of every `network! { ... }` in `ts`.
fn network_bodies(ts: TokenStream, out: &mut Vec<TokenStream>) {
    let tts: Vec<TokenTree> = ts.into_iter().collect();
    for (i, tt) in tts.iter().enumerate() {
        if let TokenTree::Group(g) = tt {
            let is_call = i >= 2
                && matches!(&tts[i - 2], TokenTree::Ident(id) if id == "network")
                && matches!(&tts[i - 1], TokenTree::Punct(p) if p.as_char() == '!');
            if is_call {
                out.push(g.stream());
            } else {
                network_bodies(g.stream(), out);
            }
        }
    }
}

const INLINE_SEEDS: &[&str] = &[
    "pub struct Course { #[grad] input X: [batch, 2]; #[grad] input y: [batch]; param W: [2, 1]; \
     param b: [1]; f = linear(X, W, b); output a = sigmoid(f); loss cost = mse(y, a); }",
    "/// Docs.\n#[elem(f32)] struct N { input x: [n, 3]; param w: [3, 2]; param b: [2]; \
     h = linear(x, w, b); r = relu(h); s = leaky_relu(h, 0.01); t = add(r, s, r); loss l = mean(t); }",
    "struct C { input x: [batch, 4]; /// labels\n input y: [batch]; param w: [4, 3]; param b: [3]; \
     z = linear(x, w, b); p = softmax(z); loss l = softmax_cross_entropy(z, y); output q = sum(p); }",
    "struct B { input x: [2]; input y: [2]; a = sigmoid(x); loss l = bce(y, a); }",
    "struct D { input x: [k, 2]; param w: [2, 2]; m = matmul(x, w); d = sub(m, x); e = mul(d, d); \
     t = tanh(e); loss l = bce_logits(x, t); }",
    "struct E {}",
    "struct F { loss = sigmoid(x); input x: []; }",
];

fn seeds() -> Vec<Vec<Tok>> {
    let mut bodies: Vec<TokenStream> = INLINE_SEEDS
        .iter()
        .map(|s| s.parse().expect("inline seeds lex"))
        .collect();
    // The workspace's own networks, valid and invalid. Every folder must exist and hold some:
    // a folder moved without updating this list would otherwise drop its seeds silently.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in [
        "tests-ui/tests/ui",
        "tests/suite",
        "tests/common",
        "examples",
        "benches",
    ] {
        let entries =
            std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("seed folder {dir}: {e}"));
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        let before = bodies.len();
        for p in paths {
            if p.extension().is_some_and(|e| e == "rs") {
                if let Ok(text) = std::fs::read_to_string(&p) {
                    if let Ok(ts) = text.parse::<TokenStream>() {
                        network_bodies(ts, &mut bodies);
                    }
                }
            }
        }
        assert!(bodies.len() > before, "no `network!` seeds found in {dir}");
    }
    // Random valid networks over the whole op table.
    for seed in 0..200 {
        let mut rng = netgen::SplitMix(seed);
        let net = netgen::generate(
            &mut rng,
            netgen::Options {
                max_ops: 6,
                max_dim: 4,
                named_dims: true,
                dsl: true,
                motifs: seed % 2 == 1,
            },
        );
        let elem = (seed % 5 == 0).then_some("f32");
        if let Ok(ts) = net.to_dsl(&format!("R{seed}"), elem, "doc").parse() {
            bodies.push(ts);
        }
    }
    bodies.into_iter().map(from_stream).collect()
}

// ---------------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const IDENTS: &[&str] = &[
    // Rust keywords and reserved words (syn rejects most as identifiers).
    "struct",
    "fn",
    "self",
    "Self",
    "crate",
    "super",
    "impl",
    "let",
    "mut",
    "pub",
    "enum",
    "type",
    "where",
    "async",
    "dyn",
    "match",
    "loop",
    "r#type",
    "r#loss",
    "_",
    "abstract",
    "union",
    "macro_rules",
    // The DSL's words.
    "input",
    "param",
    "loss",
    "output",
    "grad",
    "elem",
    "doc",
    "batch",
    "f32",
    "f64",
    "i32",
    // Names generated code uses or could clash with.
    "new",
    "spec",
    "value",
    "grad",
    "lr",
    "name",
    "f",
    "v_x",
    "g_x",
    "__fed",
    "__fresh",
    "__dims",
    "__binder",
    "Network",
    "core",
    "miniflow",
    "ndarray",
    "Ok",
    "Err",
    "None",
    // Typos of ops and other names.
    "sigmod",
    "linr",
    "softmaxx",
    "relu6",
    "x",
    "y",
    "W",
    "b",
    "ñame",
    "x0",
    "_x",
    "a_very_long_name_that_goes_on_and_on_and_on_and_on_and_on_and_on",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "7",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "99999999999999999999999999999",
    "4294967296",
    "1.5",
    "0.0",
    "1e3",
    "1e400",
    "1e-400",
    "2usize",
    "3u8",
    "4i32",
    "2f64",
    "0x10",
    "0b11",
    "1_000",
    "\"str\"",
    "\"\"",
    "'c'",
    "b\"x\"",
    "b'x'",
    "r\"raw\"",
    "0.01",
    "1e-3",
    "255u8",
    "256u8",
    "-0",
];

const PUNCTS: &[char] = &[
    ';', ',', ':', '=', '#', '!', '-', '+', '*', '/', '.', '<', '>', '&', '@', '?', '\'',
];

fn random_token(r: &mut Rng, ops: &[&'static str]) -> Tok {
    match r.below(10) {
        0..=2 => Tok::Ident((*r.pick(IDENTS)).to_string()),
        3 => Tok::Ident((*r.pick(ops)).to_string()),
        4 | 5 => Tok::Lit((*r.pick(LITERALS)).to_string()),
        6..=8 => Tok::Punct(*r.pick(PUNCTS), Spacing::Alone),
        _ => {
            let d = *r.pick(&[Delimiter::Parenthesis, Delimiter::Brace, Delimiter::Bracket]);
            let inner = (0..r.below(3)).map(|_| random_token(r, ops)).collect();
            Tok::Group(d, inner)
        }
    }
}

/// The number of token positions (groups count as one, plus their contents).
fn count(toks: &[Tok]) -> usize {
    toks.iter()
        .map(|t| match t {
            Tok::Group(_, inner) => 1 + count(inner),
            _ => 1,
        })
        .sum()
}

/// The token list holding position `pos` (in pre-order), and the index in it.
fn locate(toks: &mut Vec<Tok>, mut pos: usize) -> Option<(&mut Vec<Tok>, usize)> {
    let mut i = 0;
    while i < toks.len() {
        if pos == 0 {
            return Some((toks, i));
        }
        pos -= 1;
        let n = match &toks[i] {
            Tok::Group(_, inner) => count(inner),
            _ => 0,
        };
        if pos < n {
            return match &mut toks[i] {
                Tok::Group(_, inner) => locate(inner, pos),
                _ => None,
            };
        }
        pos -= n;
        i += 1;
    }
    None
}

fn mutate(toks: &mut Vec<Tok>, r: &mut Rng, ops: &[&'static str], donors: &[Vec<Tok>]) {
    let total = count(toks);
    if total == 0 {
        toks.push(random_token(r, ops));
        return;
    }
    let pos = r.below(total);
    let kind = r.below(14);
    let donor = r.pick(donors).clone();
    let Some((list, i)) = locate(toks, pos) else {
        return;
    };
    match kind {
        0 => {
            list.remove(i);
        }
        1 => {
            let t = list[i].clone();
            list.insert(i, t);
        }
        2 if i + 1 < list.len() => list.swap(i, i + 1),
        3 => list[i] = random_token(r, ops),
        4 => list.insert(i, random_token(r, ops)),
        5 => {
            // Idents to keywords, op names or other names.
            if let Tok::Ident(_) = list[i] {
                list[i] = Tok::Ident(if r.below(3) == 0 {
                    (*r.pick(ops)).to_string()
                } else {
                    (*r.pick(IDENTS)).to_string()
                });
            } else {
                list[i] = Tok::Ident((*r.pick(IDENTS)).to_string());
            }
        }
        6 => {
            // Literals to 0, huge, negative, float, suffixed, strings.
            let lit = Tok::Lit((*r.pick(LITERALS)).to_string());
            if r.below(4) == 0 {
                list[i] = lit;
                list.insert(i, Tok::Punct('-', Spacing::Alone));
            } else {
                list[i] = lit;
            }
        }
        7 => list.truncate(i),
        8 => {
            if let Tok::Group(d, _) = &mut list[i] {
                *d = *r.pick(&[
                    Delimiter::Parenthesis,
                    Delimiter::Brace,
                    Delimiter::Bracket,
                    Delimiter::None,
                ]);
            } else {
                list.remove(i);
            }
        }
        9 => {
            // Unwrap a group, or wrap a run of tokens in one.
            if let Tok::Group(_, inner) = list[i].clone() {
                list.splice(i..=i, inner);
            } else {
                let end = (i + 1 + r.below(4)).min(list.len());
                let run: Vec<Tok> = list.drain(i..end).collect();
                let d = *r.pick(&[Delimiter::Parenthesis, Delimiter::Bracket, Delimiter::Brace]);
                list.insert(i, Tok::Group(d, run));
            }
        }
        10 => {
            // Splice a run of tokens from another seed (often a whole statement).
            let flat = match donor.first() {
                Some(Tok::Group(_, _)) | None => donor,
                Some(_) => donor
                    .iter()
                    .find_map(|t| match t {
                        Tok::Group(Delimiter::Brace, inner) => Some(inner.clone()),
                        _ => None,
                    })
                    .unwrap_or(donor),
            };
            if !flat.is_empty() {
                let a = r.below(flat.len());
                let b = (a + 1 + r.below(8)).min(flat.len());
                list.splice(i..i, flat[a..b].iter().cloned());
            }
        }
        11 => {
            // Repeat the list's tail (duplicate statements).
            let tail: Vec<Tok> = list[i..].to_vec();
            list.extend(tail);
        }
        12 => {
            // Remove a run.
            let end = (i + 1 + r.below(6)).min(list.len());
            list.drain(i..end);
        }
        _ => {
            // Punctuation swaps: `;` <-> `,`, `:` <-> `=`.
            list[i] = match &list[i] {
                Tok::Punct(';', s) => Tok::Punct(',', *s),
                Tok::Punct(',', s) => Tok::Punct(';', *s),
                Tok::Punct(':', s) => Tok::Punct('=', *s),
                Tok::Punct('=', s) => Tok::Punct(':', *s),
                _ => Tok::Punct(*r.pick(PUNCTS), Spacing::Alone),
            };
        }
    }
}

/// Mutations that often keep a network valid: two statements swapped, or a name renamed
/// everywhere (to a DSL word, a name generated code uses, a raw identifier, ...).
fn mutate_benign(toks: &mut [Tok], r: &mut Rng) {
    let Some(Tok::Group(Delimiter::Brace, body)) = toks
        .iter_mut()
        .find(|t| matches!(t, Tok::Group(Delimiter::Brace, _)))
    else {
        return;
    };
    if r.below(2) == 0 {
        // Swap two statements (split at `;`).
        let mut stmts: Vec<Vec<Tok>> = vec![Vec::new()];
        for t in body.drain(..) {
            let end = matches!(t, Tok::Punct(';', _));
            stmts.last_mut().expect("one").push(t);
            if end {
                stmts.push(Vec::new());
            }
        }
        let n = stmts.len();
        stmts.swap(r.below(n), r.below(n));
        *body = stmts.into_iter().flatten().collect();
    } else {
        // Rename an identifier everywhere in the body.
        let names: Vec<String> = body
            .iter()
            .filter_map(|t| match t {
                Tok::Ident(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return;
        }
        let from = r.pick(&names).clone();
        let to = (*r.pick(IDENTS)).to_string();
        fn rename(toks: &mut [Tok], from: &str, to: &str) {
            for t in toks {
                match t {
                    Tok::Ident(s) if s == from => *s = to.to_string(),
                    Tok::Group(_, inner) => rename(inner, from, to),
                    _ => {}
                }
            }
        }
        rename(body, &from, &to);
    }
}

// ---------------------------------------------------------------------------------------
// The check.
// ---------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Outcome {
    Code,
    Errors(usize),
}

/// Code, or only `::core::compile_error! { "non-empty" }`s; anything else is a bug.
fn classify(out: &TokenStream) -> Result<Outcome, String> {
    let mut tts: Vec<TokenTree> = out.clone().into_iter().collect();
    let text = out.to_string();
    // The bare form is an expression: a block, of its code or of its errors.
    if let [TokenTree::Group(g)] = tts.as_slice() {
        if g.delimiter() == proc_macro2::Delimiter::Brace {
            if text.contains("bare_network") && !text.contains("compile_error") {
                return Ok(Outcome::Code);
            }
            tts = g.stream().into_iter().collect();
        }
    }
    if !text.contains("compile_error") {
        let has = |w: &str| {
            tts.iter()
                .any(|t| matches!(t, TokenTree::Ident(i) if i == w))
        };
        // The impls sit in a `const _: () = { ... };` block.
        let has_impl = tts.iter().any(|t| {
            matches!(t, TokenTree::Group(g) if g.stream().into_iter().any(|t| matches!(t, TokenTree::Ident(i) if i == "impl")))
        });
        return if has("struct") && has_impl {
            Ok(Outcome::Code)
        } else {
            Err(format!("neither code nor compile_error!: {text}"))
        };
    }
    let mut n = 0;
    let mut rest = tts.as_slice();
    while !rest.is_empty() {
        let [TokenTree::Punct(c1), TokenTree::Punct(c2), TokenTree::Ident(core), TokenTree::Punct(c3), TokenTree::Punct(c4), TokenTree::Ident(ce), TokenTree::Punct(bang), TokenTree::Group(g), tail @ ..] =
            rest
        else {
            return Err(format!("compile_error! mixed with other tokens: {text}"));
        };
        let colons = [c1, c2, c3, c4].iter().all(|p| p.as_char() == ':');
        if !colons || core != "core" || ce != "compile_error" || bang.as_char() != '!' {
            return Err(format!("malformed compile_error!: {text}"));
        }
        let msg: syn::LitStr = syn::parse2(g.stream())
            .map_err(|e| format!("compile_error! without a string literal ({e}): {text}"))?;
        if msg.value().trim().is_empty() {
            return Err(format!("an empty compile_error! message: {text}"));
        }
        n += 1;
        rest = tail;
    }
    Ok(Outcome::Errors(n))
}

static PANIC_MESSAGE: Mutex<String> = Mutex::new(String::new());

/// Expands `text` (if it lexes); `Err` with the panic message if the compiler panicked.
fn expand(ts: TokenStream) -> Result<TokenStream, String> {
    panic::catch_unwind(AssertUnwindSafe(|| miniflow_codegen::network(ts)))
        .map_err(|_| PANIC_MESSAGE.lock().map(|m| m.clone()).unwrap_or_default())
}

fn panics(toks: &[Tok]) -> bool {
    to_text(toks)
        .parse::<TokenStream>()
        .is_ok_and(|ts| expand(ts).is_err())
}

/// Deletes tokens (and unwraps groups) while the input still panics.
fn minimize(mut toks: Vec<Tok>) -> Vec<Tok> {
    loop {
        let total = count(&toks);
        let mut progress = false;
        for pos in (0..total).rev() {
            for unwrap in [false, true] {
                let mut t = toks.clone();
                let Some((list, i)) = locate(&mut t, pos) else {
                    continue;
                };
                if unwrap {
                    let Tok::Group(_, inner) = list[i].clone() else {
                        continue;
                    };
                    list.splice(i..=i, inner);
                } else {
                    list.remove(i);
                }
                if panics(&t) {
                    toks = t;
                    progress = true;
                    break;
                }
            }
        }
        if !progress {
            return toks;
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    cases: usize,
    lexed: usize,
    code: usize,
    errors: usize,
    messages: usize,
}

fn fuzz(cases: usize, seed: u64) -> Stats {
    let seeds = seeds();
    assert!(seeds.len() >= 40, "only {} seeds", seeds.len());
    let ops: Vec<&'static str> = miniflow_ops::Op::ALL.iter().map(|op| op.name()).collect();
    let mut r = Rng(seed);
    let mut stats = Stats::default();
    let mut failures: Vec<String> = Vec::new();

    let hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        if let Ok(mut m) = PANIC_MESSAGE.lock() {
            *m = info.to_string();
        }
    }));
    for case in 0..cases {
        stats.cases += 1;
        let toks = if r.below(20) == 0 {
            (0..r.below(30))
                .map(|_| random_token(&mut r, &ops))
                .collect()
        } else if r.below(4) == 0 {
            let mut t = r.pick(&seeds).clone();
            for _ in 0..1 + r.below(3) {
                mutate_benign(&mut t, &mut r);
            }
            t
        } else {
            let mut t = r.pick(&seeds).clone();
            for _ in 0..1 + r.below(4) {
                mutate(&mut t, &mut r, &ops, &seeds);
            }
            t
        };
        let Ok(ts) = to_text(&toks).parse::<TokenStream>() else {
            continue;
        };
        stats.lexed += 1;
        let out = match expand(ts.clone()) {
            Ok(out) => out,
            Err(msg) => {
                if failures.len() < 3 {
                    let min = to_text(&minimize(toks.clone()));
                    failures.push(format!(
                        "case {case}: the compiler panicked: {msg}\n  input: {}\n  minimized: {min}",
                        to_text(&toks)
                    ));
                }
                continue;
            }
        };
        match classify(&out) {
            Ok(Outcome::Code) => stats.code += 1,
            Ok(Outcome::Errors(n)) => {
                stats.errors += 1;
                stats.messages += n;
            }
            Err(e) => {
                if failures.len() < 3 {
                    failures.push(format!("case {case}: {e}\n  input: {}", to_text(&toks)));
                }
            }
        }
        if case % 16 == 0 {
            let again = expand(ts).map(|t| t.to_string()).unwrap_or_default();
            if again != out.to_string() && failures.len() < 3 {
                failures.push(format!(
                    "case {case}: two expansions differ\n  input: {}",
                    to_text(&toks)
                ));
            }
        }
    }
    panic::set_hook(hook);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    stats
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn run(default_cases: u64) {
    let cases = env_or("MINIFLOW_FUZZ_CASES", default_cases) as usize;
    let seed = env_or("MINIFLOW_FUZZ_SEED", 0x6d66_757a);
    let start = Instant::now();
    let stats = fuzz(cases, seed);
    println!(
        "{} cases ({} lexed: {} compiled, {} rejected with {} compile_error!s) in {:.1?}",
        stats.cases,
        stats.lexed,
        stats.code,
        stats.errors,
        stats.messages,
        start.elapsed()
    );
    // The mutations must exercise both outcomes, or the fuzzer tests little.
    assert!(stats.lexed * 10 >= stats.cases * 8, "{stats:?}");
    assert!(
        stats.code * 50 >= stats.lexed,
        "too few accepted: {stats:?}"
    );
    assert!(
        stats.errors * 2 >= stats.lexed,
        "too few rejected: {stats:?}"
    );
}

#[test]
fn fuzz_short() {
    run(10_000);
}

#[test]
#[ignore = "long: 200,000 cases; run with --ignored"]
fn fuzz_long() {
    run(200_000);
}

/// The checker itself can fail.
#[test]
fn classify_rejects_what_it_must() {
    let empty = syn::Error::new(proc_macro2::Span::call_site(), " ").into_compile_error();
    assert!(classify(&empty).is_err());
    let mut mixed = syn::Error::new(proc_macro2::Span::call_site(), "x").into_compile_error();
    mixed.extend("struct S;".parse::<TokenStream>().unwrap());
    assert!(classify(&mixed).is_err());
    assert!(classify(&TokenStream::new()).is_err());
    let two = {
        let mut e = syn::Error::new(proc_macro2::Span::call_site(), "a");
        e.combine(syn::Error::new(proc_macro2::Span::call_site(), "b"));
        e.into_compile_error()
    };
    assert_eq!(classify(&two), Ok(Outcome::Errors(2)));
    let ok = miniflow_codegen::network(INLINE_SEEDS[0].parse().unwrap());
    assert_eq!(classify(&ok), Ok(Outcome::Code), "{ok}");
}

/// Every token position of a mutated seed can be located (the mutations' bookkeeping).
#[test]
fn mutations_keep_token_counts_consistent() {
    let seeds = seeds();
    let ops = ["add"];
    let mut r = Rng(1);
    for _ in 0..2_000 {
        let mut t = r.pick(&seeds).clone();
        mutate(&mut t, &mut r, &ops, &seeds);
        let n = count(&t);
        for pos in 0..n {
            assert!(locate(&mut t, pos).is_some(), "position {pos} of {n}");
        }
        assert!(locate(&mut t, n).is_none());
    }
}
