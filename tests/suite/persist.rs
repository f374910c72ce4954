//! Saving and loading params (issue 10, section 1): round trips in f64 and f32, loads that
//! check everything and change nothing on failure (each failure with a typed error naming the
//! tensor; all missing and extra names at once), partial loads that report, explicit width
//! conversion, explicit renames and transposes, atomic writes.

// Saving and loading need the `safetensors` feature (on by default).
#![cfg(feature = "safetensors")]

use miniflow::ndarray::{array, ArrayD, IxDyn};
use miniflow::persist::{self, Checkpoint, Load, LoadReport, Save};
use miniflow::{init, Error, Network};
use std::path::PathBuf;

miniflow::network! {
    /// 3 -> 4 (tanh) -> 2.
    pub struct Mlp {
        input X: [batch, 3];
        input y: [batch, 2];
        param W1: [3, 4];
        param b1: [4];
        param W2: [4, 2];
        param b2: [2];
        l1 = linear(X, W1, b1);
        h = tanh(l1);
        output o = linear(h, W2, b2);
        loss cost = mse(y, o);
    }
}

miniflow::network! {
    /// The same in f32.
    #[elem(f32)]
    pub struct Mlp32 {
        input X: [batch, 3];
        input y: [batch, 2];
        param W1: [3, 4];
        param b1: [4];
        param W2: [4, 2];
        param b2: [2];
        l1 = linear(X, W1, b1);
        h = tanh(l1);
        output o = linear(h, W2, b2);
        loss cost = mse(y, o);
    }
}

miniflow::network! {
    /// Another shape for W1, and a param Mlp does not have.
    pub struct Other {
        input X: [batch, 3];
        input y: [batch, 2];
        param W1: [3, 5];
        param b1: [5];
        param W2: [5, 2];
        param b2: [2];
        param extra: [2, 2];
        l1 = linear(X, W1, b1);
        h = tanh(l1);
        l2 = linear(h, W2, b2);
        o = matmul(l2, extra);
        loss cost = mse(y, o);
    }
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("miniflow-persist-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn trained(seed: u64) -> Mlp {
    let mut net = Mlp::new();
    init::xavier_normal(&mut net, seed);
    // Non-zero biases too.
    net.set_param("b1", array![0.1, -0.2, 0.3, -0.4].view().into_dyn())
        .unwrap();
    net.set_param("b2", array![1.0 / 3.0, -2.5].view().into_dyn())
        .unwrap();
    net
}

/// Every param's bits, in source order.
fn bits<N: Network>(net: &mut N) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    net.visit_params(&mut |p| {
        out.push((
            p.name.to_string(),
            p.value
                .iter()
                .map(|v| miniflow::Scalar::to_f64(*v).to_bits())
                .collect(),
        ))
    });
    out
}

#[test]
fn params_round_trip_bit_for_bit_in_f64_and_f32() {
    let path = dir().join("rt64.safetensors");
    let mut a = trained(1);
    persist::save(&a, &path).unwrap();
    let mut b = Mlp::new();
    let report = persist::load(&mut b, &path).unwrap();
    assert_eq!(bits(&mut a), bits(&mut b));
    assert_eq!(report.set, ["W1", "b1", "W2", "b2"]);
    assert!(report.left.is_empty() && report.unused.is_empty());
    assert_eq!(report.saved_from.as_deref(), Some("Mlp"));

    // The file is plain safetensors with the documented metadata.
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.metadata("format"), Some("miniflow"));
    assert_eq!(
        ck.metadata("miniflow.version"),
        Some(persist::FORMAT_VERSION)
    );
    assert_eq!(ck.metadata("miniflow.network"), Some("Mlp"));
    assert_eq!(ck.metadata("miniflow.shape.W1"), Some("[3, 4]"));
    assert_eq!(
        ck.tensor_names().collect::<Vec<_>>(),
        ["W1", "W2", "b1", "b2"]
    );
    assert_eq!(
        ck.array::<f64>("b2").unwrap(),
        array![1.0 / 3.0, -2.5].into_dyn()
    );

    let path32 = dir().join("rt32.safetensors");
    let mut c = Mlp32::new();
    init::he_uniform(&mut c, 3);
    persist::save(&c, &path32).unwrap();
    let mut d = Mlp32::new();
    persist::load(&mut d, &path32).unwrap();
    assert_eq!(bits(&mut c), bits(&mut d));
    assert!(std::fs::metadata(&path32).unwrap().len() < std::fs::metadata(&path).unwrap().len());
}

/// Runs a failing load and checks that it changed nothing.
fn fails_unchanged(load: impl FnOnce(&mut Mlp) -> miniflow::Result<LoadReport>) -> Error {
    let mut net = trained(2);
    let before = bits(&mut net);
    let e = load(&mut net).unwrap_err();
    assert_eq!(
        bits(&mut net),
        before,
        "a failed load changed the network: {e}"
    );
    e
}

