//! The HTTP source against a real HTTP server on 127.0.0.1 that serves a list with an
//! ETag and a Last-Modified date, honours (or, when told to, ignores) conditional
//! requests, and records every request it answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use hashgate_sources::{
    build, parse_sources, ListSource, PullLimits, Pulled, Source, SourceConfig, SourceError,
    SourceState,
};
use sha2::{Digest, Sha256};

const LAST_MODIFIED: &str = "Tue, 01 Dec 2026 10:00:00 GMT";

/// What the server serves, and what it saw.
#[derive(Default)]
struct Served {
    body: Vec<u8>,
    etag: String,
    /// Answer 304 to a matching If-None-Match / If-Modified-Since.
    honour_conditionals: bool,
    /// Send no ETag (only Last-Modified).
    without_etag: bool,
    seen: Vec<Seen>,
}

/// One request the server answered.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    status: u16,
    body_bytes: usize,
}

type Shared = Arc<Mutex<Served>>;

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_string())
}

async fn list(State(served): State<Shared>, headers: HeaderMap) -> Response {
    let mut served = served.lock().unwrap();
    let if_none_match = header_text(&headers, header::IF_NONE_MATCH);
    let if_modified_since = header_text(&headers, header::IF_MODIFIED_SINCE);
    let not_modified = served.honour_conditionals
        && match (&if_none_match, &if_modified_since) {
            (Some(tag), _) => !served.without_etag && *tag == served.etag,
            (None, Some(since)) => since == LAST_MODIFIED,
            (None, None) => false,
        };
    let (status, body) = if not_modified {
        (StatusCode::NOT_MODIFIED, Vec::new())
    } else {
        (StatusCode::OK, served.body.clone())
    };
    served.seen.push(Seen {
        if_none_match,
        if_modified_since,
        status: status.as_u16(),
        body_bytes: body.len(),
    });
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    if !served.without_etag {
        out.insert(header::ETAG, served.etag.parse().unwrap());
    }
    out.insert(header::LAST_MODIFIED, LAST_MODIFIED.parse().unwrap());
    response
}

/// A body of `n` bytes with its Content-Length.
async fn sized(n: usize) -> Response {
    (StatusCode::OK, vec![b'0'; n]).into_response()
}

/// A body that never ends, sent chunked (no Content-Length).
async fn endless() -> Response {
    let chunk = Bytes::from(vec![b'0'; 4096]);
    let stream = futures_util::stream::repeat(Ok::<_, Infallible>(chunk));
    Body::from_stream(stream).into_response()
}

/// A short body sent chunked, so that only the bytes that arrive can be measured.
async fn chunked(n: usize) -> Response {
    let stream = futures_util::stream::iter(vec![Ok::<_, Infallible>(Bytes::from(vec![b'1'; n]))]);
    Body::from_stream(stream).into_response()
}

/// Start the test server on 127.0.0.1 (an ephemeral port); it runs until the test ends.
async fn server(served: Shared) -> SocketAddr {
    let app = Router::new()
        .route("/list.txt", get(list))
        .route("/exactly-1024", get(|| sized(1024)))
        .route("/over-1024", get(|| sized(1025)))
        .route("/endless", get(endless))
        .route("/chunked-1024", get(|| chunked(1024)))
        .route("/chunked-1025", get(|| chunked(1025)))
        .route("/always-304", get(|| async { StatusCode::NOT_MODIFIED }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "no list today") }),
        )
        .route(
            "/away",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://lists.example.invalid/list.txt")],
                )
            }),
        )
        .route(
            "/hop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/list.txt")]) }),
        )
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn shared(body: &[u8], etag: &str, honour_conditionals: bool) -> Shared {
    Arc::new(Mutex::new(Served {
        body: body.to_vec(),
        etag: etag.to_string(),
        honour_conditionals,
        ..Served::default()
    }))
}

fn config(name: &str, kind: &str, url: &str) -> SourceConfig {
    SourceConfig {
        name: name.to_string(),
        kind: kind.to_string(),
        url: url.to_string(),
        list: "test-list".to_string(),
        format: "plain".to_string(),
        op: None,
        headers_secret: None,
    }
}

fn source(url: &str) -> Source {
    build(&config("test-source", "http", url), &PullLimits::default()).unwrap()
}

