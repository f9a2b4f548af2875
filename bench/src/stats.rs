//! Repeated measurements and how they are shown.

/// One figure measured R times.
#[derive(Clone, Debug)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// At least one value.
    pub fn new(values: Vec<f64>) -> Samples {
        assert!(!values.is_empty(), "a figure needs at least one run");
        Samples(values)
    }

    pub fn runs(&self) -> usize {
        self.0.len()
    }

    pub fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        }
    }

    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Each value transformed by `f` (e.g. seconds into a rate).
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Samples {
        Samples(self.0.iter().copied().map(f).collect())
    }

    /// The values of `self` divided by the values of `other`, run by run.
    pub fn ratio_to(&self, other: &Samples) -> Samples {
        assert_eq!(self.runs(), other.runs(), "ratios pair runs one to one");
        Samples(self.0.iter().zip(&other.0).map(|(a, b)| a / b).collect())
    }

    /// `median (min–max)` with `decimals` decimals; just the value for a single run.
    pub fn show(&self, decimals: usize) -> String {
        self.show_with(|x| format!("{x:.decimals$}"))
    }

    /// As [`Samples::show`], whole numbers with thousands separators.
    pub fn show_thousands(&self) -> String {
        self.show_with(thousands)
    }

    fn show_with(&self, format: impl Fn(f64) -> String) -> String {
        if self.runs() == 1 {
            return format(self.median());
        }
        format!(
            "{} ({}–{})",
            format(self.median()),
            format(self.min()),
            format(self.max())
        )
    }
}

/// The `q` quantile (0..=1) of `values`, which it reorders.
pub fn quantile(values: &mut [u32], q: f64) -> u32 {
    assert!(!values.is_empty(), "a quantile of nothing");
    let rank = ((values.len() as f64 * q) as usize).min(values.len() - 1);
    *values.select_nth_unstable(rank).1
}

/// `1234567.8` as `1_234_568`, the way the engine comparison's tables show counts.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('_');
        }
        out.push(digit);
    }
    out
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// A file size: whole GiB as such (`1 GiB`), anything else in MiB (`64 MiB`, `514.2 MiB`).
pub fn size(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes >= GIB && bytes % GIB == 0 {
        format!("{} GiB", bytes / GIB)
    } else if bytes % (1 << 20) == 0 {
        format!("{:.0} MiB", mib(bytes))
    } else {
        format!("{:.1} MiB", mib(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Samples::new(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median(), s.min(), s.max()), (2.0, 1.0, 3.0));
        assert_eq!(Samples::new(vec![4.0, 1.0, 2.0, 3.0]).median(), 2.5);
        assert_eq!(s.show(1), "2.0 (1.0–3.0)");
        assert_eq!(Samples::new(vec![1234.0]).show_thousands(), "1_234");
    }

    #[test]
    fn ratios_pair_runs() {
        let a = Samples::new(vec![2.0, 9.0]);
        let b = Samples::new(vec![4.0, 3.0]);
        assert_eq!(a.ratio_to(&b).0, vec![0.5, 3.0]);
    }

    #[test]
    fn quantiles() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), 51);
        assert_eq!(quantile(&mut v, 0.99), 100);
        assert_eq!(quantile(&mut v, 1.0), 100);
    }

    #[test]
    fn sizes() {
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(3 << 29), "1536 MiB");
        assert_eq!(size((1 << 20) + (1 << 19)), "1.5 MiB");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1_000");
        assert_eq!(thousands(1_234_567.8), "1_234_568");
    }
}
