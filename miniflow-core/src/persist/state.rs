//! Training state: a [`Checkpoint`] file of named entries, and the [`Stateful`] objects that
//! write themselves into one and read themselves back.

use super::file::{self, dtype_of, u64_tensor, u64_values, Tensors};
use super::Load;
use crate::data::{Shuffled, Standardizer, WithReplacement};
use crate::error::{Error, Result};
use crate::optim::Slots;
use crate::{Adam, Momentum, Network, Rng, Scalar, Sgd};
use ndarray::{Array1, ArrayD, ArrayViewD, Ix1};
use std::path::Path;

/// Anything whose state a [`Checkpoint`] can keep: optimizers, samplers, generators,
/// scalers. Implement it for your own types with the checkpoint's typed entries
/// ([`Checkpoint::put_array`], [`Checkpoint::put_u64s`], ...).
pub trait Stateful {
    /// Writes this object's state into `ck` under `key` (entries named `{key}.…`).
    fn save_state(&self, key: &str, ck: &mut Checkpoint);

    /// Reads the state saved under `key`. Everything is checked first: on error `self` has
    /// not changed.
    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()>;
}

/// Training state in one safetensors file: a network's params and the state of optimizers,
/// samplers, generators and scalers, each under a key, plus plain numbers (an epoch).
///
/// ```no_run
/// use miniflow_core::data::Shuffled;
/// use miniflow_core::persist::Checkpoint;
/// use miniflow_core::{Adam, Network};
/// # fn demo<N: Network<Elem = f64>>(net: &mut N, adam: &mut Adam<f64>, sampler: &mut Shuffled) -> miniflow_core::Result<()> {
/// let mut ck = Checkpoint::new();
/// ck.put_params("model", &*net)?
///     .put("adam", adam)
///     .put("sampler", sampler)
///     .put_u64("epoch", 5);
/// ck.save("run.safetensors")?; // atomic
///
/// let ck = Checkpoint::load("run.safetensors")?;
/// ck.load_params("model", net)?;
/// ck.restore("adam", adam)?;
/// ck.restore("sampler", sampler)?;
/// let epoch = ck.u64("epoch")?;
/// # let _ = epoch; Ok(()) }
/// ```
///
/// The file is plain safetensors: params are tensors `model.W1`, ...; Adam's moments
/// `adam.m.0`, ... (in the network's element type); counters and generator states `U64`
/// tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    inner: Tensors,
    /// Where it was read from, for messages.
    file: String,
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Checkpoint {
            inner: Tensors::default(),
            file: "(checkpoint)".to_string(),
        }
    }

    /// Reads a checkpoint file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(Checkpoint {
            inner: Tensors::read(path)?,
            file: path.display().to_string(),
        })
    }

    /// Reads a checkpoint from safetensors bytes (`name` names them in errors).
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        Ok(Checkpoint {
            inner: Tensors::from_bytes(bytes, name)?,
            file: name.to_string(),
        })
    }

    /// Writes the checkpoint to `path`, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut t = self.inner.clone();
        t.metadata
            .insert("format".into(), "miniflow-checkpoint".into());
        t.metadata
            .insert("miniflow.version".into(), super::FORMAT_VERSION.into());
        t.write(path.as_ref())
    }

    /// The checkpoint as safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.inner.to_bytes()
    }

    /// The names of its tensors, sorted.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.inner.tensors.keys().map(String::as_str)
    }

    fn bad(&self, what: String) -> Error {
        Error::BadState {
            file: self.file.clone(),
            what,
        }
    }

    /// Stores every param of `net` as tensors `{key}.{param}`.
    pub fn put_params<N: Network + ?Sized>(&mut self, key: &str, net: &N) -> Result<&mut Self> {
        super::collect_params(net, &format!("{key}."), &mut self.inner)?;
        self.inner
            .metadata
            .insert(format!("{key}.network"), net.spec().name.to_string());
        Ok(self)
    }

    /// Loads every param of `net` from the tensors `{key}.{param}`, strictly (every param,
    /// no other tensor under `key`, same shapes and element type): all or nothing.
    pub fn load_params<N: Network + ?Sized>(&self, key: &str, net: &mut N) -> Result<()> {
        let prefix = format!("{key}.");
        if !self.inner.tensors.keys().any(|k| k.starts_with(&prefix)) {
            return Err(self.bad(format!("there are no params under `{key}`")));
        }
        Load::new()
            .apply(net, &self.inner, &prefix, &self.file)
            .map(|_| ())
    }

    /// Stores the state of `state` under `key`.
    pub fn put<S: Stateful + ?Sized>(&mut self, key: &str, state: &S) -> &mut Self {
        state.save_state(key, self);
        self
    }

    /// Restores `state` from what was stored under `key`; on error `state` is unchanged.
    pub fn restore<S: Stateful + ?Sized>(&self, key: &str, state: &mut S) -> Result<()> {
        state.load_state(key, self)
    }

    /// Stores a number (e.g. the epoch reached) under `key`.
    pub fn put_u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.put_u64s(key, &[value])
    }

    /// The number stored under `key`.
    pub fn u64(&self, key: &str) -> Result<u64> {
        match self.u64s(key)?.as_slice() {
            [v] => Ok(*v),
            other => Err(self.bad(format!("`{key}` holds {} numbers, not one", other.len()))),
        }
    }

    /// Stores integers under `key` (a 1-D `U64` tensor).
    pub fn put_u64s(&mut self, key: &str, values: &[u64]) -> &mut Self {
        self.inner
            .tensors
            .insert(key.to_string(), u64_tensor(values));
        self
    }

    /// The integers stored under `key`.
    pub fn u64s(&self, key: &str) -> Result<Vec<u64>> {
        let t = self.tensor(key)?;
        u64_values(t).ok_or_else(|| {
            self.bad(format!(
                "`{key}` is a {:?} tensor of shape {:?}, not a list of U64",
                t.dtype, t.shape
            ))
        })
    }

    /// Stores an array under `key`, in its element type.
    pub fn put_array<T: Scalar>(&mut self, key: &str, value: ArrayViewD<'_, T>) -> &mut Self {
        self.inner
            .tensors
            .insert(key.to_string(), file::tensor_of(value));
        self
    }

    /// The array stored under `key`, which must be of element type `T` exactly.
    pub fn array<T: Scalar>(&self, key: &str) -> Result<ArrayD<T>> {
        let t = self.tensor(key)?;
        if t.dtype != dtype_of::<T>() {
            return Err(Error::TensorDtype {
                file: self.file.clone(),
                tensor: key.to_string(),
                param: key.to_string(),
                expected: file::dtype_name(dtype_of::<T>()),
                found: file::dtype_name(t.dtype),
            });
        }
        file::array_of::<T>(t).ok_or_else(|| self.bad(format!("`{key}` cannot be read")))
    }

    /// Stores a string under `key` (safetensors metadata).
    pub fn set_metadata(&mut self, key: &str, value: &str) -> &mut Self {
        self.inner
            .metadata
            .insert(key.to_string(), value.to_string());
        self
    }

    /// The string stored under `key`, if any.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.inner.metadata.get(key).map(String::as_str)
    }

    fn tensor(&self, key: &str) -> Result<&file::TensorData> {
        self.inner.tensors.get(key).ok_or_else(|| {
            let prefix = key.split('.').next().unwrap_or(key);
            let near: Vec<&str> = self
                .tensor_names()
                .filter(|k| k.starts_with(prefix))
                .take(8)
                .collect();
            self.bad(format!(
                "no entry `{key}`{}; was the state saved under another key?",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(" (entries starting with `{prefix}`: {})", near.join(", "))
                }
            ))
        })
    }

    /// A vector of `T` of exactly `n` elements under `key`.
    fn values<T: Scalar>(&self, key: &str, n: usize) -> Result<Vec<T>> {
        let a = self.array::<T>(key)?;
        if a.len() != n {
            return Err(self.bad(format!("`{key}` has {} value(s), expected {n}", a.len())));
        }
        Ok(a.iter().copied().collect())
    }

    fn put_slots<T: Scalar>(&mut self, key: &str, slots: &Slots<T>) {
        self.put_u64(&format!("{key}.slots"), slots.bufs.len() as u64);
        for (i, (buf, name)) in slots.bufs.iter().zip(&slots.names).enumerate() {
            self.put_array(&format!("{key}.{i}"), buf.view());
            self.set_metadata(&format!("{key}.{i}.param"), name);
        }
    }

    fn slots<T: Scalar>(&self, key: &str) -> Result<Slots<T>> {
        let n = self.u64(&format!("{key}.slots"))?;
        let n = usize::try_from(n).map_err(|_| self.bad(format!("`{key}.slots` is {n}")))?;
        let mut slots = Slots::default();
        for i in 0..n {
            slots.bufs.push(self.array::<T>(&format!("{key}.{i}"))?);
            let name = format!("{key}.{i}.param");
            let param = self
                .metadata(&name)
                .ok_or_else(|| self.bad(format!("no `{name}` metadata naming the param")))?;
            slots.names.push(param.to_string());
        }
        Ok(slots)
    }
}

