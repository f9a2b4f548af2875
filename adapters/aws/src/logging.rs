//! The functions' logging, set up once the same way in each: the `HASHGATE_LOG` filter
//! (`tracing`'s `EnvFilter` syntax, `info` by default); in Lambda one JSON object per line
//! without a timestamp (CloudWatch stamps each line). Elsewhere `HASHGATE_LOG_FORMAT`
//! chooses: `text` (the default: plain lines, coloured only on a terminal) or `json` (one
//! object per line with its timestamp, for a log collector such as Kubernetes').

use std::io::IsTerminal;

/// The variable that chooses the log format outside Lambda.
pub const FORMAT_VARIABLE: &str = "HASHGATE_LOG_FORMAT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("{FORMAT_VARIABLE}={0:?}: expected text or json")]
pub struct UnknownFormat(String);

/// `HASHGATE_LOG_FORMAT`'s value: unset or blank is text.
pub fn format(value: Option<&str>) -> Result<Format, UnknownFormat> {
    match value.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("text") => Ok(Format::Text),
        Some("json") => Ok(Format::Json),
        Some(other) => Err(UnknownFormat(other.to_string())),
    }
}

pub fn init(in_lambda: bool) -> Result<(), UnknownFormat> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HASHGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if in_lambda {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .without_time()
            .init();
        return Ok(());
    }
    match format(std::env::var(FORMAT_VARIABLE).ok().as_deref())? {
        Format::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .init(),
        Format::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stdout().is_terminal())
            .init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_text_unless_json_is_asked_for() {
        assert_eq!(format(None).unwrap(), Format::Text);
        assert_eq!(format(Some(" ")).unwrap(), Format::Text);
        assert_eq!(format(Some("text")).unwrap(), Format::Text);
        assert_eq!(format(Some("JSON")).unwrap(), Format::Json);
        let e = format(Some("yaml")).unwrap_err().to_string();
        assert!(e.contains(FORMAT_VARIABLE) && e.contains("yaml"), "{e}");
    }
}
