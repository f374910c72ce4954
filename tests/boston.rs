//! The course's nn.py (the `boston` example's own training code): with a fixed seed the loss
//! falls below 30 within 100 epochs, and the same seed gives the same losses bit for bit.

#[path = "../examples/boston.rs"]
#[allow(dead_code)]
mod boston;

#[test]
fn loss_falls_below_30_within_100_epochs() {
    let mut printed = Vec::new();
    let losses = boston::train(100, boston::DEFAULT_SEED, |i, l| printed.push((i, l))).unwrap();
    assert_eq!(losses.len(), 100);
    assert_eq!(printed.first().map(|p| p.0), Some(1), "epochs count from 1");
    assert!(losses.iter().all(|l| l.is_finite()));
    let best = losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(best < 30.0, "best epoch loss {best}: {losses:?}");
    // Better than predicting the mean (84.4 on the whole set), and it learns from the start.
    assert!(losses[99] < 30.0, "final loss {}", losses[99]);
    assert!(losses[0] > losses[99]);
}

#[test]
fn the_same_seed_gives_bit_identical_losses() {
    let bits = |seed| -> Vec<u64> {
        boston::train(8, seed, |_, _| {})
            .unwrap()
            .iter()
            .map(|l| l.to_bits())
            .collect()
    };
    assert_eq!(bits(7), bits(7));
    assert_ne!(bits(7), bits(8));
}

#[test]
fn the_plot_is_an_svg_line_with_labels() {
    let svg = boston::loss_svg(&[150.0, 80.0, 40.0, 20.0], "a <title>").unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("stroke=\"#0000FF\"").count(),
        1,
        "one loss curve"
    );
    // plotters writes each text on a line of its own.
    assert!(svg.contains("\nepoch\n</text>") && svg.contains("\nmean training loss (MSE)\n"));
    assert!(svg.contains("\na &lt;title&gt;\n"), "the title is escaped");
    assert!(svg.contains("\n200\n</text>"), "y axis up to a round 200");
}