impl Stateful for Rng {
    /// `{key}.state`: the four state words, whether a normal is pending, and its bits.
    fn save_state(&self, key: &str, ck: &mut Checkpoint) {
        let [a, b, c, d] = self.s;
        let (has, bits) = self.spare.map_or((0, 0), |z| (1, z.to_bits()));
        ck.put_u64s(&format!("{key}.state"), &[a, b, c, d, has, bits]);
    }

    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()> {
        let name = format!("{key}.state");
        match ck.u64s(&name)?.as_slice() {
            &[a, b, c, d, has, bits] if [a, b, c, d] != [0; 4] && has <= 1 => {
                self.s = [a, b, c, d];
                self.spare = (has == 1).then(|| f64::from_bits(bits));
                Ok(())
            }
            other => Err(ck.bad(format!(
                "`{name}` is not a generator state (6 words, not all zero): {other:?}"
            ))),
        }
    }
}

impl Stateful for Shuffled<Rng> {
    /// `{key}.order` (this epoch's order), `{key}.config` (batch size, drop last, shuffle,
    /// position), `{key}.rng.state`.
    fn save_state(&self, key: &str, ck: &mut Checkpoint) {
        let order: Vec<u64> = self.order.iter().map(|&i| i as u64).collect();
        ck.put_u64s(&format!("{key}.order"), &order);
        ck.put_u64s(
            &format!("{key}.config"),
            &[
                self.batch_size as u64,
                u64::from(self.drop_last),
                u64::from(self.shuffle),
                self.pos as u64,
            ],
        );
        ck.put(&format!("{key}.rng"), &self.rng);
    }

