//! The hand-off past one machine (scripts/vector_db.py): an embeddings artifact loaded into
//! LanceDB and into Qdrant (its local mode) answers a query with the same nearest rows, in the same
//! order and with the same cosines, as `search`.

use std::process::Command;

use simcse_artifact::EmbeddingWriter;
use simcse_embed::search::Corpus;

/// Python with lancedb and qdrant-client, or `None` (skipped, saying so) unless
/// `SIMCSE_REQUIRE_VECTOR_DBS` is set, as CI sets it after installing them.
fn python_with_vector_dbs(test: &str) -> Option<&'static str> {
    let check = Command::new("python3")
        .args(["-c", "import lancedb, qdrant_client"])
        .output();
    match check {
        Ok(out) if out.status.success() => Some("python3"),
        failed => {
            let why = match failed {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                Err(e) => format!("python3: {e}"),
            };
            assert!(
                std::env::var_os("SIMCSE_REQUIRE_VECTOR_DBS").is_none(),
                "SIMCSE_REQUIRE_VECTOR_DBS is set but the vector databases do not load: {why}"
            );
            simcse_testkit::skipped(
                test,
                &format!("{why}; pip install lancedb qdrant-client to run it"),
            );
            None
        }
    }
}

#[test]
fn vector_dbs_find_what_search_finds() {
    let Some(python) = python_with_vector_dbs("vector_dbs_find_what_search_finds") else {
        return;
    };
    let (rows, dim, k) = (3000, 48, 10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emb.parquet");
    // Vectors of any length (the artifact keeps what the model gave): every side compares cosines.
    let mut state = 11u64;
    let vectors: Vec<f32> = (0..rows * dim)
        .map(|i| (simcse_model::rng::uniform(&mut state) as f32 - 0.5) * (1 + i / dim % 3) as f32)
        .collect();
    let ids: Vec<String> = (0..rows).map(|i| format!("kowiki:{i}")).collect();
    let texts: Vec<String> = (0..rows).map(|i| format!("{i}번째 문장입니다.")).collect();
    let mut w = EmbeddingWriter::create(&path, dim).unwrap();
    w.push(&ids, &texts, &vectors).unwrap();
    w.finish().unwrap();

    let corpus = Corpus::open(&path, false).unwrap();
    let query_rows = [0, 1234, 2999];
    let queries: Vec<f32> = query_rows
        .iter()
        .flat_map(|&r| vectors[r * dim..(r + 1) * dim].to_vec())
        .collect();
    let ours = corpus.search(&queries, k).unwrap();

    let script = simcse_testkit::repo().join("scripts/vector_db.py");
    let rows_arg = query_rows.map(|r| r.to_string()).join(",");
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let embeddings = path.to_str().unwrap();
    for (name, target) in [
        ("lancedb", vec!["lancedb", "--db", db]),
        ("qdrant", vec!["qdrant", "--path", db]),
    ] {
        let out = Command::new(python)
            .arg(&script)
            .args(&target)
            .args(["--embeddings", embeddings, "--query-rows", &rows_arg])
            .args(["-k", &k.to_string()])
            // Several batches, so the scripts' row numbering across them counts.
            .args(["--batch-rows", "700"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("holds {rows} ")),
            "{name}: {stderr}"
        );
        let answers: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers.len(), query_rows.len(), "{name}");
        for ((answer, hits), row) in answers.iter().zip(&ours).zip(query_rows) {
            assert_eq!(answer["row"], row, "{name}");
            let theirs: Vec<&str> = answer["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let mine: Vec<&str> = hits
                .iter()
                .map(|h| corpus.emb.ids[h.row].as_str())
                .collect();
            assert_eq!(theirs, mine, "{name}, query row {row}");
            for (score, hit) in answer["scores"].as_array().unwrap().iter().zip(hits) {
                let score = score.as_f64().unwrap() as f32;
                assert!(
                    (score - hit.score).abs() < 1e-5,
                    "{name}, query row {row}: {score} against {}",
                    hit.score
                );
            }
        }
        std::fs::remove_dir_all(db).unwrap();
    }
}
