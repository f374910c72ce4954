//! Saving and loading params and training state as [safetensors](https://huggingface.co/docs/safetensors)
//! files, the format PyTorch, candle, burn and Hugging Face read and write (on the
//! `safetensors` crate; the `safetensors` feature, on by default).
//!
//! ```no_run
//! use miniflow_core::{persist, Network};
//! # fn demo<N: Network<Elem = f64>>(net: &mut N) -> miniflow_core::Result<()> {
//! persist::save(&*net, "model.safetensors")?; // every param, under its DSL name
//! persist::load(net, "model.safetensors")?; // all or nothing
//! # Ok(()) }
//! ```
//!
//! Everything here is written over the [`Network`] trait ([`Network::spec`] for the param
//! names, [`Network::value`] to read, [`Network::set_param`] to write), so it works for every
//! network that implements it.
//!
//! # Params ([`save`], [`load`], [`Save`], [`Load`])
//!
//! A params file holds one tensor per param, named as in the source, in the network's element
//! type (`F64` or `F32`), and metadata: `format` = `miniflow`, `miniflow.version`,
//! `miniflow.network` (the network's type name) and `miniflow.shape.<tensor>` (each shape).
//!
//! A load **checks everything before it changes anything**: a missing or truncated or corrupt
//! file ([`Error::BadFile`]), tensors missing for some params or matching no param (one
//! [`Error::TensorNames`] listing **all** of them), another element type
//! ([`Error::TensorDtype`]), another shape ([`Error::TensorShape`]) each fail with the
//! network untouched. A file of the other width (`F32` into an `f64` network, or the reverse)
//! loads only with [`Load::convert_dtype`]. [`Load::partial`] loads the params the file has
//! and reports, in a [`LoadReport`], which it set, which it left and which tensors it did not
//! use.
//!
//! # PyTorch
//!
//! PyTorch's `nn.Linear(in, out)` computes `x·Wᵀ + b` with `weight` of shape `[out, in]`;
//! miniflow's `linear(x, W, b)` computes `x·W + b` with `W: [in, out]`. Names differ too
//! (`0.weight` for the first layer of an `nn.Sequential`). Both are explicit, never guessed:
//! [`Load::rename`] and [`Save::rename`] map names, [`Load::transpose`] and
//! [`Save::transpose`] transpose a 2-D param, and `torch_linear` does both for one layer.
//!
//! ```no_run
//! use miniflow_core::persist::{Load, Save};
//! # fn demo<N: miniflow_core::Network<Elem = f64>>(net: &mut N) -> miniflow_core::Result<()> {
//! // nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)), saved by
//! // safetensors.torch.save_file(model.state_dict(), "torch.safetensors"):
//! Load::new()
//!     .torch_linear("0", "W1", "b1") // 0.weight -> W1 (transposed), 0.bias -> b1
//!     .torch_linear("2", "W2", "b2")
//!     .load(net, "torch.safetensors")?;
//! // And back, for model.load_state_dict(safetensors.torch.load_file(...)):
//! Save::new()
//!     .torch_linear("W1", "b1", "0")
//!     .torch_linear("W2", "b2", "2")
//!     .save(&*net, "for_torch.safetensors")?;
//! # Ok(()) }
//! ```
//!
//! # Training state ([`Checkpoint`], [`Stateful`])
//!
//! A [`Checkpoint`] holds, under keys you choose, a network's params and the state of
//! anything [`Stateful`]: [`Adam`](crate::Adam) (moments, step count, settings),
//! [`Momentum`](crate::Momentum) (velocities), [`Sgd`](crate::Sgd), the samplers
//! ([`Shuffled`](crate::data::Shuffled), [`WithReplacement`](crate::data::WithReplacement):
//! order, position, generator state), [`Rng`](crate::Rng) and
//! [`Standardizer`](crate::data::Standardizer), plus numbers such as the epoch. Saved after
//! epoch 5 and restored into fresh objects, a run continues bit for bit as if it had never
//! stopped.
//!
//! # Atomic writes
//!
//! Every file is written to a temporary file in the same directory, flushed to disk, then
//! renamed over the target: a crash or a full disk never leaves a truncated file where a good
//! one was.

mod file;
mod state;

pub use state::{Checkpoint, Stateful};

use crate::error::{Error, Result};
use crate::{Network, NodeKind};
use file::{array_of, dtype_name, dtype_of, encode_values, io_error, TensorData, Tensors};
use ndarray::{ArrayD, Ix2};
use safetensors::tensor::Dtype;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