#[test]
fn a_failed_load_changes_nothing_and_says_why() {
    let d = dir();
    // Another width, without asking to convert.
    let p32 = d.join("w32.safetensors");
    let mut n32 = Mlp32::new();
    init::he_uniform(&mut n32, 4);
    persist::save(&n32, &p32).unwrap();
    let e = fails_unchanged(|n| persist::load(n, &p32));
    assert!(
        matches!(&e, Error::TensorDtype { tensor, expected, found, .. }
            if tensor == "W1" && *expected == "F64" && *found == "F32"),
        "{e:?}"
    );
    assert!(e.to_string().contains("convert_dtype(true)"), "{e}");

    // Missing and extra tensors: all listed at once.
    let other = d.join("other.safetensors");
    let o = Other::new();
    persist::save(&o, &other).unwrap();
    let e = fails_unchanged(|n| persist::load(n, &other));
    assert_eq!(
        e,
        Error::TensorNames {
            file: other.display().to_string(),
            missing: vec![],
            unexpected: vec!["extra".into()],
        }
    );
    let sub = d.join("sub.safetensors");
    Save::new()
        .rename("W1", "first")
        .rename("b2", "last")
        .save(&trained(5), &sub)
        .unwrap();
    let e = fails_unchanged(|n| persist::load(n, &sub));
    match &e {
        Error::TensorNames {
            missing,
            unexpected,
            ..
        } => {
            assert_eq!(missing, &["W1", "b2"]);
            assert_eq!(unexpected, &["first", "last"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string().contains("`W1`, `b2`") && e.to_string().contains("`first`, `last`"),
        "{e}"
    );

    // Another shape, named, checked before anything is set (W1 fails after no param was set,
    // b1 ... are never reached).
    let e = fails_unchanged(|n| Load::new().partial(true).load(n, &other));
    assert!(
        matches!(&e, Error::TensorShape { tensor, expected, found, .. }
            if tensor == "W1" && **expected == [3, 4] && **found == [3, 5]),
        "{e:?}"
    );
    // A transposed weight is recognised in the message.
    let t = d.join("transposed.safetensors");
    Save::new().transpose("W1").save(&trained(6), &t).unwrap();
    let e = fails_unchanged(|n| persist::load(n, &t));
    assert!(
        e.to_string().contains("looks transposed") && e.to_string().contains("Load::transpose"),
        "{e}"
    );

    // Truncated, corrupt, not safetensors at all, missing.
    let good = std::fs::read(d.join("w32.safetensors")).unwrap();
    for (name, bytes) in [
        ("cut.safetensors", good[..good.len() - 3].to_vec()),
        ("header.safetensors", {
            let mut b = good.clone();
            b[10] = b'!';
            b
        }),
        ("tiny.safetensors", b"abc".to_vec()),
        ("empty.safetensors", Vec::new()),
    ] {
        let p = d.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let e = fails_unchanged(|n| Load::new().convert_dtype(true).load(n, &p));
        assert!(
            matches!(&e, Error::BadFile { file, .. } if file.ends_with(name)),
            "{name}: {e:?}"
        );
    }
    let e = fails_unchanged(|n| persist::load(n, d.join("nope.safetensors")));
    assert!(
        matches!(
            e,
            Error::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{e:?}"
    );

    // Two tensors for one param (its own name and a rename onto it).
    let both = d.join("both.safetensors");
    let mut ck = Checkpoint::new();
    ck.put_array("W1", trained(3).value("W1").unwrap())
        .put_array("first", trained(4).value("W1").unwrap());
    ck.save(&both).unwrap();
    let e = fails_unchanged(|n| {
        Load::new()
            .rename("first", "W1")
            .partial(true)
            .load(n, &both)
    });
    assert!(e.to_string().contains("both `W1` and `first`"), "{e}");

    // A rename to a param that does not exist.
    let e = fails_unchanged(|n| Load::new().rename("x", "W3").load(n, &p32));
    assert!(matches!(e, Error::UnknownNode { .. }), "{e:?}");
}

#[test]
fn widths_convert_only_on_request() {
    let d = dir();
    let p32 = d.join("conv32.safetensors");
    let mut n32 = Mlp32::new();
    init::he_uniform(&mut n32, 4);
    persist::save(&n32, &p32).unwrap();
    let mut n64 = Mlp::new();
    Load::new()
        .convert_dtype(true)
        .load(&mut n64, &p32)
        .unwrap();
    // f32 -> f64 is exact.
    let w32 = n32.value("W1").unwrap().mapv(f64::from);
    assert_eq!(n64.value("W1").unwrap(), w32.view());

    // f64 -> f32 rounds, and must be asked for.
    let p64 = d.join("conv64.safetensors");
    let mut a = trained(7);
    persist::save(&a, &p64).unwrap();
    let mut b = Mlp32::new();
    assert!(matches!(
        persist::load(&mut b, &p64),
        Err(Error::TensorDtype { .. })
    ));
    Load::new().convert_dtype(true).load(&mut b, &p64).unwrap();
    let w = a.value("W1").unwrap().mapv(|v| v as f32);
    assert_eq!(b.value("W1").unwrap(), w.view());

    // A value beyond f32 is an error, nothing set.
    a.set_param("b2", array![1e300, 0.0].view().into_dyn())
        .unwrap();
    persist::save(&a, &p64).unwrap();
    let before = bits(&mut b);
    let e = Load::new()
        .convert_dtype(true)
        .load(&mut b, &p64)
        .unwrap_err();
    assert!(e.to_string().contains("beyond f32's range"), "{e}");
    assert_eq!(bits(&mut b), before);
}

#[test]
fn a_partial_load_reports_what_it_set_and_left() {
    let p = dir().join("partial.safetensors");
    // A file with W1 and b1 only (saved from the network, renamed apart for the test),
    // plus an unrelated tensor.
    let mut ck = Checkpoint::new();
    let src = trained(8);
    ck.put_array("W1", src.value("W1").unwrap())
        .put_array("b1", src.value("b1").unwrap())
        .put_array("head.bias", ArrayD::<f64>::zeros(IxDyn(&[7])).view());
    ck.save(&p).unwrap();

    let mut net = trained(9);
    let w2 = net.value("W2").unwrap().to_owned();
    let e = persist::load(&mut net, &p).unwrap_err();
    assert!(
        matches!(e, Error::TensorNames { .. }),
        "strict by default: {e}"
    );
    let r = Load::new().partial(true).load(&mut net, &p).unwrap();
    assert_eq!(r.set, ["W1", "b1"]);
    assert_eq!(r.left, ["W2", "b2"]);
    assert_eq!(r.unused, ["head.bias"]);
    assert_eq!(net.value("W1").unwrap(), src.value("W1").unwrap());
    assert_eq!(net.value("W2").unwrap(), w2.view(), "left alone");
}

#[test]
fn renames_and_transposes_are_explicit_and_round_trip() {
    let p = dir().join("torch_layout.safetensors");
    let mut a = trained(10);
    Save::new()
        .torch_linear("W1", "b1", "0")
        .torch_linear("W2", "b2", "2")
        .save(&a, &p)
        .unwrap();
    let ck = Checkpoint::load(&p).unwrap();
    assert_eq!(
        ck.tensor_names().collect::<Vec<_>>(),
        ["0.bias", "0.weight", "2.bias", "2.weight"]
    );
    let w = ck.array::<f64>("0.weight").unwrap();
    assert_eq!(w.shape(), &[4, 3], "[out, in]");
    assert_eq!(w.t(), a.value("W1").unwrap());

    let mut b = Mlp::new();
    Load::new()
        .torch_linear("0", "W1", "b1")
        .torch_linear("2", "W2", "b2")
        .load(&mut b, &p)
        .unwrap();
    assert_eq!(bits(&mut a), bits(&mut b));
    // Without the transpose, the shapes say so.
    let e = Load::new()
        .rename("0.weight", "W1")
        .rename("0.bias", "b1")
        .rename("2.weight", "W2")
        .rename("2.bias", "b2")
        .load(&mut b, &p)
        .unwrap_err();
    assert!(matches!(e, Error::TensorShape { .. }), "{e}");
    // Transposing a vector is refused.
    let e = Save::new().transpose("b1").to_bytes(&a).unwrap_err();
    assert!(e.to_string().contains("not 2-D"), "{e}");
}

/// Issue 10: writes are atomic. A failure while writing to a writer is an I/O error; a save
/// over a good file that fails (here: the target is a directory, so the rename fails) leaves
/// no temporary file behind. The file-level test that fails after N bytes is in
/// `miniflow-core/src/persist/file.rs`.
#[test]
fn writes_report_failures_and_leave_no_temporary_files() {
    struct Full(usize);
    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let net = trained(11);
    let e = Save::new().write(&net, Full(100)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Io {
                kind: std::io::ErrorKind::StorageFull,
                ..
            }
        ),
        "{e:?}"
    );

    let d = dir().join("atomic");
    std::fs::create_dir_all(d.join("model.safetensors")).unwrap();
    let e = persist::save(&net, d.join("model.safetensors")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["model.safetensors"], "no temporary file left");

    // Bytes in memory round-trip too.
    let bytes = Save::new().to_bytes(&net).unwrap();
    let mut b = Mlp::new();
    Load::new().from_bytes(&mut b, &bytes, "mem").unwrap();
    assert_eq!(b.value("W2").unwrap(), net.value("W2").unwrap());
}
