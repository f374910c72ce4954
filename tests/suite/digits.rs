//! The digits example reaches at least 95% held-out accuracy with its default seed.

// Saving and loading need the `safetensors` feature (on by default).
#![cfg(feature = "safetensors")]

use crate::example_digits as digits;

#[test]
fn digits_classifier_reaches_95_percent_held_out() {
    let report = digits::run(digits::DEFAULT_EPOCHS, digits::DEFAULT_SEED).unwrap();
    assert!(
        report.accuracy >= 0.95,
        "held-out accuracy {:.4} < 0.95",
        report.accuracy
    );
    // The confusion matrix accounts for every held-out image, and its diagonal is the
    // accuracy.
    assert_eq!(report.confusion.total(), 359);
    assert_eq!(report.confusion.accuracy(), report.accuracy);
    assert!(
        report.losses.last().unwrap() < &report.losses[0],
        "training reduced the loss"
    );
}
