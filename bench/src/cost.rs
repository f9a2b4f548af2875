//! Cost per million uploads on AWS, from this run's measurements (hashing CPU time per byte,
//! peak memory) and stated prices and assumptions, next to published figures of two other
//! ways to do it.

use std::fmt::Write as _;

use crate::corpus::{file_sizes, Bucket};
use crate::stats::mib;

/// List prices, us-east-1, USD, from AWS's public price pages (Lambda, S3 Standard, SQS
/// standard queues, DynamoDB on-demand, GuardDuty), as of November 2026.
const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
const LAMBDA_GB_SECOND_X86: f64 = 0.000_016_666_7;
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
/// GET, HEAD, GetObjectTagging: the "GET, SELECT and all other requests" tier.
const S3_GET_TIER: f64 = 0.0004 / 1e3;
/// PutObjectTagging: the "PUT, COPY, POST, LIST" tier.
const S3_PUT_TIER: f64 = 0.005 / 1e3;
const SQS_PER_REQUEST: f64 = 0.40 / 1e6;
const DYNAMODB_PER_READ_UNIT: f64 = 0.125 / 1e6;
const GUARDDUTY_PER_GB: f64 = 0.09;
const GUARDDUTY_PER_OBJECT: f64 = 0.215 / 1e3;
/// Meta's published estimate for Hasher-Matcher-Actioner 1.0 on AWS.
const HMA_PER_MILLION_1MB: f64 = 10.0;

/// Assumptions (not measured here): request latencies from a function in the bucket's
/// region, one GET stream's throughput, and how the queue feeds the function.
const HEAD_SECS: f64 = 0.010;
const GET_FIRST_BYTE_SECS: f64 = 0.020;
const GET_TAGGING_SECS: f64 = 0.010;
const PUT_TAGGING_SECS: f64 = 0.020;
const GET_BYTES_PER_SEC: f64 = 90e6;
/// Upload events per invocation (infra/template.yaml `ScanBatchSize`), processed one after
/// another.
const BATCH: f64 = 10.0;
/// SQS requests per upload: the notification's SendMessage, and a share of one
/// ReceiveMessage and one DeleteMessageBatch per batch.
const SQS_REQUESTS: f64 = 1.0 + 2.0 / BATCH;
/// Memory at which Lambda gives one full vCPU.
const FULL_VCPU_MB: f64 = 1769.0;

/// A 1 MB JPEG photo: about 3 megapixels (phones write 12 megapixels in 3-4 MB).
const PHOTO_MEGAPIXELS_PER_MB: f64 = 3.0;

/// PDQ's measured costs, from `crate::pdq`: decode + hash (+ the eight variants) per
/// megapixel, and an upload's median index query at each index size.
pub struct Perceptual {
    pub ms_per_megapixel: f64,
    pub query_ms: Vec<(usize, f64)>,
}

/// One configuration of the scanner function.
#[derive(Clone, Copy)]
struct Setup {
    memory_mb: f64,
    arm: bool,
    tag_clean: bool,
}

/// What one scenario costs per million uploads, by item, in USD.
struct Cost {
    compute: f64,
    requests: f64,
    s3: f64,
    sqs: f64,
    dynamodb: f64,
}

impl Cost {
    fn total(&self) -> f64 {
        self.compute + self.requests + self.s3 + self.sqs + self.dynamodb
    }
}

/// A kind of upload stream.
struct Scenario {
    name: String,
    /// Mean upload size, bytes.
    mean_bytes: f64,
    /// The body is read and hashed (false: decided from the single-part ETag).
    full_read: bool,
    /// Digests asked of the filter per upload.
    digests: f64,
    /// CPU seconds beyond hashing (PDQ's decode, hash and index query), on one full vCPU.
    extra_cpu_secs: f64,
}

pub struct CostReport {
    cpu_secs_per_byte: f64,
    scanner_rss_kib: Option<u64>,
    corpus_mean_bytes: f64,
    scenarios: Vec<Scenario>,
    perceptual: Option<Perceptual>,
}

