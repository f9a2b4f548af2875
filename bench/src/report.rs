//! The results section: where and when it was measured, and how it replaces the previous one
//! in a markdown file.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

pub const START_MARKER: &str = "<!-- bench:results:start -->";
pub const END_MARKER: &str = "<!-- bench:results:end -->";

/// Where and when a run happened.
pub struct RunInfo {
    cpu: String,
    cores: usize,
    memory: String,
    load_average: String,
    commit: String,
    date: String,
}

impl RunInfo {
    /// The machine, the checked-out commit and the time, now.
    pub fn detect() -> RunInfo {
        RunInfo {
            cpu: cpu_model().unwrap_or_else(|| "unknown CPU".to_owned()),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory: memory_total().unwrap_or_else(|| "unknown".to_owned()),
            load_average: load_average().unwrap_or_else(|| "unknown".to_owned()),
            commit: git_commit().unwrap_or_else(|| "unknown".to_owned()),
            date: utc_date_time(SystemTime::now()),
        }
    }
}

impl RunInfo {
    /// Machine, commit and date on one line.
    pub fn summary(&self) -> String {
        format!(
            "machine {}, nproc {}, {} memory, load average {} at the start; commit {}; {}",
            self.cpu, self.cores, self.memory, self.load_average, self.commit, self.date
        )
    }
}

/// The whole results section, markers excluded.
pub fn render(run: &RunInfo, sizes: &str, elapsed: Duration, sections: &[String]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "- machine: {}, nproc {}, {} memory; load average {} at the start (other work on \
         the machine shows up as noise)",
        run.cpu, run.cores, run.memory, run.load_average
    );
    let _ = writeln!(md, "- commit: {}", run.commit);
    let _ = writeln!(md, "- date: {}", run.date);
    let _ = writeln!(md, "- sizes: {sizes}");
    let _ = writeln!(
        md,
        "- run time: {} min {} s (the whole program, data generation included)",
        elapsed.as_secs() / 60,
        elapsed.as_secs() % 60
    );
    let _ = writeln!(
        md,
        "\nEach figure is the median of R runs, with the minimum and maximum in parentheses.\n"
    );
    for section in sections {
        let _ = writeln!(md, "{section}");
    }
    md
}

/// Replaces the results section of the markdown file `path` (creating the file, or the
/// markers at its end, if missing) and keeps the rest.
pub fn write_into(path: &Path, section: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    std::fs::write(path, splice(&existing, section))
        .with_context(|| format!("writing {}", path.display()))
}

/// Replaces one subsection of the results section of `path` (from the line `heading` to the
/// next heading of the same or a higher level, or the end marker) with `body`, which starts
/// with `heading`, and `note` right under the heading; the rest of the file stays. A missing
/// subsection is added at the end of the results.
pub fn write_subsection(path: &Path, heading: &str, body: &str, note: &str) -> Result<()> {
    let existing =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let updated = splice_subsection(&existing, heading, body, note)
        .with_context(|| format!("{}: no results section ({START_MARKER})", path.display()))?;
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

fn splice_subsection(document: &str, heading: &str, body: &str, note: &str) -> Option<String> {
    let start = line_at(document, START_MARKER, 0)?;
    let end = line_at(document, END_MARKER, start)?;
    let rest = body.trim_start().strip_prefix(heading).unwrap_or(body);
    let block = format!("{heading}\n\n{}\n\n{}\n\n", note.trim(), rest.trim());
    let (from, to) = match line_at(&document[..end], heading, start) {
        Some(from) => {
            let after_heading = from + heading.len();
            let mut to = end;
            let mut offset = after_heading;
            for text in document[after_heading..end].split_inclusive('\n') {
                if text.starts_with("### ") || text.starts_with("## ") {
                    to = offset;
                    break;
                }
                offset += text.len();
            }
            (from, to)
        }
        None => (end, end),
    };
    Some(format!("{}{block}{}", &document[..from], &document[to..]))
}

/// `document` with the lines between the markers replaced by `section`.
fn splice(document: &str, section: &str) -> String {
    let block = format!("{START_MARKER}\n{}\n{END_MARKER}\n", section.trim_end());
    let start = line_at(document, START_MARKER, 0);
    let end = start.and_then(|s| line_at(document, END_MARKER, s));
    match (start, end) {
        (Some(start), Some(end)) => {
            let after = document[end..]
                .find('\n')
                .map_or(document.len(), |i| end + i + 1);
            format!("{}{block}{}", &document[..start], &document[after..])
        }
        _ => {
            let mut out = document.to_owned();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out + &block
        }
    }
}

/// Byte offset of the first line at or after `from` that is exactly `line` (ignoring
/// surrounding white space).
fn line_at(document: &str, line: &str, from: usize) -> Option<usize> {
    let mut offset = from;
    for text in document[from..].split_inclusive('\n') {
        if text.trim() == line {
            return Some(offset);
        }
        offset += text.len();
    }
    None
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
}

fn memory_total() -> Option<String> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib / f64::from(1 << 20)))
}

/// The one-minute load average.
fn load_average() -> Option<String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next().map(str::to_owned)
}

/// `git rev-parse --short HEAD`, with `+dirty` if the work tree has any change.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty = !git(&["status", "--porcelain"])?.is_empty();
    Some(if dirty { commit + "+dirty" } else { commit })
}

/// `2025-01-31 23:59 UTC`.
fn utc_date_time(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let minutes = secs % 86_400 / 60;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let at = |secs| utc_date_time(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        assert_eq!(at(951_782_400 + 3_661), "2000-02-29 01:01 UTC");
        assert_eq!(at(1_735_689_599), "2024-12-31 23:59 UTC");
    }

    #[test]
    fn splice_replaces_between_markers_and_keeps_the_rest() {
        let doc = format!("# B\nintro\n{START_MARKER}\nold\nlines\n{END_MARKER}\n## After\n");
        assert_eq!(
            splice(&doc, "new\n"),
            format!("# B\nintro\n{START_MARKER}\nnew\n{END_MARKER}\n## After\n")
        );
    }

    #[test]
    fn splice_appends_missing_markers() {
        assert_eq!(
            splice("# B\nintro", "new"),
            format!("# B\nintro\n\n{START_MARKER}\nnew\n{END_MARKER}\n")
        );
        assert_eq!(
            splice("", "new"),
            format!("{START_MARKER}\nnew\n{END_MARKER}\n")
        );
    }

    #[test]
    fn subsection_is_replaced_alone() {
        let doc = format!(
            "# B\n{START_MARKER}\n## Results\n\n### A\n\na\n\n### S\n\nold\n\n### C\n\nc\n{END_MARKER}\nafter\n"
        );
        let out = splice_subsection(&doc, "### S", "### S\n\nnew\n", "note").unwrap();
        assert_eq!(
            out,
            format!(
                "# B\n{START_MARKER}\n## Results\n\n### A\n\na\n\n### S\n\nnote\n\nnew\n\n### C\n\nc\n{END_MARKER}\nafter\n"
            )
        );
        assert_eq!(
            splice_subsection(&out, "### S", "### S\n\nnew\n", "note").unwrap(),
            out
        );
        let added = splice_subsection(&doc, "### T", "### T\n\nt", "n").unwrap();
        assert!(added.contains(&format!("### T\n\nn\n\nt\n\n{END_MARKER}")));
    }

    #[test]
    fn splice_is_idempotent() {
        let once = splice("# B\n", "x");
        assert_eq!(splice(&once, "x"), once);
    }
}
