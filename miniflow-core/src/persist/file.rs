//! The safetensors file in memory (tensors as little-endian bytes, string metadata), its
//! encoding and decoding on the `safetensors` crate, and atomic writes.

use crate::error::{Error, Result};
use crate::Scalar;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// One tensor: element type, shape, and its elements in row-major order as little-endian
/// bytes (safetensors' layout).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TensorData {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: Vec<u8>,
}

impl View for &TensorData {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A whole file: tensors by name and metadata, both sorted by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Tensors {
    pub(crate) tensors: BTreeMap<String, TensorData>,
    pub(crate) metadata: BTreeMap<String, String>,
}

/// The safetensors element type of `T` (`F64` or `F32`).
pub(crate) fn dtype_of<T: Scalar>() -> Dtype {
    if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// The name of an element type, as safetensors headers spell it.
pub(crate) fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::BOOL => "BOOL",
        Dtype::U8 => "U8",
        Dtype::I8 => "I8",
        Dtype::I16 => "I16",
        Dtype::U16 => "U16",
        Dtype::F16 => "F16",
        Dtype::BF16 => "BF16",
        Dtype::I32 => "I32",
        Dtype::U32 => "U32",
        Dtype::F32 => "F32",
        Dtype::F64 => "F64",
        Dtype::I64 => "I64",
        Dtype::U64 => "U64",
        _ => "another element type",
    }
}

/// `values` in row-major order as little-endian bytes of `T`'s width.
pub(crate) fn encode_values<'a, T: Scalar>(values: impl Iterator<Item = &'a T>) -> Vec<u8> {
    let mut out = Vec::new();
    let wide = dtype_of::<T>() == Dtype::F64;
    for &v in values {
        let x = Scalar::to_f64(v);
        if wide {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            // Exact: `v` is an f32.
            out.extend_from_slice(&(x as f32).to_le_bytes());
        }
    }
    out
}

/// A tensor of `T` from an array view.
pub(crate) fn tensor_of<T: Scalar>(value: ArrayViewD<'_, T>) -> TensorData {
    TensorData {
        dtype: dtype_of::<T>(),
        shape: value.shape().to_vec(),
        bytes: encode_values(value.iter()),
    }
}

/// The elements of an `F64` or `F32` tensor as `T` (rounded if narrower); `None` for other
/// element types.
pub(crate) fn decode_values<T: Scalar>(t: &TensorData) -> Option<Vec<T>> {
    match t.dtype {
        Dtype::F64 => Some(
            t.bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    T::from_f64(f64::from_le_bytes(b))
                })
                .collect(),
        ),
        Dtype::F32 => Some(
            t.bytes
                .chunks_exact(4)
                .map(|c| {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(c);
                    T::from_f64(f64::from(f32::from_le_bytes(b)))
                })
                .collect(),
        ),
        _ => None,
    }
}

/// The tensor as an array of `T` with its shape, if its element type is `F64` or `F32`.
pub(crate) fn array_of<T: Scalar>(t: &TensorData) -> Option<ArrayD<T>> {
    let values = decode_values::<T>(t)?;
    ArrayD::from_shape_vec(IxDyn(&t.shape), values).ok()
}

/// `U64` tensor of `values`.
pub(crate) fn u64_tensor(values: &[u64]) -> TensorData {
    TensorData {
        dtype: Dtype::U64,
        shape: vec![values.len()],
        bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// The values of a 1-D `U64` tensor.
pub(crate) fn u64_values(t: &TensorData) -> Option<Vec<u64>> {
    if t.dtype != Dtype::U64 || t.shape.len() != 1 {
        return None;
    }
    Some(
        t.bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect(),
    )
}

impl Tensors {
    /// The safetensors bytes of these tensors and metadata.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        let metadata = if self.metadata.is_empty() {
            None
        } else {
            // The map type is whatever safetensors was built with (std's or hashbrown's).
            Some(
                self.metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        safetensors::serialize(self.tensors.iter(), metadata).map_err(|e| Error::BadFile {
            file: "(in memory)".to_string(),
            what: format!("cannot encode: {e}"),
        })
    }

    /// Reads safetensors `bytes` (the contents of `file`, for messages), checking the header,
    /// the offsets and that the data covers the file exactly.
    pub(crate) fn from_bytes(bytes: &[u8], file: &str) -> Result<Self> {
        let bad = |e: safetensors::SafeTensorError| Error::BadFile {
            file: file.to_string(),
            what: format!("{e} (is it truncated, or not a safetensors file?)"),
        };
        let st = SafeTensors::deserialize(bytes).map_err(bad)?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
        let metadata = meta
            .metadata()
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let tensors = st
            .iter()
            .map(|(name, view)| {
                (
                    name.to_string(),
                    TensorData {
                        dtype: view.dtype(),
                        shape: view.shape().to_vec(),
                        bytes: view.data().to_vec(),
                    },
                )
            })
            .collect();
        Ok(Tensors { tensors, metadata })
    }

    /// Reads a safetensors file.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| io_error(&file, &e))?;
        Self::from_bytes(&bytes, &file)
    }

    /// Writes a safetensors file atomically (see [`write_atomic`]).
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        write_atomic(path, |f| f.write_all(&bytes))
    }
}

