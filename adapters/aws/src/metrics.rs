//! CloudWatch metrics as embedded-metric-format (EMF) log lines: a function prints one JSON
//! line to standard output and CloudWatch Logs turns it into metrics, with no API call and no
//! extra permission.

use serde_json::{json, Map, Value};

/// One metric value.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

/// The EMF document for `metrics` in `namespace`, with one dimension set.
pub fn emf_line(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Metric],
    timestamp_ms: u64,
) -> String {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter()
                    .map(|m| json!({"Name": m.name, "Unit": m.unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), Value::from(*v));
    }
    for m in metrics {
        doc.insert(m.name.into(), json!(m.value));
    }
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_every_metric_and_dimension_with_its_value() {
        let line = emf_line(
            "hashgate",
            &[("FunctionName", "s-scanner")],
            &[
                Metric {
                    name: "Clean",
                    unit: "Count",
                    value: 3.0,
                },
                Metric {
                    name: "FilterAgeHours",
                    unit: "None",
                    value: 1.5,
                },
            ],
            1_700_000_000_000,
        );
        assert!(!line.contains('\n'), "one line: {line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "hashgate");
        assert_eq!(cw["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "Clean", "Unit": "Count"}, {"Name": "FilterAgeHours", "Unit": "None"}])
        );
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(v["FunctionName"], "s-scanner");
        assert_eq!(v["Clean"], 3.0);
        assert_eq!(v["FilterAgeHours"], 1.5);
    }
}
