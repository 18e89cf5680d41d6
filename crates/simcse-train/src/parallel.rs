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
//!
//! Several machines ([`Nodes`]) use burn's multi-node mode: an orchestrator introduces them, then
//! each all-reduce also runs between the machines (ring, peer to peer). Every machine runs the same
//! training with its own devices, which take the global ranks after those of the machines before.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
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

/// The machines of a multi-node run (burn-collective's global mode). Each runs the same training
/// (command, config and data) with its own `rank` and as many devices as the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nodes {
    /// How many machines train.
    pub count: u32,
    /// This machine's place among them, from 0.
    pub rank: u32,
    /// The orchestrator's address, e.g. `ws://10.0.0.1:3000` (see [`orchestrate`]).
    pub orchestrator: String,
    /// This machine's address as the others reach it, e.g. `ws://10.0.0.2:3001`: its port serves
    /// this machine's tensors to the others.
    pub address: String,
}

impl Nodes {
    fn check(&self) -> Result<u16> {
        let bad = |what: String| Err(TrainError::Config(format!("several machines: {what}")));
        if self.count < 2 || self.rank >= self.count {
            return bad(format!(
                "node rank {} of {} machines (ranks go from 0 to the count less one, and a \
                 multi-node run needs 2 machines or more)",
                self.rank, self.count
            ));
        }
        for (what, url) in [
            ("orchestrator", &self.orchestrator),
            ("node", &self.address),
        ] {
            // burn's WebSocket transport is plain (no TLS).
            if !url.starts_with("ws://") {
                return bad(format!("the {what} address {url:?} is not ws://HOST:PORT"));
            }
        }
        let port = self.address.trim_end_matches('/').rsplit_once(':');
        match port.and_then(|(_, p)| p.parse().ok()) {
            Some(port) => Ok(port),
            None => bad(format!(
                "the node address {:?} has no port (ws://HOST:PORT: the port serves this \
                 machine's tensors to the others)",
                self.address
            )),
        }
    }
}

/// Runs burn's collective orchestrator on `port` until the process is stopped (Ctrl-C, SIGTERM):
/// the machines of a multi-node run register with it, learn each other's addresses from it, then
/// exchange tensors directly. It keeps the machines of one run: start one for each run.
pub async fn orchestrate(port: u16) {
    burn_collective::start_global_orchestrator(port).await
}

/// How a trainer's devices meet in burn's collective layer: their global ranks and, across machines,
/// the registration that lasts the whole run.
pub(crate) struct Group {
    config: CollectiveConfig,
    /// This process's devices.
    devices: usize,
    /// The global rank of this process's first device.
    first: usize,
    /// Several machines: the devices register once, at the first collective call (the orchestrator
    /// numbers machines in the order they register), and leave at the end of the run.
    nodes: Option<Nodes>,
    joined: AtomicBool,
}

impl Group {
    /// `devices` of this process, alone or as one machine of `nodes`.
    pub(crate) fn new(devices: usize, nodes: Option<Nodes>) -> Result<Self> {
        let mut config = CollectiveConfig::default().with_num_devices(devices);
        let first = match &nodes {
            None => {
                // Ring: each device sends 2(N-1)/N of a tensor, where burn's default tree sends
                // 2 log2(N) whole copies one after another (BENCHMARKS.md, "Several devices").
                config = config.with_local_all_reduce_strategy(AllReduceStrategy::Ring);
                0
            }
            Some(nodes) => {
                let port = nodes.check()?;
                let url = |u: &str| u.parse().map_err(TrainError::Config);
                // Within a machine a tree reduces onto one device, which takes part in the ring
                // between machines and hands the result back (burn's advice for several machines).
                config = (config.with_num_nodes(nodes.count))
                    .with_global_address(url(&nodes.orchestrator)?)
                    .with_node_address(url(&nodes.address)?)
                    .with_data_service_port(port)
                    .with_global_all_reduce_strategy(AllReduceStrategy::Ring);
                nodes.rank as usize * devices
            }
        };
        Ok(Self {
            config,
            devices,
            first,
            nodes,
            joined: AtomicBool::new(false),
        })
    }

    /// How many machines train.
    pub(crate) fn machines(&self) -> usize {
        self.nodes.as_ref().map_or(1, |n| n.count as usize)
    }

    /// Where this process's `index`th device stands among all devices.
    pub(crate) fn rank(&self, index: usize) -> Rank {
        Rank {
            index: self.first + index,
            count: self.machines() * self.devices,
        }
    }

