//! Global gradient-norm clipping (`torch.nn.utils.clip_grad_norm_`): burn's own clipping scales each
//! tensor by its own norm, which is a different update.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

/// Each gradient's sum of squares, kept on the device until all are known.
struct SquaredSums<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sums: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredSums<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.sums.push(g.powi_scalar(2).sum());
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The total L2 norm of all gradients; when `max_norm` > 0 and the norm exceeds it, scales them all
/// by `max_norm / total_norm` (with torch's 1e-6 guard). Returns the norm before clipping. The
/// per-tensor sums come to the host in one transfer (one sync on a GPU) and add up in f64.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let mut sums = SquaredSums::<B> {
        grads,
        sums: Vec::new(),
    };
    module.visit(&mut sums);
    if sums.sums.is_empty() {
        return 0.0;
    }
    let total = Tensor::cat(sums.sums, 0)
        .into_data()
        .iter::<f64>()
        .sum::<f64>()
        .sqrt();
    let factor = max_norm / (total + 1e-6);
    if max_norm > 0.0 && factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    total
}