/// The version written in `miniflow.version`; bumped if the layout of files changes.
pub const FORMAT_VERSION: &str = "1";

/// The names of `net`'s params, in source order.
fn param_names<N: Network + ?Sized>(net: &N) -> Vec<&'static str> {
    net.spec()
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Param)
        .map(|n| n.name)
        .collect()
}

/// Saves every param of `net` to a safetensors file at `path`, under its name, atomically.
/// See [`Save`] for names, layouts and metadata.
pub fn save<N: Network + ?Sized>(net: &N, path: impl AsRef<Path>) -> Result<()> {
    Save::new().save(net, path)
}

/// Loads every param of `net` from the safetensors file at `path`: all of them or, on any
/// error, none. See [`Load`] for renaming, transposing, converting and partial loads.
pub fn load<N: Network + ?Sized>(net: &mut N, path: impl AsRef<Path>) -> Result<LoadReport> {
    Load::new().load(net, path)
}

/// How to save params: tensor names, layouts and extra metadata. [`save`] is
/// `Save::new().save(net, path)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Save {
    /// param name -> tensor name.
    renames: BTreeMap<String, String>,
    /// Params to store transposed.
    transpose: BTreeSet<String>,
    metadata: BTreeMap<String, String>,
}

impl Save {
    /// Every param under its own name, as it is.
    pub fn new() -> Self {
        Save::default()
    }

    /// Stores param `param` under the tensor name `tensor` (e.g. `"W1"` as `"0.weight"`).
    pub fn rename(mut self, param: &str, tensor: &str) -> Self {
        self.renames.insert(param.to_string(), tensor.to_string());
        self
    }

    /// Stores the 2-D param `param` transposed (`[in, out]` as `[out, in]`, PyTorch's
    /// `nn.Linear.weight` layout).
    pub fn transpose(mut self, param: &str) -> Self {
        self.transpose.insert(param.to_string());
        self
    }

    /// Stores the layer `linear(x, weight, bias)` as PyTorch's `nn.Linear` named `prefix`:
    /// `weight` transposed as `{prefix}.weight`, `bias` as `{prefix}.bias`.
    pub fn torch_linear(self, weight: &str, bias: &str, prefix: &str) -> Self {
        self.rename(weight, &format!("{prefix}.weight"))
            .transpose(weight)
            .rename(bias, &format!("{prefix}.bias"))
    }

    /// Adds a metadata entry (a string the file carries beside the tensors).
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_string(), value.to_string());
        self
    }

    /// The params of `net` as named tensors, with the metadata; `prefix` is put before every
    /// tensor name (for checkpoints).
    fn collect<N: Network + ?Sized>(&self, net: &N, prefix: &str, out: &mut Tensors) -> Result<()> {
        let names = param_names(net);
        if let Some(unknown) = self
            .renames
            .keys()
            .chain(&self.transpose)
            .find(|k| !names.contains(&k.as_str()))
        {
            return Err(Error::UnknownNode {
                name: unknown.clone(),
                suggestion: crate::error::closest(unknown, names.iter().copied()),
            });
        }
        for name in names {
            let value = net.value_dyn(name)?;
            let tensor_name = format!(
                "{prefix}{}",
                self.renames.get(name).map_or(name, String::as_str)
            );
            let tensor = if self.transpose.contains(name) {
                let m = value
                    .into_dimensionality::<Ix2>()
                    .map_err(|_| Error::InvalidArgument {
                        function: "Save::transpose",
                        what: format!("`{name}` is not 2-D, so it cannot be transposed"),
                    })?;
                let t = m.t();
                TensorData {
                    dtype: dtype_of::<N::Elem>(),
                    shape: t.shape().to_vec(),
                    bytes: encode_values(t.iter()),
                }
            } else {
                file::tensor_of(value)
            };
            out.metadata.insert(
                format!("miniflow.shape.{tensor_name}"),
                format!("{:?}", tensor.shape),
            );
            out.tensors.insert(tensor_name, tensor);
        }
        Ok(())
    }

    fn tensors<N: Network + ?Sized>(&self, net: &N) -> Result<Tensors> {
        let mut out = Tensors::default();
        self.collect(net, "", &mut out)?;
        out.metadata.insert("format".into(), "miniflow".into());
        out.metadata
            .insert("miniflow.version".into(), FORMAT_VERSION.into());
        out.metadata
            .insert("miniflow.network".into(), net.spec().name.into());
        out.metadata.extend(self.metadata.clone());
        Ok(out)
    }

    /// The safetensors bytes of `net`'s params.
    pub fn to_bytes<N: Network + ?Sized>(&self, net: &N) -> Result<Vec<u8>> {
        self.tensors(net)?.to_bytes()
    }

    /// Writes `net`'s params to `writer` (not atomic: see [`save`](Save::save) for files).
    pub fn write<N: Network + ?Sized>(&self, net: &N, mut writer: impl Write) -> Result<()> {
        let bytes = self.to_bytes(net)?;
        writer
            .write_all(&bytes)
            .and_then(|()| writer.flush())
            .map_err(|e| io_error("(writer)", &e))
    }

    /// Writes `net`'s params to the file at `path`, atomically: the file holds either what
    /// it held before or all of the new contents.
    pub fn save<N: Network + ?Sized>(&self, net: &N, path: impl AsRef<Path>) -> Result<()> {
        self.tensors(net)?.write(path.as_ref())
    }
}