    /// The sample count and batch size must be this sampler's (the same data set).
    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()> {
        let n = self.order.len();
        let order = ck.u64s(&format!("{key}.order"))?;
        let mut seen = vec![false; n];
        let permutation = order.len() == n
            && order.iter().all(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| seen.get_mut(i))
                    .is_some_and(|s| !std::mem::replace(s, true))
            });
        if !permutation {
            return Err(ck.bad(format!(
                "`{key}.order` is not an order of this sampler's {n} samples (it has {}): was it saved for another data set?",
                order.len()
            )));
        }
        let &[batch, drop_last, shuffle, pos] = ck.u64s(&format!("{key}.config"))?.as_slice()
        else {
            return Err(ck.bad(format!("`{key}.config` is not a Shuffled sampler's")));
        };
        if batch != self.batch_size as u64 || drop_last > 1 || shuffle > 1 || pos > n as u64 {
            return Err(ck.bad(format!(
                "`{key}` is a sampler of batch size {batch} at position {pos}; this one has batch size {}",
                self.batch_size
            )));
        }
        let mut rng = self.rng.clone();
        rng.load_state(&format!("{key}.rng"), ck)?;
        self.order = order.into_iter().map(|i| i as usize).collect();
        self.drop_last = drop_last == 1;
        self.shuffle = shuffle == 1;
        self.pos = pos as usize;
        self.rng = rng;
        Ok(())
    }
}

impl Stateful for WithReplacement<Rng> {
    /// `{key}.config` (samples, batch size, batches per epoch, batches drawn this epoch),
    /// `{key}.rng.state`.
    fn save_state(&self, key: &str, ck: &mut Checkpoint) {
        ck.put_u64s(
            &format!("{key}.config"),
            &[
                self.n as u64,
                self.buf.len() as u64,
                self.steps as u64,
                self.step as u64,
            ],
        );
        ck.put(&format!("{key}.rng"), &self.rng);
    }

    /// The sample count and batch size must be this sampler's.
    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()> {
        let &[n, batch, steps, step] = ck.u64s(&format!("{key}.config"))?.as_slice() else {
            return Err(ck.bad(format!("`{key}.config` is not a WithReplacement sampler's")));
        };
        if n != self.n as u64 || batch != self.buf.len() as u64 || steps == 0 || step > steps {
            return Err(ck.bad(format!(
                "`{key}` draws batches of {batch} from {n} samples; this sampler draws {} from {}: was it saved for another data set?",
                self.buf.len(),
                self.n
            )));
        }
        let steps =
            usize::try_from(steps).map_err(|_| ck.bad(format!("`{key}`: {steps} steps")))?;
        let mut rng = self.rng.clone();
        rng.load_state(&format!("{key}.rng"), ck)?;
        self.steps = steps;
        self.step = step as usize;
        self.rng = rng;
        Ok(())
    }
}

