//! `simcse-embed`: [`simcse_cli::stage::embed`] (the code lives in the library, so that the stage binaries
//! and the tests share one compiled copy of the model code).

#[global_allocator]
static ALLOC: simcse_cli::alloc::MiMalloc = simcse_cli::alloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    simcse_cli::stage::embed::main()
}
