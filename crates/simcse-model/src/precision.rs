//! Mixed precision as PyTorch's `torch.autocast(dtype=bfloat16)` does it for BERT: the matrix
//! products (every linear layer and both attention products) take bf16 inputs, and their outputs
//! return to f32 at once, so LayerNorm, softmax, GELU, the loss and the residual stream stay f32;
//! weights, gradients and optimizer state stay f32 (the casts' backward casts the gradients back).
//! burn 0.21 has no autocast, so it is a scope around the forward pass on the calling thread.

use std::cell::Cell;

use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// The dtype of the matrix products.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32 (the default, and what the parity tests check).
    #[default]
    F32,
    /// bf16 matrix products, f32 everywhere else.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown precision {s:?}: f32 or bf16")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

thread_local! {
    static MATMUL: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// Runs `f` with the matrix products of this thread in `precision`.
pub fn autocast<T>(precision: Precision, f: impl FnOnce() -> T) -> T {
    scoped(&MATMUL, precision, f)
}

/// Runs `f` with the thread-local `cell` set to `value`, restored afterwards, on unwind too (so a
/// panic in `f` cannot leave the thread in bf16, or training without a graph).
pub(crate) fn scoped<V: Copy + 'static, T>(
    cell: &'static std::thread::LocalKey<Cell<V>>,
    value: V,
    f: impl FnOnce() -> T,
) -> T {
    struct Restore<V: Copy + 'static>(&'static std::thread::LocalKey<Cell<V>>, V);
    impl<V: Copy + 'static> Drop for Restore<V> {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(cell, cell.with(|c| c.replace(value)));
    f()
}

/// `a.matmul(b)` in the precision of the current [`autocast`] scope; the result is f32.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    match MATMUL.with(Cell::get) {
        Precision::F32 => a.matmul(b),
        Precision::Bf16 => a
            .cast(FloatDType::BF16)
            .matmul(b.cast(FloatDType::BF16))
            .cast(FloatDType::F32),
    }
}

/// A linear layer on [n, d_in] in the precision of the current [`autocast`] scope.
pub fn linear<B: Backend>(layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    if MATMUL.with(Cell::get) == Precision::F32 {
        return layer.forward(x);
    }
    let y = matmul(x, layer.weight.val());
    match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze_dim(0),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    #[test]
    fn autocast_rounds_products_to_bf16_inside_its_scope_only() {
        let device = Default::default();
        // 1 + 2^-10 is exact in f32 and rounds to 1 in bf16 (8 bits of mantissa).
        let a = Tensor::<Cpu, 2>::from_floats([[1.0 + 1.0 / 1024.0]], &device);
        let one = Tensor::<Cpu, 2>::from_floats([[1.0]], &device);
        let product = |a: Tensor<Cpu, 2>| matmul(a, one.clone()).into_scalar();
        assert_eq!(product(a.clone()), 1.0 + 1.0 / 1024.0);
        let inside = autocast(Precision::Bf16, || {
            let nested = autocast(Precision::F32, || product(a.clone()));
            (product(a.clone()), nested)
        });
        assert_eq!(inside, (1.0, 1.0 + 1.0 / 1024.0));
        assert_eq!(product(a), 1.0 + 1.0 / 1024.0, "restored after the scope");
        assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
        assert!(
            "fp8"
                .parse::<Precision>()
                .unwrap_err()
                .contains("f32 or bf16")
        );
    }
}
