//! `download`: fetches the pinned public data files into the raw folder, resuming partial downloads
//! and verifying SHA-256. The layout under the raw folder is the one `prepare` reads.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// A pinned public file: where it comes from, where it goes under the raw folder, what it must hash to.
#[derive(Debug, Clone, Copy)]
pub struct Remote {
    pub url: &'static str,
    pub path: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
}

/// A file of kakaobrain/KorNLUDatasets or KLUE-benchmark/KLUE at the pinned commit.
macro_rules! remote {
    (kornlu $file:literal, $path:literal, $bytes:literal, $sha:literal) => {
        Remote {
            url: concat!("https://raw.githubusercontent.com/kakaobrain/KorNLUDatasets/0df0fe7d496eb61b092e022e238c2230b29f1cbc/", $file),
            path: $path,
            bytes: $bytes,
            sha256: $sha,
        }
    };
    (klue $file:literal, $path:literal, $bytes:literal, $sha:literal) => {
        Remote {
            url: concat!("https://raw.githubusercontent.com/KLUE-benchmark/KLUE/3efd98708a40ff49251fddde35453f8fbb11f536/klue_benchmark/klue-sts-v1.1/", $file),
            path: $path,
            bytes: $bytes,
            sha256: $sha,
        }
    };
}

/// Every file `prepare` reads, at the commits the reference results were computed on.
pub const REMOTES: [Remote; 9] = [
    remote!(kornlu "KorNLI/snli_1.0_train.ko.tsv", "kor-nlu/snli_1.0_train.ko.tsv", 78_486_224, "aaf12d8955fcda2b14319e5cabb9b31824c6f504aede460c975b518911f484c0"),
    remote!(kornlu "KorNLI/multinli.train.ko.tsv", "kor-nlu/multinli.train.ko.tsv", 83_550_821, "dca5bf65597af45b139a5fbc8aa3587b612b391446475617b8faa09e5dfcd349"),
    remote!(kornlu "KorNLI/xnli.dev.ko.tsv", "kor-nlu/xnli.dev.ko.tsv", 511_383, "821fb1c1c2e538ac2724a6132da36ffa379eb9a542ceb89243b3cf711377382c"),
    remote!(kornlu "KorNLI/xnli.test.ko.tsv", "kor-nlu/xnli.test.ko.tsv", 1_032_430, "0db53cf8e182283a0d0404ec3fe1b15d1e29236d23d22082dc20d43067254b3e"),
    remote!(kornlu "KorSTS/sts-train.tsv", "kor-nlu/sts-train.tsv", 1_046_952, "b5aaa7f957d6ff46f4b6834a8b0f024a9234a6eefe9289aed66746b4533da3b8"),
    remote!(kornlu "KorSTS/sts-dev.tsv", "kor-nlu/sts-dev.tsv", 307_276, "d835b65b424401fbcce6be28a78159df8d61f5b19977ea7a0b83b8cb6105f393"),
    remote!(kornlu "KorSTS/sts-test.tsv", "kor-nlu/sts-test.tsv", 249_596, "13f83a3440d9db52d134eb40303ce021b03264aa338fbf2871c8786ce04d2105"),
    remote!(klue "klue-sts-v1.1_train.json", "klue-sts/klue-sts-v1.1_train.json", 10_257_839, "9fd1d5d3af73bd06648283be00c87d1b6f6eee90e4854f285df68d0bd5ae91d8"),
    remote!(klue "klue-sts-v1.1_dev.json", "klue-sts/klue-sts-v1.1_dev.json", 454_638, "b6a0ae0c370e21687f7eef0fdea872a328bb2ecbdb020c546cb870d28606bf80"),
];

/// What `fetch` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The file was already there with the right hash.
    AlreadyPresent,
    /// Downloaded; `resumed_from` is the byte offset a partial download continued from (0 if fresh).
    Downloaded { resumed_from: u64 },
}

fn part_path(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

fn hash_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(DataError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(DataError::io(path))?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Downloads `url` to `dest`. Bytes go to `<dest>.part` first; an existing `.part` is resumed with an
/// HTTP Range request. Only a file whose SHA-256 equals `sha256` is renamed to `dest`; on a mismatch
/// the partial file is deleted and an error names both hashes.
pub fn fetch(url: &str, dest: &Path, sha256: &str) -> Result<Fetched> {
    if dest.is_file() {
        if hash_file(dest)? == sha256 {
            return Ok(Fetched::AlreadyPresent);
        }
        tracing::warn!(
            "{}: exists with another SHA-256; downloading it again",
            dest.display()
        );
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(DataError::io(dir))?;
    }
    let part = part_path(dest);
    let offset = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let err = |message: String| DataError::Download {
        url: url.to_string(),
        message,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if offset > 0 {
        req = req.header("Range", format!("bytes={offset}-"));
    }
    let mut resp = req.call().map_err(|e| err(e.to_string()))?;
    let status = resp.status().as_u16();
    let resumed_from = match status {
        206 => offset,
        200 => 0,
        // The partial file already holds every byte: verify it as it is.
        416 if offset > 0 => offset,
        _ => return Err(err(format!("HTTP status {status}"))),
    };
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed_from > 0)
        .truncate(resumed_from == 0)
        .open(&part)
        .map_err(DataError::io(&part))?;
    if status != 416 {
        let len = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let bar = ProgressBar::new(resumed_from + len.unwrap_or(0)).with_position(resumed_from);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(
            dest.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let mut reader = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| err(format!("after {} bytes: {e}", bar.position())))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(DataError::io(&part))?;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
    }
    file.sync_all().map_err(DataError::io(&part))?;
    drop(file);
    let actual = hash_file(&part)?;
    if actual != sha256 {
        std::fs::remove_file(&part).map_err(DataError::io(&part))?;
        return Err(DataError::Checksum {
            path: dest.to_path_buf(),
            expected: sha256.to_string(),
            actual,
        });
    }
    std::fs::rename(&part, dest).map_err(DataError::io(dest))?;
    Ok(Fetched::Downloaded { resumed_from })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_are_pinned_and_unique() {
        for r in REMOTES {
            assert!(
                r.url.contains("/0df0fe7d496eb61b092e022e238c2230b29f1cbc/")
                    || r.url.contains("/3efd98708a40ff49251fddde35453f8fbb11f536/"),
                "{} is not pinned to a commit",
                r.url
            );
            assert_eq!(r.sha256.len(), 64);
            assert!(
                r.url.ends_with(
                    Path::new(r.path)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("?")
                )
            );
        }
        let mut paths: Vec<_> = REMOTES.iter().map(|r| r.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), REMOTES.len());
    }
}