fn small_source(url: &str) -> Source {
    let limits = PullLimits {
        max_body_bytes: 1024,
        ..PullLimits::default()
    };
    build(&config("small", "http", url), &limits).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn changed(pulled: Pulled) -> (Bytes, SourceState) {
    match pulled {
        Pulled::Changed { body, state } => (body, state),
        Pulled::Unchanged => panic!("expected Changed, got Unchanged"),
    }
}

const LIST_V1: &[u8] = b"d41d8cd98f00b204e9800998ecf8427f\n0cc175b9c0f1b6a831c399e269772661\n";
const LIST_V2: &[u8] = b"0cc175b9c0f1b6a831c399e269772661\n92eb5ffee6ae2fec3ad71c777531578f\n";

#[tokio::test]
async fn first_pull_changed_then_unchanged_by_etag_then_changed_again() {
    let served = shared(LIST_V1, "\"v1\"", true);
    let addr = server(served.clone()).await;
    let mut source = source(&format!("http://{addr}/list.txt"));
    assert_eq!(source.name(), "test-source");

    // First pull: unconditional, the whole list and its validators.
    let (body, state) = changed(source.pull(&SourceState::default()).await.unwrap());
    assert_eq!(&body[..], LIST_V1);
    assert_eq!(state.etag.as_deref(), Some("\"v1\""));
    assert_eq!(state.last_modified.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(state.sha256, Some(sha256_hex(LIST_V1)));
    let fetched_at = state.fetched_at.as_deref().unwrap();
    assert!(
        fetched_at.parse::<jiff::Timestamp>().is_ok(),
        "{fetched_at}"
    );

    // Second pull with that state: one conditional request, a 304 without a body.
    assert_eq!(source.pull(&state).await.unwrap(), Pulled::Unchanged);
    {
        let seen = &served.lock().unwrap().seen;
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].if_none_match, None);
        assert_eq!(seen[0].status, 200);
        assert_eq!(
            seen[1],
            Seen {
                if_none_match: Some("\"v1\"".to_string()),
                // The ETag is enough; the date is sent only without one.
                if_modified_since: None,
                status: 304,
                body_bytes: 0,
            }
        );
    }

    // The list changes on the server: the same state now pulls the new list.
    {
        let mut s = served.lock().unwrap();
        s.body = LIST_V2.to_vec();
        s.etag = "\"v2\"".to_string();
    }
    let (body, state2) = changed(source.pull(&state).await.unwrap());
    assert_eq!(&body[..], LIST_V2);
    assert_eq!(state2.etag.as_deref(), Some("\"v2\""));
    assert_eq!(state2.sha256, Some(sha256_hex(LIST_V2)));
    let seen = served.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!((seen[2].status, seen[2].body_bytes), (200, LIST_V2.len()));
}

#[tokio::test]
async fn a_server_ignoring_if_none_match_with_the_same_bytes_is_unchanged_by_sha256() {
    let served = shared(LIST_V1, "\"v1\"", false);
    let addr = server(served.clone()).await;
    let mut source = source(&format!("http://{addr}/list.txt"));
    let (_, state) = changed(source.pull(&SourceState::default()).await.unwrap());

    assert_eq!(source.pull(&state).await.unwrap(), Pulled::Unchanged);
    {
        let seen = &served.lock().unwrap().seen;
        assert_eq!(seen.len(), 2);
        // It was asked conditionally, and sent the whole list anyway.
        assert_eq!(seen[1].if_none_match.as_deref(), Some("\"v1\""));
        assert_eq!((seen[1].status, seen[1].body_bytes), (200, LIST_V1.len()));
    }

    // Different bytes under the same ignored condition are a change.
    served.lock().unwrap().body = LIST_V2.to_vec();
    let (body, _) = changed(source.pull(&state).await.unwrap());
    assert_eq!(&body[..], LIST_V2);

    // A state that knows only the digest (upper-case hex too) is enough.
    let only_digest = SourceState {
        sha256: Some(sha256_hex(LIST_V2).to_uppercase()),
        ..SourceState::default()
    };
    assert_eq!(source.pull(&only_digest).await.unwrap(), Pulled::Unchanged);
}

#[tokio::test]
async fn without_an_etag_the_last_modified_date_makes_the_request_conditional() {
    let served = shared(LIST_V1, "", true);
    served.lock().unwrap().without_etag = true;
    let addr = server(served.clone()).await;
    let mut source = source(&format!("http://{addr}/list.txt"));
    let (_, state) = changed(source.pull(&SourceState::default()).await.unwrap());
    assert_eq!(state.etag, None);
    assert_eq!(state.last_modified.as_deref(), Some(LAST_MODIFIED));

    assert_eq!(source.pull(&state).await.unwrap(), Pulled::Unchanged);
    let seen = served.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].if_none_match, None);
    assert_eq!(seen[1].if_modified_since.as_deref(), Some(LAST_MODIFIED));
    assert_eq!((seen[1].status, seen[1].body_bytes), (304, 0));
}