/// `cpu_secs_per_byte`: hashgate's measured CPU time per byte with MD5 and SHA-256 (over
/// the corpus); `scanner_rss_kib`: the scanner's measured peak memory with the full filter.
pub fn model(
    buckets: &[Bucket],
    cpu_secs_per_byte: f64,
    scanner_rss_kib: Option<u64>,
    perceptual: Option<Perceptual>,
) -> CostReport {
    let sizes = file_sizes(buckets);
    let corpus_mean_bytes = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
    let scenarios = vec![
        Scenario {
            name: "upload mix, fast path (MD5-only lists, single-part ETag)".into(),
            mean_bytes: corpus_mean_bytes,
            full_read: false,
            digests: 1.0,
            extra_cpu_secs: 0.0,
        },
        Scenario {
            name: "upload mix, full read (MD5 + SHA-256)".into(),
            mean_bytes: corpus_mean_bytes,
            full_read: true,
            digests: 2.0,
            extra_cpu_secs: 0.0,
        },
        Scenario {
            name: "1 MB images, fast path".into(),
            mean_bytes: 1e6,
            full_read: false,
            digests: 1.0,
            extra_cpu_secs: 0.0,
        },
        Scenario {
            name: "1 MB images, full read (MD5 + SHA-256)".into(),
            mean_bytes: 1e6,
            full_read: true,
            digests: 2.0,
            extra_cpu_secs: 0.0,
        },
    ];
    let mut scenarios = scenarios;
    if let Some(p) = &perceptual {
        for (hashes, query_ms) in &p.query_ms {
            scenarios.push(Scenario {
                name: format!(
                    "1 MB photos with PDQ lists ({} PDQ hashes): full read (MD5 + SHA-256), decode, PDQ, index",
                    crate::stats::thousands(*hashes as f64)
                ),
                mean_bytes: 1e6,
                full_read: true,
                digests: 2.0,
                extra_cpu_secs: (p.ms_per_megapixel * PHOTO_MEGAPIXELS_PER_MB + query_ms) / 1e3,
            });
        }
    }
    CostReport {
        cpu_secs_per_byte,
        scanner_rss_kib,
        corpus_mean_bytes,
        scenarios,
        perceptual,
    }
}

impl CostReport {
    /// Billed seconds of one upload.
    fn seconds(&self, s: &Scenario, setup: Setup) -> f64 {
        let vcpu = (setup.memory_mb / FULL_VCPU_MB).min(1.0);
        let mut secs = HEAD_SECS;
        if s.full_read {
            let hashing = s.mean_bytes * self.cpu_secs_per_byte / vcpu;
            let transfer = s.mean_bytes / GET_BYTES_PER_SEC;
            secs += GET_FIRST_BYTE_SECS + hashing.max(transfer);
        }
        secs += s.extra_cpu_secs / vcpu;
        if setup.tag_clean {
            secs += GET_TAGGING_SECS + PUT_TAGGING_SECS;
        }
        secs
    }

    fn cost(&self, s: &Scenario, setup: Setup) -> Cost {
        let per_gb_second = if setup.arm {
            LAMBDA_GB_SECOND_ARM
        } else {
            LAMBDA_GB_SECOND_X86
        };
        let gb_seconds = self.seconds(s, setup) * setup.memory_mb / 1024.0;
        let s3_get = 1.0 + f64::from(u8::from(s.full_read)) + f64::from(u8::from(setup.tag_clean));
        let s3_put = f64::from(u8::from(setup.tag_clean));
        let million = 1e6;
        Cost {
            compute: million * gb_seconds * per_gb_second,
            requests: million * LAMBDA_PER_REQUEST / BATCH,
            s3: million * (s3_get * S3_GET_TIER + s3_put * S3_PUT_TIER),
            sqs: million * SQS_REQUESTS * SQS_PER_REQUEST,
            // Only a filter "maybe" reaches the store: p = 1e-6 per clean digest (listed
            // uploads are rare enough to leave out); one read unit each.
            dynamodb: million
                * s.digests
                * hashgate_core::filter::DEFAULT_FP_RATE
                * DYNAMODB_PER_READ_UNIT,
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### Cost per million uploads (model)\n");
        let _ = writeln!(
            md,
            "Computed from this run's hashgate CPU time per byte with MD5 and SHA-256 over the \
             corpus ({:.2} CPU ns per byte, {:.0} MB/s on one core) and the list prices and \
             assumptions stated under \"Reading the results\". The upload mix is the corpus's \
             size distribution (mean {:.0} KiB). USD per million uploads, us-east-1.\n",
            self.cpu_secs_per_byte * 1e9,
            1e-6 / self.cpu_secs_per_byte,
            self.corpus_mean_bytes / 1024.0,
        );
        let base = Setup {
            memory_mb: 1024.0,
            arm: true,
            tag_clean: true,
        };
        let _ = writeln!(
            md,
            "| scenario | billed ms per upload (arm64, 1024 MB) | Lambda compute | Lambda requests | S3 requests | SQS | DynamoDB | **total, arm64 1024 MB** | x86_64 1024 MB | arm64 512 MB | arm64 1769 MB | arm64 1024 MB, `HASHGATE_TAG_CLEAN=false` |"
        );
        let _ = writeln!(
            md,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for s in &self.scenarios {
            let c = self.cost(s, base);
            let other = |setup: Setup| format!("{:.2}", self.cost(s, setup).total());
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1e} | **{:.2}** | {} | {} | {} | {} |",
                s.name,
                self.seconds(s, base) * 1e3,
                c.compute,
                c.requests,
                c.s3,
                c.sqs,
                c.dynamodb,
                c.total(),
                other(Setup { arm: false, ..base }),
                other(Setup { memory_mb: 512.0, ..base }),
                other(Setup { memory_mb: FULL_VCPU_MB, ..base }),
                other(Setup { tag_clean: false, ..base }),
            );
        }
        let gd = |mean_bytes: f64| {
            1e6 * (mean_bytes / f64::from(1u32 << 30) * GUARDDUTY_PER_GB + GUARDDUTY_PER_OBJECT)
        };
        let _ = writeln!(
            md,
            "\nFor comparison, per million uploads: Amazon GuardDuty Malware Protection for S3 \
             (${GUARDDUTY_PER_GB} per GB scanned + ${:.3} per 1,000 objects evaluated): \
             **{:.0}** for the upload mix, **{:.0}** for 1 MB images; Meta's published \
             estimate for Hasher-Matcher-Actioner 1.0: about **{HMA_PER_MILLION_1MB:.0}** per \
             million 1 MB images.",
            GUARDDUTY_PER_OBJECT * 1e3,
            gd(self.corpus_mean_bytes),
            gd(1e6),
        );
        if let Some(p) = &self.perceptual {
            let _ = writeln!(md, "\n{}", perceptual_extra(p));
        }
        if let Some(kib) = self.scanner_rss_kib {
            let _ = writeln!(
                md,
                "\nMemory: the scanner worker peaked at {:.0} MiB with the full-size filter \
                 (cold start above), well inside 512 MB; the memory size buys CPU share \
                 (1769 MB = one vCPU), not room.",
                mib(kib * 1024)
            );
        }
        md
    }
}