    /// Several machines: checks that each machine holds a rank of its own, as many devices as this
    /// one and the same run (`fingerprint`). Each of this machine's devices calls it at once, as
    /// the run's first collective call: one all-reduce of a row per machine.
    pub(crate) fn check_machines<B: Backend>(
        &self,
        index: usize,
        fingerprint: u64,
        device: &B::Device,
    ) -> Result<()> {
        let Some(nodes) = &self.nodes else {
            return Ok(());
        };
        const COLUMNS: usize = 6;
        // 16-bit pieces of the fingerprint: sums of a few of them stay exact in f32.
        let piece = |k: usize| ((fingerprint >> (16 * k)) & 0xFFFF) as f32;
        let row = [
            1.0,
            self.devices as f32,
            piece(0),
            piece(1),
            piece(2),
            piece(3),
        ];
        let mut rows = vec![0f32; nodes.count as usize * COLUMNS];
        if index == 0 {
            let at = nodes.rank as usize * COLUMNS;
            rows[at..at + COLUMNS].copy_from_slice(&row);
        }
        let shape = [nodes.count as usize, COLUMNS];
        let rows = Tensor::<B, 2>::from_data(TensorData::new(rows, shape), device);
        let summed = burn_collective::all_reduce::<B>(
            self.rank(index).peer(),
            rows.into_primitive().tensor(),
            ReduceOperation::Sum,
        )
        .map_err(|e| collective("checking the machines", e))?;
        let summed = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(summed));
        let summed = (summed.into_data().to_vec::<f32>())
            .map_err(|e| TrainError::Collective(format!("checking the machines: {e:?}")))?;
        for (machine, got) in summed.chunks(COLUMNS).enumerate() {
            let problem = if got[0] != 1.0 {
                format!(
                    "{} machines started with --node-rank {machine} (each rank from 0 to {} once)",
                    got[0],
                    nodes.count - 1
                )
            } else if got[1] != row[1] {
                format!(
                    "machine {machine} trains on {} device(s), this one ({}) on {} (give every \
                     machine as many)",
                    got[1], nodes.rank, self.devices
                )
            } else if got[2..] != row[2..] {
                format!(
                    "machine {machine} runs another training than this one ({}): its settings, \
                     corpus size or resumed update differ (run the same command and data on each \
                     machine; only paths may differ)",
                    nodes.rank
                )
            } else {
                continue;
            };
            return Err(TrainError::Config(format!("several machines: {problem}")));
        }
        Ok(())
    }

    /// Several machines: unregisters this process's devices at the end of a run, so that the
    /// orchestrator lets the machines go.
    pub(crate) fn leave<B: Backend>(&self) -> Result<()> {
        if !self.joined.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        for index in 0..self.devices {
            burn_collective::finish_collective::<B>(self.rank(index).peer())
                .map_err(|e| collective("unregistering", e))?;
        }
        Ok(())
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

/// Sums `grads` (of `module`'s parameters) over all devices, parameter by parameter in the
/// module's own order. burn's `GradientsParams::all_reduce` goes in the order of parameter ids,
/// which each process draws at random: two machines would pair different parameters.
pub(crate) fn sum_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    rank: Rank,
    module: &M,
    grads: GradientsParams,
) -> Result<GradientsParams> {
    struct Sum {
        peer: PeerId,
        grads: GradientsParams,
        error: Option<TrainError>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let Some(grad) = (self.error.is_none())
                .then(|| self.grads.remove::<B::InnerBackend, D>(param.id))
                .flatten()
            else {
                return;
            };
            let op = ReduceOperation::Sum;
            match burn_collective::all_reduce::<B::InnerBackend>(
                self.peer,
                grad.into_primitive().tensor(),
                op,
            ) {
                Ok(sum) => (self.grads).register(
                    param.id,
                    Tensor::<B::InnerBackend, D>::from_primitive(TensorPrimitive::Float(sum)),
                ),
                Err(e) => self.error = Some(collective("summing the gradients", e)),
            }
        }
    }
    let mut sum = Sum {
        peer: rank.peer(),
        grads,
        error: None,
    };
    module.visit(&mut sum);
    match sum.error {
        Some(e) => Err(e),
        None => Ok(sum.grads),
    }
}

