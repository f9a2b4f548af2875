//! The functions' logging, set up once the same way in each: the `HASHGATE_LOG` filter
//! (`tracing`'s `EnvFilter` syntax, `info` by default); in Lambda one JSON object per line
//! without a timestamp (CloudWatch stamps each line), elsewhere plain lines, coloured only
//! on a terminal.

use std::io::IsTerminal;

pub fn init(in_lambda: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HASHGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if in_lambda {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .without_time()
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stdout().is_terminal())
            .init();
    }
}
