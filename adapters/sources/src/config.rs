//! Source configuration: what `HASHGATE_LIST_SOURCES` holds, and its validation.

use std::collections::HashMap;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::{SourceError, BUILT_IN_KINDS, PLANNED_KINDS};

/// Longest source name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest list name, in bytes (the stores' own limit).
pub const MAX_LIST_NAME_BYTES: usize = 255;
/// Longest headers-secret name, in bytes (the secret stores' own limit).
pub const MAX_SECRET_NAME_BYTES: usize = 512;
/// The list formats a source may declare.
pub const FORMATS: &[&str] = &["plain", "csv", "vics"];
/// The operations a source's entries may carry; the first is the default.
pub const OPS: &[&str] = &["add", "withdraw"];

/// The fields a source object may have, in the order error messages list them.
const FIELDS: &[&str] = &[
    "name",
    "kind",
    "url",
    "list",
    "format",
    "op",
    "headers_secret",
];

/// One configured list source, as the sync function reads it (a JSON array of these from
/// `HASHGATE_LIST_SOURCES`).
///
/// The fields are plain text so that the configuration stays readable and stable; the
/// caller maps `format` and `op` onto its own types. [`parse_sources`] checks every field;
/// a value built in code is checked by [`SourceConfig::validate`] (which [`build`](crate::build)
/// calls too).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique among the sources, `[A-Za-z0-9._-]{1,64}` and not only dots: it becomes part
    /// of object keys (the source's state, the pulled list).
    pub name: String,
    /// Which implementation pulls it: `http` today; `ncmec`, `threatexchange`, `stopncii`
    /// and `projectvic` are known but not built in yet.
    pub kind: String,
    /// Where the list is: `https://…`; plain `http://` only for a loopback host
    /// (`127.0.0.1`, `localhost`, `[::1]`), for tests. No user information: credentials
    /// belong in the headers secret.
    pub url: String,
    /// The list name the pulled entries are imported under (1–255 bytes, no white space
    /// at either end, no control characters).
    pub list: String,
    /// The list's format: `plain`, `csv` or `vics`.
    pub format: String,
    /// `add` (the default) to add the entries, `withdraw` to withdraw them.
    #[serde(default)]
    pub op: Option<String>,
    /// The name of a secret holding extra request headers (authentication). It is not
    /// resolved here, only carried: the caller reads the secret and hands the headers to
    /// the built source.
    #[serde(default)]
    pub headers_secret: Option<String>,
}

impl SourceConfig {
    /// The operation, with the default applied: `add` or `withdraw`.
    pub fn op_or_default(&self) -> &str {
        self.op.as_deref().unwrap_or(OPS[0])
    }

    /// Check every field, as [`parse_sources`] does for each entry. The error names the
    /// source by name (no index: the value did not come from an array).
    pub fn validate(&self) -> Result<(), SourceError> {
        self.check().map_err(|(field, reason)| SourceError::Config {
            index: None,
            name: Some(self.name.clone()),
            field: field.to_string(),
            reason,
        })
    }

    /// The first field at fault, and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        check_name(&self.name).map_err(|r| ("name", r))?;
        check_kind(&self.kind).map_err(|r| ("kind", r))?;
        check_url(&self.url).map_err(|r| ("url", r))?;
        check_list(&self.list).map_err(|r| ("list", r))?;
        if !FORMATS.contains(&self.format.as_str()) {
            return Err((
                "format",
                format!("{:?} is not one of {}", self.format, FORMATS.join(", ")),
            ));
        }
        if let Some(op) = &self.op {
            if !OPS.contains(&op.as_str()) {
                return Err((
                    "op",
                    format!("{op:?} is not one of {} (default add)", OPS.join(", ")),
                ));
            }
        }
        if let Some(secret) = &self.headers_secret {
            check_secret_name(secret).map_err(|r| ("headers_secret", r))?;
        }
        Ok(())
    }
}

