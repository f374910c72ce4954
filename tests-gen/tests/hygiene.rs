//! Hygiene: node names that are DSL words, names the generated code uses for its own locals,
//! fields and methods, or raw identifiers still give a network that compiles and agrees with
//! the runtime graph.

miniflow::network! {
    /// Every node named like something else.
    pub struct Hygiene {
        #[grad] input input: [batch, 3];
        input output: [batch];
        param param: [3, 2];
        param lr: [2];
        param value: [2, 1];
        param name: [1];
        f = linear(input, param, lr);
        new = sigmoid(f);
        spec = linear(new, value, name);
        __fed = tanh(spec);
        __dims = add(__fed, spec);
        output batch = mean(__dims);
        grad = mse(output, __dims);
        loss loss = add(grad, batch);
    }
}

miniflow::network! {
    /// Raw identifiers and names of Rust items.
    pub struct RawNames {
        input r#type: [n, 2];
        input Ok: [n];
        param core: [2, 1];
        param miniflow: [1];
        r#match = linear(r#type, core, miniflow);
        loss None = mse(Ok, r#match);
    }
}

#[test]
fn names_that_clash_with_generated_code() {
    miniflow_randnets::check_network::<f64>(&|| Box::new(Hygiene::new()), 1);
}

#[test]
fn raw_identifiers_and_item_names() {
    miniflow_randnets::check_network::<f64>(&|| Box::new(RawNames::new()), 2);
}

miniflow::network! {
    /// A network named like the prelude's `Result` (the generated code must not say `Result`
    /// unqualified).
    pub struct Result {
        input x: [2];
        param w: [2];
        loss l = mse(x, w);
    }
}

miniflow::network! {
    /// And like the trait it implements.
    #[elem(f32)]
    pub struct Network {
        input x: [k, 2];
        input y: [k, 2];
        param w: [2, 2];
        param b: [2];
        h = linear(x, w, b);
        p = softmax(h);
        loss l = mse(y, p);
    }
}

#[test]
fn networks_named_like_prelude_items() {
    miniflow_randnets::check_network::<f64>(&|| Box::new(Result::new()), 3);
    miniflow_randnets::check_network::<f32>(&|| Box::new(Network::new()), 4);
}