/// Runs `f` on every device of `group` at once, `units[0]` on the calling thread and the others on
/// threads of their own, and returns the first one's result (`None`: one device, `f` alone).
///
/// burn keeps one collective server per backend and process, so runs take turns. Within one machine
/// each run registers its devices and unregisters them at the end, so that trainers on several
/// devices can coexist in a process; across machines they register at the first run and stay until
/// [`Group::leave`]. A device that fails or panics resets the collective, so that no other device
/// waits for it forever; the error returned names the device that failed first, not one that
/// stopped waiting.
pub(crate) fn on_each<B: Backend, D: Send, T: Send>(
    group: Option<&Group>,
    units: Vec<(String, B::Device, D)>,
    f: impl Fn(D) -> Result<T> + Sync,
) -> Result<T> {
    let mut units = units.into_iter().enumerate();
    let Some(first) = units.next() else {
        return Err(TrainError::Config("no device to train on".into()));
    };
    let Some(group) = group else {
        return f(first.1.2);
    };
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let stays = group.nodes.is_some();
    let join = !(stays && group.joined.load(Ordering::SeqCst));
    if join {
        burn_collective::reset_collective::<B>();
    }
    let run = |(index, (name, device, unit)): (usize, (String, B::Device, D))| {
        let peer = group.rank(index).peer();
        let out = catch_unwind(AssertUnwindSafe(|| {
            if join {
                burn_collective::register::<B>(peer, device, group.config.clone())
                    .map_err(|e| collective("registering", e))?;
            }
            let out = f(unit)?;
            if !stays {
                burn_collective::finish_collective::<B>(peer)
                    .map_err(|e| collective("unregistering", e))?;
            }
            Ok(out)
        }));
        let out = out.unwrap_or_else(|panic| {
            let what = (panic.downcast_ref::<String>().cloned())
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(TrainError::Panicked(what.unwrap_or_default()))
        });
        out.map_err(|e| {
            group.joined.store(false, Ordering::SeqCst);
            // A machine lost mid-exchange also ends burn's collective server (its tasks panic), and
            // resetting a dead server panics in turn.
            let _ = catch_unwind(burn_collective::reset_collective::<B>);
            let e = match e {
                TrainError::Panicked(what) | TrainError::Collective(what) if stays => {
                    TrainError::Collective(format!(
                        "lost touch with the other machines (one stopped, or the network between \
                         them failed): {what}; restart every machine with --resume from the same \
                         checkpoint and a fresh orchestrator"
                    ))
                }
                e => e,
            };
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
        Ok(out) if errors.is_empty() => {
            group.joined.store(stays, Ordering::SeqCst);
            return Ok(out);
        }
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

    /// Machine r of N with D devices each holds the global ranks r*D..r*D+D of N*D; a bad rank or
    /// address is an error that says what is wrong.
    #[test]
    fn machines_take_consecutive_ranks_and_bad_settings_are_named() {
        let nodes = |count, rank, address: &str| Nodes {
            count,
            rank,
            orchestrator: "ws://10.0.0.1:3000".into(),
            address: address.into(),
        };
        let group = Group::new(4, Some(nodes(3, 2, "ws://10.0.0.3:3001/"))).unwrap();
        let ranks: Vec<_> = (0..4).map(|i| group.rank(i)).collect();
        assert_eq!(
            ranks[0],
            Rank {
                index: 8,
                count: 12
            }
        );
        assert_eq!(
            ranks[3],
            Rank {
                index: 11,
                count: 12
            }
        );
        assert_eq!(
            Group::new(2, None).unwrap().rank(1),
            Rank { index: 1, count: 2 }
        );
        let error = |n: Nodes| Group::new(1, Some(n)).err().unwrap().to_string();
        assert!(error(nodes(2, 2, "ws://a:1")).contains("node rank 2 of 2 machines"));
        assert!(error(nodes(1, 0, "ws://a:1")).contains("needs 2 machines or more"));
        assert!(error(nodes(2, 1, "ws://a")).contains("\"ws://a\" has no port"));
        assert!(error(nodes(2, 1, "http://a:1")).contains("is not ws://HOST:PORT"));
    }

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
        let group = Group::new(2, None).unwrap();
        let sum = |i: usize| {
            let t = Tensor::<Flex, 1>::ones([4], &Default::default());
            let op = ReduceOperation::Sum;
            burn_collective::all_reduce::<Flex>(i.into(), t.into_primitive().tensor(), op)
                .map_err(|e| collective("summing", e))
        };
        for panics in [false, true] {
            let err = on_each::<Flex, _, ()>(Some(&group), units(), |i: usize| {
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
        let total = on_each::<Flex, _, _>(Some(&group), units(), |i| {
            let t = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(sum(i)?));
            Ok(t.into_data().to_vec::<f32>().unwrap())
        });
        assert_eq!(total.unwrap(), [2.0; 4]);
    }
}