impl<T: Scalar> Stateful for Standardizer<T> {
    /// `{key}.mean` and `{key}.std`, in `T`.
    fn save_state(&self, key: &str, ck: &mut Checkpoint) {
        ck.put_array(&format!("{key}.mean"), self.mean.view().into_dyn());
        ck.put_array(&format!("{key}.std"), self.std.view().into_dyn());
    }

    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()> {
        let vector = |name: String| -> Result<Array1<T>> {
            ck.array::<T>(&name)?
                .into_dimensionality::<Ix1>()
                .map_err(|_| ck.bad(format!("`{name}` is not a vector")))
        };
        let mean = vector(format!("{key}.mean"))?;
        let std = vector(format!("{key}.std"))?;
        if mean.len() != std.len()
            || !mean.iter().all(|v| v.is_finite())
            || !std.iter().all(|&s| s.is_finite() && s > T::zero())
        {
            return Err(ck.bad(format!(
                "`{key}` is not a scaler: means and divisors must be as many, finite, and the divisors positive"
            )));
        }
        self.mean = mean;
        self.std = std;
        Ok(())
    }
}

impl<T: Scalar> Stateful for Sgd<T> {
    /// `{key}.lr`.
    fn save_state(&self, key: &str, ck: &mut Checkpoint) {
        ck.put_array(
            &format!("{key}.lr"),
            ndarray::arr1(&[self.lr]).into_dyn().view(),
        );
    }

    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()> {
        let [lr] = ck.values::<T>(&format!("{key}.lr"), 1)?[..] else {
            return Err(ck.bad(format!("`{key}.lr`")));
        };
        self.lr = lr;
        Ok(())
    }
}

impl<T: Scalar> Stateful for Momentum<T> {
    /// `{key}.settings` (lr, momentum), `{key}.nesterov`, and the velocities
    /// `{key}.velocity.{index}` (with the param's name in the metadata).
    fn save_state(&self, key: &str, ck: &mut Checkpoint) {
        ck.put_array(
            &format!("{key}.settings"),
            ndarray::arr1(&[self.lr, self.momentum]).into_dyn().view(),
        );
        ck.put_u64(&format!("{key}.nesterov"), u64::from(self.nesterov));
        ck.put_slots(&format!("{key}.velocity"), &self.velocity);
    }

    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()> {
        let [lr, momentum] = ck.values::<T>(&format!("{key}.settings"), 2)?[..] else {
            return Err(ck.bad(format!("`{key}.settings`")));
        };
        let nesterov = ck.u64(&format!("{key}.nesterov"))?;
        let velocity = ck.slots::<T>(&format!("{key}.velocity"))?;
        self.lr = lr;
        self.momentum = momentum;
        self.nesterov = nesterov == 1;
        self.velocity = velocity;
        Ok(())
    }
}

impl<T: Scalar> Stateful for Adam<T> {
    /// `{key}.settings` (lr, β1, β2, ε), `{key}.t` (the step count), and the moments
    /// `{key}.m.{index}`, `{key}.v.{index}` (with the param's name in the metadata).
    fn save_state(&self, key: &str, ck: &mut Checkpoint) {
        ck.put_array(
            &format!("{key}.settings"),
            ndarray::arr1(&[self.lr, self.beta1, self.beta2, self.eps])
                .into_dyn()
                .view(),
        );
        ck.put_u64(&format!("{key}.t"), self.t);
        ck.put_slots(&format!("{key}.m"), &self.m);
        ck.put_slots(&format!("{key}.v"), &self.v);
    }

    fn load_state(&mut self, key: &str, ck: &Checkpoint) -> Result<()> {
        let [lr, beta1, beta2, eps] = ck.values::<T>(&format!("{key}.settings"), 4)?[..] else {
            return Err(ck.bad(format!("`{key}.settings`")));
        };
        let t = ck.u64(&format!("{key}.t"))?;
        let m = ck.slots::<T>(&format!("{key}.m"))?;
        let v = ck.slots::<T>(&format!("{key}.v"))?;
        let matched = m.bufs.len() == v.bufs.len()
            && m.names == v.names
            && m.bufs
                .iter()
                .zip(&v.bufs)
                .all(|(a, b)| a.shape() == b.shape());
        if !matched {
            return Err(ck.bad(format!(
                "`{key}`: the first and second moments do not belong to the same params"
            )));
        }
        self.lr = lr;
        self.beta1 = beta1;
        self.beta2 = beta2;
        self.eps = eps;
        self.t = t;
        self.m = m;
        self.v = v;
        Ok(())
    }
}