/// What PDQ adds per million 1 MB photo uploads, at arm64 1024 MB (the template's default):
/// the billed time of its CPU work at that memory's CPU share, for each index size.
pub fn perceptual_extra(p: &Perceptual) -> String {
    let vcpu = 1024.0 / FULL_VCPU_MB;
    let parts: Vec<String> = p
        .query_ms
        .iter()
        .map(|(hashes, query_ms)| {
            let cpu_ms = p.ms_per_megapixel * PHOTO_MEGAPIXELS_PER_MB + query_ms;
            // Billed seconds × 1 GB × the arm64 price.
            let usd = 1e6 * (cpu_ms / 1e3 / vcpu) * LAMBDA_GB_SECOND_ARM;
            format!(
                "**${usd:.2}** with {} PDQ hashes listed ({cpu_ms:.0} CPU ms, {:.0} ms billed, per photo)",
                crate::stats::thousands(*hashes as f64),
                cpu_ms / vcpu
            )
        })
        .collect();
    format!(
        "PDQ adds, per million 1 MB photo uploads (about {PHOTO_MEGAPIXELS_PER_MB} megapixels each: \
         decode, hash and eight variants at {:.1} ms per megapixel, then the index query) on \
         arm64 at 1024 MB: {}. Uploads that are not images cost what they did.",
        p.ms_per_megapixel,
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::FULL_CORPUS;

    #[test]
    fn the_fast_path_is_cheaper_and_the_clean_tag_costs_a_put() {
        let report = model(
            FULL_CORPUS,
            2e-9,
            None,
            Some(Perceptual {
                ms_per_megapixel: 17.0,
                query_ms: vec![(1_000_000, 1.5)],
            }),
        );
        let setup = Setup {
            memory_mb: 1024.0,
            arm: true,
            tag_clean: true,
        };
        let fast = report.cost(&report.scenarios[0], setup).total();
        let full = report.cost(&report.scenarios[1], setup).total();
        assert!(fast < full, "{fast} {full}");
        let untagged = report
            .cost(
                &report.scenarios[0],
                Setup {
                    tag_clean: false,
                    ..setup
                },
            )
            .total();
        // The tagging PUT alone is $5 per million.
        assert!(fast - untagged > 5.0, "{fast} {untagged}");
    }

    #[test]
    fn pdq_adds_its_cpu_time_to_photo_uploads_only() {
        let report = model(
            FULL_CORPUS,
            2e-9,
            None,
            Some(Perceptual {
                ms_per_megapixel: 17.0,
                query_ms: vec![(1_000_000, 1.5), (10_000_000, 20.0)],
            }),
        );
        let setup = Setup {
            memory_mb: 1024.0,
            arm: true,
            tag_clean: true,
        };
        let exact = report.cost(&report.scenarios[3], setup);
        let small = report.cost(&report.scenarios[4], setup);
        let large = report.cost(&report.scenarios[5], setup);
        assert!(exact.compute < small.compute && small.compute < large.compute);
        // 52.5 CPU ms more per upload, 91 ms billed at 1024 MB (0.58 vCPU): about $1.21 per
        // million on arm64.
        let extra = small.compute - exact.compute;
        assert!((1.1..1.3).contains(&extra), "{extra}");
        assert_eq!(exact.s3, small.s3);
    }
}
