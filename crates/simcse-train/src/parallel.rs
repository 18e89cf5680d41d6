//! Data-parallel training on several devices, through burn's collective layer (`burn-collective`).
//!
//! Each device holds a replica of the weights and of the optimizer state and embeds its shard of
//! the batch (`TrainBatch::shard_range`). The shards' embeddings are gathered, so the contrastive
//! loss sees the negatives of the whole batch, as the official SimCSE's `all_gather` does: every
//! device computes the same global loss, in which only its own rows carry a graph, so its backward
//! pass yields exactly its shard's share of the global gradient. The shares are summed with an
//! all-reduce, and each device takes the same optimizer step.
//!
//! burn 0.21's collective layer has all-reduce, reduce and broadcast, but no all-gather. The gather
//! is an all-reduce: each device writes its rows into a zero buffer of the global batch's shape, and
//! the sum is the gathered batch exactly (adding zeros rounds nothing). All-reduce is also the one
//! operation burn's multi-node mode runs across machines.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation};

use crate::trainer::{Result, TrainError};

/// Where a device stands in a group of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rank {
    pub index: usize,
    pub count: usize,
}

impl Rank {
    pub(crate) fn peer(self) -> PeerId {
        self.index.into()
    }

    /// The dropout seed of this device's shard in an update seeded `seed`: device 0 keeps the
    /// update's own seed (so one device trains as before), the others draw masks of their own.
    pub(crate) fn seed(self, seed: u64) -> u64 {
        seed ^ (self.index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
    }
}

/// Dropout draws from one RNG per backend and process (`Backend::seed`), so devices that train at
/// once take turns to seed it and run their forward passes; backward passes, which draw nothing,
/// overlap. On a GPU the turn only covers launching the kernels.
pub(crate) fn seeded<B: Backend, T>(device: &B::Device, seed: u64, f: impl FnOnce() -> T) -> T {
    static RNG: Mutex<()> = Mutex::new(());
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    f()
}

pub(crate) fn collective(what: &str, e: burn_collective::CollectiveError) -> TrainError {
    TrainError::Collective(format!("{what}: {e:?}"))
}

/// `local` (this device's pooled rows, view-major over `examples` of the batch) within the whole
/// batch's rows: the other devices' rows as constants, its own with their graph.
pub(crate) fn gather<B: AutodiffBackend>(
    rank: Rank,
    local: Tensor<B, 2>,
    examples: &Range<usize>,
    total: usize,
) -> Result<Tensor<B, 2>> {
    let [rows, hidden] = local.dims();
    let views = rows / examples.len().max(1);
    let values = local.clone().inner();
    let mut buffer = Tensor::<B::InnerBackend, 2>::zeros([views * total, hidden], &values.device());
    for v in 0..views {
        let (n, at) = (examples.len(), v * total + examples.start);
        let part = values.clone().narrow(0, v * n, n);
        buffer = buffer.slice_assign([at..at + n, 0..hidden], part);
    }
    let summed = burn_collective::all_reduce::<B::InnerBackend>(
        rank.peer(),
        buffer.into_primitive().tensor(),
        ReduceOperation::Sum,
    )
    .map_err(|e| collective("gathering the embeddings", e))?;
    let global = Tensor::<B, 2>::from_inner(Tensor::from_primitive(TensorPrimitive::Float(summed)));
    let mut parts = Vec::with_capacity(3 * views);
    for v in 0..views {
        let (n, start) = (examples.len(), v * total);
        if examples.start > 0 {
            parts.push(global.clone().narrow(0, start, examples.start));
        }
        parts.push(local.clone().narrow(0, v * n, n));
        if examples.end < total {
            parts.push(
                global
                    .clone()
                    .narrow(0, start + examples.end, total - examples.end),
            );
        }
    }
    Ok(Tensor::cat(parts, 0))
}

/// Runs `f` on every device at once, `units[0]` on the calling thread and the others on threads of
/// their own, and returns the first one's result. On several devices each run registers them with
/// burn's collective layer and unregisters them at the end: burn keeps one collective server per
/// backend and process, so runs take turns (trainers on several devices can coexist in a process).
/// A device that fails or panics resets the collective, so that no other device waits for it
/// forever; the error returned names the device that failed first, not one that stopped waiting.
pub(crate) fn on_each<B: Backend, D: Send, T: Send>(
    units: Vec<(String, B::Device, D)>,
    f: impl Fn(D) -> Result<T> + Sync,
) -> Result<T> {
    let count = units.len();
    let mut units = units.into_iter().enumerate();
    let Some(first) = units.next() else {
        return Err(TrainError::Config("no device to train on".into()));
    };
    if count == 1 {
        return f(first.1.2);
    }
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    burn_collective::reset_collective::<B>();
    // Ring: each device sends 2(N-1)/N of a tensor, where burn's default tree sends 2 log2(N)
    // whole copies one after another (BENCHMARKS.md, "Several devices").
    let config = CollectiveConfig::default()
        .with_num_devices(count)
        .with_local_all_reduce_strategy(AllReduceStrategy::Ring);
    let run = |(index, (name, device, unit)): (usize, (String, B::Device, D))| {
        let out = catch_unwind(AssertUnwindSafe(|| {
            burn_collective::register::<B>(index.into(), device, config.clone())
                .map_err(|e| collective("registering", e))?;
            let out = f(unit)?;
            burn_collective::finish_collective::<B>(index.into())
                .map_err(|e| collective("unregistering", e))?;
            Ok(out)
        }));
        let out = out.unwrap_or_else(|panic| {
            let what = (panic.downcast_ref::<String>().cloned())
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(TrainError::Panicked(what.unwrap_or_default()))
        });
        out.map_err(|e| {
            burn_collective::reset_collective::<B>();
            TrainError::Device {
                device: name,
                source: Box::new(e),
            }
        })
    };
    let (mine, others) = std::thread::scope(|s| {
        let joins: Vec<_> = units.map(|u| s.spawn(|| run(u).map(drop))).collect();
        let mine = run(first);
        let others: Vec<Result<()>> = (joins.into_iter())
            .map(|j| j.join().unwrap_or(Ok(())))
            .collect();
        (mine, others)
    });
    let mut errors: Vec<TrainError> = others.into_iter().filter_map(Result::err).collect();
    let mine = match mine {
        Ok(out) if errors.is_empty() => return Ok(out),
        Ok(_) => None,
        Err(e) => Some(e),
    };
    errors.splice(0..0, mine);
    let waited = |e: &TrainError| matches!(e, TrainError::Device { source, .. } if matches!(**source, TrainError::Collective(_)));
    let root = errors.iter().position(|e| !waited(e)).unwrap_or(0);
    Err(errors.swap_remove(root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    /// A device that fails, or panics, while another waits in an all-reduce releases it, and the
    /// error names the device that failed, not the one that stopped waiting; the next run on
    /// several devices registers afresh.
    #[test]
    fn a_failing_device_releases_the_others_and_is_named() {
        let units = || {
            (0..2)
                .map(|i| (format!("device {i}"), Default::default(), i))
                .collect::<Vec<_>>()
        };
        let sum = |i: usize| {
            let t = Tensor::<Flex, 1>::ones([4], &Default::default());
            let op = ReduceOperation::Sum;
            burn_collective::all_reduce::<Flex>(i.into(), t.into_primitive().tensor(), op)
                .map_err(|e| collective("summing", e))
        };
        for panics in [false, true] {
            let err = on_each::<Flex, _, ()>(units(), |i: usize| {
                if i == 1 {
                    // Long enough for device 0 to be waiting in its all-reduce.
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if panics {
                        panic!("out of memory");
                    }
                    return Err(TrainError::Config("out of memory".into()));
                }
                sum(i).map(drop)
            })
            .unwrap_err();
            let expected = if panics {
                "device 1: panicked: out of memory"
            } else {
                "device 1: out of memory"
            };
            assert_eq!(err.to_string(), expected);
        }
        let total = on_each::<Flex, _, _>(units(), |i| {
            let t = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(sum(i)?));
            Ok(t.into_data().to_vec::<f32>().unwrap())
        });
        assert_eq!(total.unwrap(), [2.0; 4]);
    }
}