/// Read and check the sources configuration: a JSON array of [`SourceConfig`] objects.
///
/// Every field of every entry is checked; the first problem is returned, naming the
/// entry's position and name and the field (an unknown field is named by its key). Two
/// entries with the same name are refused. An empty array is valid (no sources).
pub fn parse_sources(json: &str) -> Result<Vec<SourceConfig>, SourceError> {
    let values: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| SourceError::Document {
            reason: e.to_string(),
        })?;
    let mut sources = Vec::with_capacity(values.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, value) in values.into_iter().enumerate() {
        let config = parse_one(index, value)?;
        if let Some(&first) = seen.get(&config.name) {
            return Err(SourceError::DuplicateName {
                name: config.name,
                first,
                second: index,
            });
        }
        seen.insert(config.name.clone(), index);
        sources.push(config);
    }
    Ok(sources)
}

/// One entry of the array, checked.
fn parse_one(index: usize, value: serde_json::Value) -> Result<SourceConfig, SourceError> {
    let error = |name: Option<String>, field: &str, reason: String| SourceError::Config {
        index: Some(index),
        name,
        field: field.to_string(),
        reason,
    };
    let serde_json::Value::Object(object) = &value else {
        return Err(error(
            None,
            "(entry)",
            format!("expected a JSON object, found {}", json_type(&value)),
        ));
    };
    // The name, if it is readable, so that later errors can show it.
    let name = object
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    // Unknown keys first, named by key (serde would name the first one it happens on, but
    // without saying which entry it was in).
    if let Some(key) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(error(
            name,
            key,
            format!("unknown field; expected one of {}", FIELDS.join(", ")),
        ));
    }
    let config: SourceConfig =
        serde_json::from_value(value).map_err(|e| error(name.clone(), "(entry)", e.to_string()))?;
    config
        .check()
        .map_err(|(field, reason)| error(name, field, reason))?;
    Ok(config)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{name:?} must be 1 to {MAX_NAME_BYTES} characters long"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{name:?} has {c:?}; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"
        ));
    }
    if name.chars().all(|c| c == '.') {
        return Err(format!("{name:?} is only dots"));
    }
    Ok(())
}

fn check_kind(kind: &str) -> Result<(), String> {
    if BUILT_IN_KINDS.contains(&kind) || PLANNED_KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(format!(
            "unknown kind {kind:?} (supported: {}; known but not built in yet: {})",
            BUILT_IN_KINDS.join(", "),
            PLANNED_KINDS.join(", ")
        ))
    }
}

fn check_list(list: &str) -> Result<(), String> {
    if list.is_empty() {
        return Err("the list name is empty".to_string());
    }
    if list.len() > MAX_LIST_NAME_BYTES {
        return Err(format!(
            "the list name is {} bytes long; at most {MAX_LIST_NAME_BYTES} are allowed",
            list.len()
        ));
    }
    if list.trim() != list {
        return Err(format!("{list:?} has white space at either end"));
    }
    if list.chars().any(char::is_control) {
        return Err(format!("{list:?} has a control character"));
    }
    Ok(())
}

fn check_secret_name(secret: &str) -> Result<(), String> {
    if secret.is_empty() || secret.len() > MAX_SECRET_NAME_BYTES {
        return Err(format!(
            "the secret name must be 1 to {MAX_SECRET_NAME_BYTES} characters long"
        ));
    }
    // The characters secret stores accept in names (and ARNs: ':'), nothing else.
    if let Some(c) = secret.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '=' | '.' | '@' | '-' | ':'))
    }) {
        return Err(format!("{secret:?} has {c:?}, which no secret name has"));
    }
    Ok(())
}

/// Parse a configured URL and check it: see [`check_target`].
pub(crate) fn check_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{:?} is not a URL: {e}", redact_str(url)))?;
    check_target(&parsed)?;
    Ok(parsed)
}