/// How to load params: name map, transposes, element type conversion, partial loads.
/// [`load`] is `Load::new().load(net, path)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// tensor name -> param name.
    renames: BTreeMap<String, String>,
    /// Params whose tensor is stored transposed.
    transpose: BTreeSet<String>,
    partial: bool,
    convert: bool,
}

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The params set, in source order.
    pub set: Vec<String>,
    /// The params left as they were (only with [`Load::partial`]), in source order.
    pub left: Vec<String>,
    /// Tensors of the file that no param took (only with [`Load::partial`]), sorted.
    pub unused: Vec<String>,
    /// The network type name the file says it was saved from (`miniflow.network`), if any.
    pub saved_from: Option<String>,
}

impl Load {
    /// A strict load: every param from a tensor of its own name, shape and element type, and
    /// no other tensor in the file.
    pub fn new() -> Self {
        Load::default()
    }

    /// Fills param `param` from the tensor named `tensor` (e.g. `"0.weight"` into `"W1"`).
    pub fn rename(mut self, tensor: &str, param: &str) -> Self {
        self.renames.insert(tensor.to_string(), param.to_string());
        self
    }

    /// The tensor for the 2-D param `param` is stored transposed (`[out, in]`, PyTorch's
    /// `nn.Linear.weight`): transpose it on loading.
    pub fn transpose(mut self, param: &str) -> Self {
        self.transpose.insert(param.to_string());
        self
    }

    /// Loads PyTorch's `nn.Linear` named `prefix` into `linear(x, weight, bias)`:
    /// `{prefix}.weight` transposed into `weight`, `{prefix}.bias` into `bias`.
    pub fn torch_linear(self, prefix: &str, weight: &str, bias: &str) -> Self {
        self.rename(&format!("{prefix}.weight"), weight)
            .transpose(weight)
            .rename(&format!("{prefix}.bias"), bias)
    }

    /// Whether to load only the params the file has (reporting the others as left, and the
    /// tensors no param takes as unused) instead of requiring a tensor for every param and a
    /// param for every tensor. Shapes and element types are still checked, all or nothing.
    pub fn partial(mut self, partial: bool) -> Self {
        self.partial = partial;
        self
    }

    /// Whether to convert a file of the other floating-point width (`F32` into an `f64`
    /// network, exactly; `F64` into `f32`, rounding) instead of failing. A value that does not
    /// fit `f32` is still an error.
    pub fn convert_dtype(mut self, convert: bool) -> Self {
        self.convert = convert;
        self
    }

    /// Loads `net`'s params from the safetensors file at `path`. On any error nothing has
    /// changed.
    pub fn load<N: Network + ?Sized>(
        &self,
        net: &mut N,
        path: impl AsRef<Path>,
    ) -> Result<LoadReport> {
        let path = path.as_ref();
        let tensors = Tensors::read(path)?;
        self.apply(net, &tensors, "", &path.display().to_string())
    }

    /// Loads `net`'s params from safetensors `bytes` (`name` names them in errors).
    pub fn from_bytes<N: Network + ?Sized>(
        &self,
        net: &mut N,
        bytes: &[u8],
        name: &str,
    ) -> Result<LoadReport> {
        let tensors = Tensors::from_bytes(bytes, name)?;
        self.apply(net, &tensors, "", name)
    }

