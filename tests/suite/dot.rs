//! DOT export of a network made by `network!`.

use miniflow::Network;

miniflow::network! {
    /// The seed's test network.
    pub struct Course {
        /// The data.
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];

        f = linear(X, W, b);
        output a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

#[test]
fn the_course_network_as_dot() {
    let net = Course::new();
    let dot = net.to_dot();
    assert_eq!(dot, miniflow::dot::to_dot(net.spec()));
    assert!(dot.starts_with("digraph \"Course\" {"), "{dot}");
    for line in [
        "\"X\" [shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\", label=\"X\\ninput [batch, 2]\", tooltip=\"The data.\"];",
        "\"y\" [shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\", label=\"y\\ninput [batch]\"];",
        "\"W\" [shape=box, style=filled, fillcolor=\"#fef3c7\", label=\"W\\nparam [2, 1]\"];",
        "\"b\" [shape=box, style=filled, fillcolor=\"#fef3c7\", label=\"b\\nparam [1]\"];",
        "\"f\" [shape=ellipse, label=\"f = linear(X, W, b)\\n[batch, 1]\"];",
        "\"a\" [shape=ellipse, label=\"a = sigmoid(f)\\n[batch, 1]\\n(output)\", penwidth=2.5];",
        "\"cost\" [shape=ellipse, label=\"cost = mse(y, a)\\nscalar\\n(loss)\", style=filled, fillcolor=\"#fecaca\", peripheries=2];",
    ] {
        assert!(dot.contains(line), "missing {line}\n{dot}");
    }
    let edges: Vec<&str> = dot.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(
        edges,
        [
            "  \"X\" -> \"f\";",
            "  \"W\" -> \"f\";",
            "  \"b\" -> \"f\";",
            "  \"f\" -> \"a\";",
            "  \"y\" -> \"cost\";",
            "  \"a\" -> \"cost\";",
        ]
    );
}
