//! `hashgate hash`: what a list entry for a file would hold: its MD5, SHA-1 and SHA-256, and
//! for an image its PDQ hash and quality. A provider builds and shares lists from these
//! without ever sharing an image. One read per file: PDQ is computed from the same bytes as
//! the digests.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use hashgate_core::digest::StreamDigester;
use hashgate_core::pdq::tap::ImageOutcome;
use hashgate_core::{Algorithm, AlgorithmSet};
use serde::Serialize;

use crate::args::HashArgs;

#[derive(Serialize, Default)]
struct Hashed {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pdq: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pdq_quality: Option<u8>,
    /// The image format its bytes say (absent: not an image).
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    /// Why the image has no PDQ hash (undecodable), or why the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(args: &HashArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0u64;
    for path in &args.paths {
        let h = hash_file(path);
        if h.bytes.is_none() {
            failed += 1;
        }
        if args.json {
            serde_json::to_writer(&mut out, &h)?;
            writeln!(out)?;
        } else {
            print_text(&mut out, &h)?;
        }
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn hash_file(path: &Path) -> Hashed {
    let mut h = Hashed {
        path: path.display().to_string(),
        ..Hashed::default()
    };
    let mut file = match File::open(path) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => f,
        Ok(_) => {
            h.error = Some("not a regular file".into());
            return h;
        }
        Err(e) => {
            h.error = Some(format!("cannot open: {e}"));
            return h;
        }
    };
    let mut digester = StreamDigester::new(AlgorithmSet::ALL);
    if let Err(e) = digester.read_from(&mut file) {
        h.error = Some(format!("read failed after {} bytes: {e}", digester.bytes()));
        return h;
    }
    let d = digester.finish();
    h.bytes = Some(d.bytes);
    let hex = |a| d.digests.get(a).map(|x| x.to_hex());
    h.md5 = hex(Algorithm::Md5);
    h.sha1 = hex(Algorithm::Sha1);
    h.sha256 = hex(Algorithm::Sha256);
    match d.image {
        Some(ImageOutcome::Hashed(image)) => {
            h.pdq = Some(image.pdq.to_hex());
            h.pdq_quality = Some(image.quality);
            h.image = Some(image.kind.to_string());
            h.width = Some(image.width);
            h.height = Some(image.height);
        }
        Some(ImageOutcome::Undecodable { kind, reason }) => {
            h.image = Some(kind);
            h.error = Some(format!("no PDQ hash: {reason}"));
        }
        Some(ImageOutcome::NotImage) | None => {}
    }
    h
}

fn print_text(out: &mut impl Write, h: &Hashed) -> std::io::Result<()> {
    writeln!(out, "{}", h.path)?;
    for (name, value) in [("md5", &h.md5), ("sha1", &h.sha1), ("sha256", &h.sha256)] {
        if let Some(v) = value {
            writeln!(out, "  {name:<7}{v}")?;
        }
    }
    if let (Some(pdq), Some(q)) = (&h.pdq, h.pdq_quality) {
        writeln!(out, "  {:<7}{pdq}  quality {q}", "pdq")?;
    }
    if let Some(e) = &h.error {
        writeln!(out, "  error  {e}")?;
    }
    Ok(())
}