    /// Checks, converts, then sets; `prefix` selects the tensors of one network in a
    /// checkpoint (the rest of the file is not this load's business).
    pub(crate) fn apply<N: Network + ?Sized>(
        &self,
        net: &mut N,
        file: &Tensors,
        prefix: &str,
        file_name: &str,
    ) -> Result<LoadReport> {
        let names = param_names(net);
        if let Some(unknown) = self
            .renames
            .values()
            .chain(&self.transpose)
            .find(|k| !names.contains(&k.as_str()))
        {
            return Err(Error::UnknownNode {
                name: unknown.clone(),
                suggestion: crate::error::closest(unknown, names.iter().copied()),
            });
        }
        // param name -> tensor name, for every tensor of this prefix.
        let mut source: BTreeMap<&str, &str> = BTreeMap::new();
        let mut unused = Vec::new();
        for tensor in file.tensors.keys().filter_map(|k| k.strip_prefix(prefix)) {
            let param = self.renames.get(tensor).map_or(tensor, String::as_str);
            match names.iter().find(|&&n| n == param) {
                Some(&p) => {
                    if let Some(other) = source.insert(p, tensor) {
                        return Err(Error::InvalidArgument {
                            function: "Load::load",
                            what: format!(
                                "both `{other}` and `{tensor}` in `{file_name}` would fill `{p}`; drop one with a rename"
                            ),
                        });
                    }
                }
                None => unused.push(tensor.to_string()),
            }
        }
        let (mut set, mut left) = (Vec::new(), Vec::new());
        for &name in &names {
            if source.contains_key(name) {
                set.push(name.to_string());
            } else {
                left.push(name.to_string());
            }
        }
        if !self.partial && (!left.is_empty() || !unused.is_empty()) {
            return Err(Error::TensorNames {
                file: file_name.to_string(),
                missing: left,
                unexpected: unused,
            });
        }

        // Every value is checked and converted before the first is set.
        let want = dtype_of::<N::Elem>();
        let mut values: Vec<(&str, ArrayD<N::Elem>)> = Vec::new();
        for (&param, &tensor) in &source {
            let full = format!("{prefix}{tensor}");
            let Some(t) = file.tensors.get(&full) else {
                continue;
            };
            let dtype_err = || Error::TensorDtype {
                file: file_name.to_string(),
                tensor: full.clone(),
                param: param.to_string(),
                expected: dtype_name(want),
                found: dtype_name(t.dtype),
            };
            let convertible = matches!(t.dtype, Dtype::F32 | Dtype::F64);
            if t.dtype != want && !(self.convert && convertible) {
                return Err(dtype_err());
            }
            let mut array = array_of::<N::Elem>(t).ok_or_else(dtype_err)?;
            if t.dtype == Dtype::F64
                && want == Dtype::F32
                && array.iter().any(|v| !num_traits::Float::is_finite(*v))
                && file::array_of::<f64>(t).is_some_and(|a| a.iter().all(|v| v.is_finite()))
            {
                return Err(Error::InvalidArgument {
                    function: "Load::convert_dtype",
                    what: format!(
                        "`{full}` in `{file_name}` has values beyond f32's range; they cannot be loaded into the f32 param `{param}`"
                    ),
                });
            }
            if self.transpose.contains(param) {
                array = match array.into_dimensionality::<Ix2>() {
                    Ok(m) => m
                        .reversed_axes()
                        .as_standard_layout()
                        .into_owned()
                        .into_dyn(),
                    Err(_) => {
                        return Err(Error::TensorShape {
                            file: file_name.to_string(),
                            tensor: full.clone(),
                            param: param.to_string(),
                            expected: net.value_dyn(param)?.shape().into(),
                            found: t.shape.as_slice().into(),
                        })
                    }
                };
            }
            let expected = net.value_dyn(param)?.shape().to_vec();
            if array.shape() != expected.as_slice() {
                return Err(Error::TensorShape {
                    file: file_name.to_string(),
                    tensor: full,
                    param: param.to_string(),
                    expected: expected.into(),
                    found: array.shape().into(),
                });
            }
            values.push((param, array));
        }

        // Set all; should a set fail after checks that passed, put back what was set.
        let mut done: Vec<(&str, ArrayD<N::Elem>)> = Vec::new();
        for (param, value) in &values {
            let old = net.value_dyn(param)?.to_owned();
            if let Err(e) = net.set_param(param, value.view()) {
                for (p, v) in done.iter().rev() {
                    let _ = net.set_param(p, v.view());
                }
                return Err(e);
            }
            done.push((param, old));
        }
        Ok(LoadReport {
            set,
            left,
            unused,
            saved_from: file.metadata.get("miniflow.network").cloned(),
        })
    }
}

/// The params of `net` under `prefix`, for a checkpoint.
pub(crate) fn collect_params<N: Network + ?Sized>(
    net: &N,
    prefix: &str,
    out: &mut Tensors,
) -> Result<()> {
    Save::new().collect(net, prefix, out)
}
