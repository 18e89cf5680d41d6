//! Loads a Hugging Face model folder (model.safetensors or pytorch_model.bin) and writes it back as
//! `model.safetensors` + `config.json` + tokenizer files, e.g. to turn KR-BERT's .bin into safetensors:
//!
//!     cargo run --release -p simcse-model --example convert -- IN_DIR OUT_DIR

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use simcse_model::backend::Cpu;
use simcse_model::{BertConfig, checkpoint};

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: convert IN_DIR OUT_DIR")
    };
    let config = BertConfig::from_file(&input.join("config.json"))?;
    let (model, report) = checkpoint::load::<Cpu>(input, &config, &Default::default())?;
    println!(
        "loaded {} tensors from {}",
        report.applied,
        report.weights.display()
    );
    checkpoint::save(&model, &config, output)?;
    for f in [
        "vocab.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        if input.join(f).is_file() {
            std::fs::copy(input.join(f), output.join(f)).with_context(|| format!("copying {f}"))?;
        }
    }
    println!("wrote {}", output.display());
    Ok(())
}