/// Whether hashgate may fetch from this URL: https, or http to a loopback host; no user
/// information. Used for the configured URL and for every redirect target.
pub(crate) fn check_target(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => {
            if url.host().is_none() {
                return Err(format!("{} has no host", redact(url)));
            }
        }
        "http" => {
            if !is_loopback(url) {
                return Err(format!(
                    "{} is plain http to a host that is not loopback; use https \
                     (plain http is allowed only for 127.0.0.1, localhost and [::1])",
                    redact(url)
                ));
            }
        }
        other => {
            return Err(format!(
                "{}: scheme {other:?} is not supported; use https",
                redact(url)
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{} carries user information; put credentials in the headers secret",
            redact(url)
        ));
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // An IPv6 host comes bracketed; the parser has already normalised IPv4 forms.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL as it may be shown: no user information, no query string (a `?…` marks that
/// there was one), no fragment.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both fail only for URLs that cannot have user information, which is then absent.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let mut s = shown.to_string();
    if had_query {
        s.push_str("?…");
    }
    s
}

/// [`redact`] for text that did not parse: everything from the first '?' or '#' is cut,
/// and so is anything before an '@' in the authority.
fn redact_str(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let (head, tail) = url.split_at(cut);
    let head = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    if tail.is_empty() {
        head
    } else {
        format!("{head}?…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(extra: &str) -> String {
        format!(
            r#"{{"name":"s1","kind":"http","url":"https://lists.example/l.txt","list":"l","format":"plain"{extra}}}"#
        )
    }

    fn config_error(json: &str) -> (Option<usize>, Option<String>, String, String) {
        match parse_sources(json) {
            Err(SourceError::Config {
                index,
                name,
                field,
                reason,
            }) => (index, name, field, reason),
            other => panic!("expected a Config error, got {other:?}"),
        }
    }

    #[test]
    fn a_full_entry_reads_back_and_defaults_apply() {
        let json = format!(
            "[{}, {}]",
            entry(r#","op":"withdraw","headers_secret":"hashgate/ncmec-headers""#),
            entry("").replace("\"s1\"", "\"s2\"")
        );
        let sources = parse_sources(&json).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].op.as_deref(), Some("withdraw"));
        assert_eq!(sources[0].op_or_default(), "withdraw");
        assert_eq!(
            sources[0].headers_secret.as_deref(),
            Some("hashgate/ncmec-headers")
        );
        assert_eq!(sources[1].op, None);
        assert_eq!(sources[1].op_or_default(), "add");
        // What serialises parses back to the same thing.
        let again = parse_sources(&serde_json::to_string(&sources).unwrap()).unwrap();
        assert_eq!(again, sources);
    }

    #[test]
    fn an_empty_array_is_no_sources() {
        assert!(parse_sources("[]").unwrap().is_empty());
    }

    #[test]
    fn a_document_that_is_not_an_array_is_refused() {
        for json in ["", "{}", "[1", "\"http\""] {
            assert!(
                matches!(parse_sources(json), Err(SourceError::Document { .. })),
                "{json:?}"
            );
        }
    }

    #[test]
    fn an_entry_that_is_not_an_object_is_named_by_position() {
        let (index, name, field, reason) = config_error(&format!("[{}, 7]", entry("")));
        assert_eq!((index, name, field.as_str()), (Some(1), None, "(entry)"));
        assert!(reason.contains("a number"), "{reason}");
    }

    #[test]
    fn missing_and_mistyped_fields_are_refused() {
        let (index, name, field, reason) =
            config_error(r#"[{"name":"s1","kind":"http","url":"https://a.example/","list":"l"}]"#);
        assert_eq!(
            (index, name.as_deref(), field.as_str()),
            (Some(0), Some("s1"), "(entry)")
        );
        assert!(reason.contains("format"), "{reason}");
        let (_, _, field, _) = config_error(&format!("[{}]", entry(r#","op":1"#)));
        assert_eq!(field, "(entry)");
    }

    #[test]
    fn an_unknown_field_is_named_by_its_key() {
        let (index, name, field, reason) =
            config_error(&format!("[{}]", entry(r#","password":"x""#)));
        assert_eq!(
            (index, name.as_deref(), field.as_str()),
            (Some(0), Some("s1"), "password")
        );
        assert!(reason.contains("unknown field"), "{reason}");
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "has space", "a/b", "ü", "..", &"n".repeat(65)] {
            let json = format!("[{}]", entry("").replace("\"s1\"", &format!("{bad:?}")));
            let (_, _, field, _) = config_error(&json);
            assert_eq!(field, "name", "{bad:?}");
        }
        for good in ["a", "ncmec.hash-list_2", &"n".repeat(64), ".hidden"] {
            let json = format!("[{}]", entry("").replace("\"s1\"", &format!("{good:?}")));
            assert!(parse_sources(&json).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn duplicate_names_are_refused_with_both_positions() {
        let json = format!("[{0}, {1}, {0}]", entry(""), entry("").replace("s1", "s2"));
        match parse_sources(&json) {
            Err(SourceError::DuplicateName {
                name,
                first,
                second,
            }) => assert_eq!((name.as_str(), first, second), ("s1", 0, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn formats_ops_lists_and_secrets_are_checked() {
        let cases = [
            (entry("").replace("\"plain\"", "\"xml\""), "format"),
            (entry("").replace("\"plain\"", "\"PLAIN\""), "format"),
            (entry(r#","op":"remove""#), "op"),
            (entry("").replace("\"list\":\"l\"", "\"list\":\"\""), "list"),
            (
                entry("").replace("\"list\":\"l\"", "\"list\":\" l\""),
                "list",
            ),
            (
                entry("").replace("\"list\":\"l\"", "\"list\":\"a\\u0007b\""),
                "list",
            ),
            (entry(r#","headers_secret":"""#), "headers_secret"),
            (entry(r#","headers_secret":"has space""#), "headers_secret"),
            (entry("").replace("\"http\"", "\"ftp\""), "kind"),
        ];
        for (e, expected) in cases {
            let (index, _, field, _) = config_error(&format!("[{e}]"));
            assert_eq!((index, field.as_str()), (Some(0), expected), "{e}");
        }
        // A known kind that is not built in yet is valid configuration; building it fails.
        let e = entry("").replace("\"http\"", "\"ncmec\"");
        assert!(parse_sources(&format!("[{e}]")).is_ok());
    }

    #[test]
    fn urls_must_be_https_or_loopback_http_without_credentials() {
        for good in [
            "https://lists.example/a.txt?token=x",
            "http://127.0.0.1:8080/l",
            "http://127.8.9.10/l",
            "http://localhost/l",
            "http://LOCALHOST:1/l",
            "http://[::1]:9/l",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://lists.example/a.txt",
            "http://10.0.0.1/l",
            "http://localhost.evil.example/l",
            "ftp://lists.example/l",
            "file:///etc/passwd",
            "https://user:pw@lists.example/l",
            "lists.example/l",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shown_urls_lose_credentials_and_query_strings() {
        let url = Url::parse("https://u:p@lists.example/a/b.txt?key=SECRET#frag").unwrap();
        assert_eq!(redact(&url), "https://lists.example/a/b.txt?…");
        let url = Url::parse("https://lists.example/a").unwrap();
        assert_eq!(redact(&url), "https://lists.example/a");
        let reason = check_url("https://u:SECRET@lists.example/l").unwrap_err();
        assert!(!reason.contains("SECRET"), "{reason}");
        let reason = check_url("https://[bad/l?key=SECRET").unwrap_err();
        assert!(!reason.contains("SECRET"), "{reason}");
        assert_eq!(redact_str("https://u:pw@h/p?k=v"), "https://h/p?…");
    }

    #[test]
    fn validate_names_the_source_without_a_position() {
        let mut config: SourceConfig = serde_json::from_str(&entry("")).unwrap();
        assert!(config.validate().is_ok());
        config.url = "http://lists.example/".to_string();
        match config.validate() {
            Err(SourceError::Config {
                index: None,
                name: Some(name),
                field,
                ..
            }) => assert_eq!((name.as_str(), field.as_str()), ("s1", "url")),
            other => panic!("{other:?}"),
        }
    }
}
