//! Issue 10, section 5: the digits example saves its model and scaler, and a **fresh
//! process** that loads them prints the training process's predictions.
//!
//! The fresh process is this test binary started again (with an environment variable that
//! makes `predict_in_a_child_process` do the loading), so it shares no memory with the
//! process that trained.

// Saving and loading need the `safetensors` feature (on by default).
#![cfg(feature = "safetensors")]

use crate::example_digits as digits;

use std::process::Command;

const CHILD: &str = "MINIFLOW_DIGITS_PREDICT";

#[test]
fn a_fresh_process_predicts_what_the_training_process_predicted() {
    let dir = std::env::temp_dir().join(format!("miniflow-digits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let path = path.to_str().unwrap();

    // Train briefly (the predictions need not be good, only equal), save, predict here.
    let mut trained = digits::train(3, 11).unwrap();
    digits::save(&trained, path).unwrap();
    let (_, mut held_out) = digits::split(11).unwrap();
    trained
        .scaler
        .transform(&mut held_out.features_mut())
        .unwrap();
    let here = digits::predict(&mut trained.net, held_out.features().view()).unwrap();
    assert_eq!(here.len(), 359);

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            // The name in the suite binary (tests/suite/main.rs).
            "digits_predict::predict_in_a_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The test harness may print its own words before the child's line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("predictions: ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no predictions in the child's output: {stdout}"));
    assert_eq!(line, digits::predictions_line(&here));
}

/// The child: does nothing unless started by the test above.
#[test]
fn predict_in_a_child_process() {
    if let Some(path) = std::env::var_os(CHILD) {
        let p = digits::predict_saved(path.to_str().unwrap()).unwrap();
        println!("{}", digits::predictions_line(&p));
    }
}

#[test]
fn predicting_from_a_missing_or_foreign_file_is_a_clear_error() {
    let e = digits::predict_saved("/nonexistent/model.safetensors").unwrap_err();
    assert!(matches!(e, miniflow::Error::Io { .. }), "{e}");
    let dir = std::env::temp_dir().join(format!("miniflow-digits-x-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let other = dir.join("other.safetensors");
    let mut ck = miniflow::persist::Checkpoint::new();
    ck.put_u64("seed", 1);
    ck.save(&other).unwrap();
    let e = digits::predict_saved(other.to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains("no params under `model`"), "{e}");
}
