//! `simcse-prepare`: [`simcse_cli::stage::prepare`] (the code lives in the library, so that the stage binaries
//! and the tests share one compiled copy of the model code).

fn main() -> anyhow::Result<()> {
    simcse_cli::stage::prepare::main()
}
