//! Training behaviour without a graph, as PyTorch's `model.train()` inside `torch.no_grad()`:
//! GradCache's first pass needs the training forward (dropout, the explicit attention path) of a
//! model on the inner, non-autodiff backend, so that no graph is kept. burn ties "training" to the
//! autodiff backend, so this is a scope on the calling thread, like [`crate::precision::autocast`].

use std::cell::Cell;

use burn::nn::Dropout;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

thread_local! {
    static WITHOUT_GRAPH: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the model's training behaviour on any backend (dropout drawn from the backend's
/// RNG, as on the autodiff backend, so a seeded pass here and one there draw the same masks).
pub fn without_graph<T>(f: impl FnOnce() -> T) -> T {
    crate::precision::scoped(&WITHOUT_GRAPH, true, f)
}

/// Whether the forward pass on `device` trains: on an autodiff backend, or inside [`without_graph`].
pub fn training<B: Backend>(device: &B::Device) -> bool {
    B::ad_enabled(device) || WITHOUT_GRAPH.with(Cell::get)
}

/// `burn::nn::Dropout::forward` (the same draws and arithmetic), applied whenever [`training`].
pub fn dropout<B: Backend, const D: usize>(d: &Dropout, x: Tensor<B, D>) -> Tensor<B, D> {
    if d.prob == 0.0 || !training::<B>(&x.device()) {
        return x;
    }
    let keep = 1.0 - d.prob;
    let mask = x.random_like(Distribution::Bernoulli(keep));
    (x * mask) * (1.0 / keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;

    type B = burn::backend::Flex;
    type A = burn::backend::Autodiff<B>;

    /// Inside the scope the plain backend drops out exactly as the autodiff backend (and burn's own
    /// `Dropout`) does with the same seed; outside it, it does not drop out at all.
    #[test]
    fn the_scope_drops_out_like_the_autodiff_backend() {
        let d = DropoutConfig::new(0.3).init();
        let device = Default::default();
        let x = Tensor::<B, 2>::ones([8, 16], &device);
        B::seed(&device, 9);
        let plain = without_graph(|| dropout(&d, x.clone()));
        A::seed(&device, 9);
        let graph = dropout(&d, Tensor::<A, 2>::from_inner(x.clone())).inner();
        plain
            .clone()
            .into_data()
            .assert_eq(&graph.into_data(), true);
        A::seed(&device, 9);
        let burns = d.forward(Tensor::<A, 2>::from_inner(x.clone())).inner();
        plain
            .clone()
            .into_data()
            .assert_eq(&burns.into_data(), true);
        assert!(
            plain.clone().equal_elem(0.0).any().into_scalar(),
            "some dropped"
        );
        dropout(&d, x.clone())
            .into_data()
            .assert_eq(&x.into_data(), true);
    }
}
