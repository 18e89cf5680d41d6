//! The allocator for binaries that run the model on CPU. A training step allocates and frees
//! tensors of tens of MB; glibc's malloc returns such blocks to the kernel at once, so every step
//! page-faults them back in and the kernel zeroes them again (14% of a MiniLM training step, and
//! 1.5x the step time altogether: BENCHMARKS.md). mimalloc with purging turned off keeps them.
//!
//! ```text
//! #[global_allocator]
//! static ALLOC: simcse_cli::alloc::MiMalloc = simcse_cli::alloc::MiMalloc;
//! fn main() { simcse_cli::alloc::keep_freed_pages(); /* ... */ }
//! ```

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (libmimalloc-sys 0.1.49 names only some
/// of the options).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to hand freed memory back to the OS (`MIMALLOC_PURGE_DELAY=-1`): peak
/// memory stays reserved, which for a process that repeats the same step is what it needs anyway.
pub fn keep_freed_pages() {
    // SAFETY: sets an integer option; mimalloc reads it on each purge decision.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}