#[tokio::test]
async fn a_body_at_the_limit_is_taken_and_one_over_it_is_refused() {
    let addr = server(shared(b"", "\"x\"", true)).await;
    let url = |path: &str| format!("http://{addr}{path}");

    // Exactly the limit, declared or chunked, is accepted.
    for path in ["/exactly-1024", "/chunked-1024"] {
        let (body, _) = changed(
            small_source(&url(path))
                .pull(&SourceState::default())
                .await
                .unwrap(),
        );
        assert_eq!(body.len(), 1024, "{path}");
    }

    // One byte more with a Content-Length: refused on the declared length.
    match small_source(&url("/over-1024"))
        .pull(&SourceState::default())
        .await
    {
        Err(SourceError::TooLarge {
            name,
            limit,
            declared,
            ..
        }) => assert_eq!(
            (name.as_str(), limit, declared),
            ("small", 1024, Some(1025))
        ),
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // Without a Content-Length: refused on the bytes that arrive, a short body and a body
    // that never ends alike (the pull returning at all shows reading stopped).
    for path in ["/chunked-1025", "/endless"] {
        match small_source(&url(path)).pull(&SourceState::default()).await {
            Err(e @ SourceError::TooLarge { declared: None, .. }) => {
                assert!(e.to_string().contains("limit of 1024 bytes"), "{e}")
            }
            other => panic!("{path}: expected TooLarge, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_error_status_names_the_source_the_url_without_its_query_and_the_status() {
    let addr = server(shared(b"", "\"x\"", true)).await;
    let mut source = source(&format!("http://{addr}/broken?api_key=SECRET"));
    let error = source.pull(&SourceState::default()).await.unwrap_err();
    match &error {
        SourceError::Status { name, url, status } => {
            assert_eq!(name, "test-source");
            assert_eq!(url, &format!("http://{addr}/broken?…"));
            assert_eq!(*status, 500);
        }
        other => panic!("expected Status, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("test-source"), "{message}");
    assert!(message.contains("500"), "{message}");
    assert!(!message.contains("SECRET"), "{message}");
}

#[tokio::test]
async fn a_304_is_unchanged_only_when_the_request_was_conditional() {
    let served = shared(LIST_V1, "\"v1\"", true);
    let addr = server(served.clone()).await;

    // A state with the ETag but no digest: the server's 304 is trusted.
    let mut source = source(&format!("http://{addr}/list.txt"));
    let etag_only = SourceState {
        etag: Some("\"v1\"".to_string()),
        ..SourceState::default()
    };
    assert_eq!(source.pull(&etag_only).await.unwrap(), Pulled::Unchanged);

    // A server that answers 304 to a request without conditions has no list to offer
    // and nothing to compare with: an error, not Unchanged.
    let mut confused = self::source(&format!("http://{addr}/always-304"));
    match confused.pull(&SourceState::default()).await {
        Err(SourceError::Status { status: 304, .. }) => {}
        other => panic!("expected Status 304, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_followed_on_loopback_and_refused_to_plain_http_elsewhere() {
    let served = shared(LIST_V1, "\"v1\"", true);
    let addr = server(served).await;

    let (body, _) = changed(
        source(&format!("http://{addr}/hop"))
            .pull(&SourceState::default())
            .await
            .unwrap(),
    );
    assert_eq!(&body[..], LIST_V1);

    // The target is refused before any connection is attempted (the .invalid name would
    // not resolve anyway, which would be a transport error, not this one).
    match source(&format!("http://{addr}/away"))
        .pull(&SourceState::default())
        .await
    {
        Err(SourceError::Redirect { name, reason, .. }) => {
            assert_eq!(name, "test-source");
            assert!(reason.contains("not loopback"), "{reason}");
        }
        other => panic!("expected Redirect, got {other:?}"),
    }
}

#[tokio::test]
async fn a_connection_refused_is_a_transport_error_naming_the_source() {
    // Bind, note the port, close: nothing listens there any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    match source(&format!("http://{addr}/list.txt"))
        .pull(&SourceState::default())
        .await
    {
        Err(e @ SourceError::Transport { .. }) => {
            assert!(e.to_string().contains("test-source"), "{e}")
        }
        other => panic!("expected Transport, got {other:?}"),
    }
}

#[tokio::test]
async fn extra_headers_are_sent() {
    let seen = Arc::new(Mutex::new(None::<String>));
    let app = Router::new().route(
        "/auth",
        get({
            let seen = seen.clone();
            move |headers: HeaderMap| async move {
                *seen.lock().unwrap() = header_text(&headers, header::AUTHORIZATION);
                "0cc175b9c0f1b6a831c399e269772661\n"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut source = source(&format!("http://{addr}/auth"))
        .with_headers([("Authorization", "Bearer list-token")])
        .unwrap();
    changed(source.pull(&SourceState::default()).await.unwrap());
    assert_eq!(seen.lock().unwrap().as_deref(), Some("Bearer list-token"));
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused_by_validation() {
    let config = config("remote", "http", "http://lists.example/list.txt");
    match build(&config, &PullLimits::default()) {
        Err(SourceError::Config { name, field, .. }) => {
            assert_eq!((name.as_deref(), field.as_str()), (Some("remote"), "url"))
        }
        other => panic!("expected Config, got {other:?}"),
    }
    let json = serde_json::to_string(&[config]).unwrap();
    match parse_sources(&json) {
        Err(SourceError::Config {
            index, name, field, ..
        }) => assert_eq!(
            (index, name.as_deref(), field.as_str()),
            (Some(0), Some("remote"), "url")
        ),
        other => panic!("expected Config, got {other:?}"),
    }
    // https to the same host is fine.
    let https = self::config("remote", "http", "https://lists.example/list.txt");
    assert!(build(&https, &PullLimits::default()).is_ok());
}

#[test]
fn unknown_and_not_yet_built_kinds_have_distinct_errors() {
    let url = "https://lists.example/list.txt";
    match build(&config("mystery", "gopher", url), &PullLimits::default()) {
        Err(e @ SourceError::UnknownKind { .. }) => {
            let message = e.to_string();
            assert!(message.contains("mystery"), "{message}");
            assert!(message.contains("\"gopher\""), "{message}");
            assert!(message.contains("supported: http"), "{message}");
        }
        other => panic!("expected UnknownKind, got {other:?}"),
    }
    match build(&config("nc", "ncmec", url), &PullLimits::default()) {
        Err(e @ SourceError::NotBuiltIn { .. }) => {
            let message = e.to_string();
            assert!(message.contains("\"ncmec\""), "{message}");
            assert!(message.contains("not built in yet"), "{message}");
        }
        other => panic!("expected NotBuiltIn, got {other:?}"),
    }
}

#[test]
fn unusable_limits_are_refused() {
    let limits = PullLimits {
        max_body_bytes: 0,
        ..PullLimits::default()
    };
    let config = config("s", "http", "https://lists.example/list.txt");
    assert!(matches!(
        build(&config, &limits),
        Err(SourceError::Limits { .. })
    ));
}

#[test]
fn parse_sources_refuses_bad_configurations_naming_index_and_field() {
    let good =
        r#"{"name":"a","kind":"http","url":"https://l.example/a","list":"l","format":"csv"}"#;
    let field_of = |json: String| match parse_sources(&json) {
        Err(SourceError::Config { index, field, .. }) => (index, field),
        other => panic!("{json}: expected Config, got {other:?}"),
    };
    let second = |entry: &str| format!("[{good}, {entry}]");
    assert_eq!(
        field_of(second(&good.replace("\"a\"", "\"b c\""))),
        (Some(1), "name".to_string())
    );
    assert_eq!(
        field_of(second(
            &good.replace("\"a\"", "\"b\"").replace("csv", "xlsx")
        )),
        (Some(1), "format".to_string())
    );
    assert_eq!(
        field_of(second(
            &good
                .replace("\"a\"", "\"b\"")
                .replace("}", r#","op":"delete"}"#)
        )),
        (Some(1), "op".to_string())
    );
    assert_eq!(
        field_of(second(
            &good
                .replace("\"a\"", "\"b\"")
                .replace("}", r#","headers":"x"}"#)
        )),
        (Some(1), "headers".to_string())
    );
    match parse_sources(&second(good)) {
        Err(e @ SourceError::DuplicateName { .. }) => {
            assert!(e.to_string().contains("#0 and #1"), "{e}")
        }
        other => panic!("expected DuplicateName, got {other:?}"),
    }
    let sources = parse_sources(&second(&good.replace("\"a\"", "\"b\""))).unwrap();
    assert_eq!(sources.len(), 2);
}