pub(crate) fn io_error(file: &str, e: &std::io::Error) -> Error {
    Error::Io {
        file: file.to_string(),
        kind: e.kind(),
        what: e.to_string(),
    }
}

/// Distinguishes temporary files of concurrent writes within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary path beside `path`, so the final rename stays within one file system (and so
/// is atomic).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "miniflow".into(), |n| n.to_string_lossy().into_owned());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Writes a file so that `path` holds either its old contents or the whole new ones, never
/// a part: `fill` writes a new temporary file in the same directory, which is flushed to
/// disk and then renamed over `path`. If anything fails (a full disk, a crash before the
/// rename) the temporary file is removed where possible and `path` is untouched.
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let file = path.display().to_string();
    let tmp = temp_path(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_error(&file, &e))?;
    let written = fill(&mut f).and_then(|()| f.sync_all());
    drop(f);
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(&file, &e));
    }
    // Make the rename itself durable (Unix; elsewhere this is best effort).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails after `left` bytes, like a disk that fills up.
    struct FailAfter<'a> {
        inner: &'a mut File,
        left: usize,
    }

    impl Write for FailAfter<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device (simulated)",
                ));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("miniflow-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn leftovers(d: &Path) -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_write_that_fails_midway_leaves_the_old_file_and_no_temporary() {
        let d = dir().join("mid");
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("model.safetensors");
        let good: Vec<u8> = (0..255).collect();
        write_atomic(&path, |f| f.write_all(&good)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), good);

        let new = vec![7u8; 10_000];
        for fail_after in [0, 1, 100, 9_999] {
            let e = write_atomic(&path, |f| {
                FailAfter {
                    inner: f,
                    left: fail_after,
                }
                .write_all(&new)
            })
            .unwrap_err();
            match e {
                Error::Io { kind, file, .. } => {
                    assert_eq!(kind, std::io::ErrorKind::StorageFull);
                    assert!(file.ends_with("model.safetensors"));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                std::fs::read(&path).unwrap(),
                good,
                "the old file is intact"
            );
            assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
        }
        // And a write that completes replaces it whole.
        write_atomic(&path, |f| f.write_all(&new)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), new);
        assert!(leftovers(&d).is_empty());
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_file() {
        let path = dir().join("no/such/dir/model.safetensors");
        match write_atomic(&path, |f| f.write_all(b"x")) {
            Err(Error::Io { kind, file, .. }) => {
                assert_eq!(kind, std::io::ErrorKind::NotFound);
                assert!(file.ends_with("model.safetensors"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_round_trip_in_both_widths() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.5f64, -0.1, 3e300, 0.0]).unwrap();
        let t = tensor_of(x.view());
        assert_eq!(t.dtype, Dtype::F64);
        assert_eq!(array_of::<f64>(&t).unwrap(), x);
        let y = x.mapv(|v| v as f32);
        let t32 = tensor_of(y.view());
        assert_eq!(t32.dtype, Dtype::F32);
        assert_eq!(t32.bytes.len(), 16);
        assert_eq!(array_of::<f32>(&t32).unwrap(), y);
        assert_eq!(
            u64_values(&u64_tensor(&[1, u64::MAX])).unwrap(),
            [1, u64::MAX]
        );
    }
}
