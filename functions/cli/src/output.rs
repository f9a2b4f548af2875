//! Text formatting shared by the commands.

use hashgate_core::filter::{bloom_bound_bits_per_entry, FilterInfo};

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// One line about a filter snapshot, and whether it is current for `store_version`.
pub fn describe_filter(f: &FilterInfo, store_version: u64) -> String {
    let freshness = if f.covers(store_version) {
        "current".to_string()
    } else {
        format!("STALE: the store is at version {store_version}")
    };
    format!(
        "{} digests ({}), {}, {:.1} bits/entry (bloom bound {:.1}), false-positive rate {:e}, built from store version {} ({freshness})",
        thousands(f.entries),
        f.algorithms,
        bytes(f.payload_bytes),
        f.bits_per_entry(),
        bloom_bound_bits_per_entry(f.fp_rate),
        f.fp_rate,
        f.store_version,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
