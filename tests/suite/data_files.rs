//! The data sets in `data/` read as `data/README.md` says, and the readers' advice on the
//! wrong layout (issue 9) on the real files.

use miniflow::data::{CsvOptions, Dataset, Header};

fn path(name: &str) -> String {
    format!("{}/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn iris_reads_with_its_class_names() {
    let d = Dataset::<f64>::read_csv(path("iris.csv"), &CsvOptions::new(Header::Counts)).unwrap();
    assert_eq!((d.len(), d.n_features()), (150, 4));
    assert_eq!(d.class_names(), ["setosa", "versicolor", "virginica"]);
    assert_eq!(d.class_name(d.targets()[149] as usize), Some("virginica"));
    let counts = (0..3)
        .map(|k| d.targets().iter().filter(|&&t| t == k as f64).count())
        .collect::<Vec<_>>();
    assert_eq!(counts, [50, 50, 50]);
}

#[test]
fn the_wrong_reader_says_which_to_use() {
    let e =
        Dataset::<f64>::read_csv(path("iris.csv"), &CsvOptions::new(Header::Names)).unwrap_err();
    assert!(e.to_string().contains("Header::Counts"), "{e}");
    let e = Dataset::<f64>::read_csv(
        path("boston_house_prices.csv"),
        &CsvOptions::new(Header::Names),
    )
    .unwrap_err();
    assert!(e.to_string().contains("read_boston"), "{e}");
    let e = Dataset::<f64>::read_boston(path("iris.csv")).unwrap_err();
    assert!(
        e.to_string().contains("13 features") && e.to_string().contains("has 4"),
        "{e}"
    );
    let boston = Dataset::<f64>::read_boston(path("boston_house_prices.csv")).unwrap();
    assert_eq!((boston.len(), boston.n_features()), (506, 13));
    assert_eq!(boston.target_names(), ["MEDV"]);
    assert!(boston.class_names().is_empty());
}
