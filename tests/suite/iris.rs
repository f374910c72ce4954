//! The iris example's own code: at least 90% held out, and a clearly-setosa flower is named
//! "setosa".

use crate::example_iris as iris;

use miniflow::Error;

#[test]
fn iris_reaches_90_percent_held_out_and_names_a_setosa() -> miniflow::Result<()> {
    let mut t = iris::train(iris::EPOCHS, iris::SEED)?;
    assert!(t.accuracy >= 0.9, "held-out accuracy {:.4}", t.accuracy);
    assert_eq!(t.species, ["setosa", "versicolor", "virginica"]);
    // The confusion matrix counts the 30 held-out flowers and agrees with the accuracy.
    assert_eq!(t.confusion.total(), 30);
    assert_eq!(t.confusion.accuracy(), t.accuracy);
    assert!(t.losses.last() < t.losses.first());

    let predicted = iris::predict(&mut t, &[iris::NEW_FLOWER, [6.3, 2.9, 5.6, 1.8]])?;
    assert_eq!(predicted[0].0, "setosa");
    assert!(predicted[0].1 > 0.9, "p(setosa) = {}", predicted[0].1);
    assert_eq!(predicted[1].0, "virginica");
    Ok(())
}

#[test]
fn other_seeds_classify_well_too() -> miniflow::Result<()> {
    for seed in 2..=4 {
        let t = iris::train(iris::EPOCHS, seed)?;
        assert!(t.accuracy >= 0.9, "seed {seed}: {:.4}", t.accuracy);
    }
    Ok(())
}

#[test]
fn no_flower_is_an_error_not_a_panic() -> miniflow::Result<()> {
    let mut t = iris::train(1, iris::SEED)?;
    assert!(matches!(
        iris::predict(&mut t, &[]),
        Err(Error::EmptyBatch { .. })
    ));
    Ok(())
}
