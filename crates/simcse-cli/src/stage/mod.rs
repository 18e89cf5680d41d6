//! The stage binaries' code, a module each; `src/bin/` only calls their `main`. In the library,
//! the model code that every binary runs (on each device built in) is compiled once, and the
//! integration tests reuse it (rustc shares generic instances with downstream crates at our dev
//! opt-level), instead of once per binary.

pub mod embed;
pub mod eval;
pub mod prepare;
pub mod train;
