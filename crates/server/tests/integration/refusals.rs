//! What the server refuses before or around the services: slow and idle connections are closed
//! (slowloris), connections beyond the cap wait, framework refusals come in each service's
//! error shape, and a database that went away is a 503 in each service's shape.

use std::time::Duration;

use serde_json::{Value, json};
use tally_testkit::TestApp;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Reads what the server sends until it closes the connection (at most `within`); `None` if
/// it is still open by then.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn slow_headers_slow_bodies_and_idle_connections_are_closed() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| {
        c.http.http_header_timeout = 1;
        c.http.http_body_timeout = 1;
    })
    .await?;
    // Headers never finished.
    let mut slow = TcpStream::connect(app.addr).await?;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: tally\r\nX-Slow: ")
        .await?;
    assert!(
        until_closed(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection with unfinished headers is closed"
    );
    // Connected and silent.
    let mut idle = TcpStream::connect(app.addr).await?;
    assert!(
        until_closed(&mut idle, Duration::from_secs(5))
            .await
            .is_some()
    );
    // A body that stops coming: answered 4xx in the functions' shape, then closed.
    let mut body = TcpStream::connect(app.addr).await?;
    let head = format!(
        "POST /functions/v1/log-create HTTP/1.1\r\nHost: tally\r\napikey: {key}\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"org",
        key = app.keys.anon_key()
    );
    body.write_all(head.as_bytes()).await?;
    let answer = until_closed(&mut body, Duration::from_secs(5))
        .await
        .expect("closed within the time-out");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    app.stop().await
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| c.http.http_max_connections = 2).await?;
    let holders = [
        TcpStream::connect(app.addr).await?,
        TcpStream::connect(app.addr).await?,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(app.addr).await?;
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: tally\r\nConnection: close\r\n\r\n")
        .await?;
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection waits while two are held"
    );
    drop(holders);
    let answer = until_closed(&mut third, Duration::from_secs(5))
        .await
        .expect("answered once a slot frees");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.stop().await
}

#[tokio::test]
async fn framework_refusals_come_in_each_services_shape() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // A fresh connection per request: a refused body leaves its connection closing.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let key = app.keys.anon_key();
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, app.url(path))
            .header("apikey", &key)
            .header("authorization", format!("Bearer {key}"))
    };
    let json_of = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("a JSON body");
        (status, body)
    };
    use reqwest::Method;
    let long = format!("?q={}", "x".repeat(40 * 1024));
    // (request, status, the field that carries the code, its value)
    let cases: Vec<(reqwest::RequestBuilder, u16, &str, Value)> = vec![
        (
            call(Method::GET, "/auth/v1/nope"),
            404,
            "code",
            json!("not_found"),
        ),
        (
            call(Method::DELETE, "/auth/v1/settings"),
            405,
            "code",
            json!("method_not_allowed"),
        ),
        (
            call(Method::GET, &format!("/auth/v1/settings{long}")),
            414,
            "code",
            json!("request_uri_too_long"),
        ),
        (
            call(Method::GET, &format!("/rest/v1/projects{long}")),
            414,
            "code",
            json!("414"),
        ),
        (
            call(Method::GET, "/functions/v1/log-create"),
            405,
            "error",
            json!("method_not_allowed"),
        ),
        (
            call(Method::POST, "/functions/v1/log-create").body(vec![b' '; 3 * 1024 * 1024]),
            413,
            "error",
            json!("payload_too_large"),
        ),
        (
            call(Method::GET, "/storage/v1/bucket").header("x-big", "y".repeat(70 * 1024)),
            400,
            "statusCode",
            json!("431"),
        ),
        (
            call(Method::GET, "/nowhere"),
            404,
            "message",
            json!("No route matches this path"),
        ),
    ];
    for (request, status, field, value) in cases {
        let (got, body) = json_of(request.send().await?).await;
        assert_eq!((got, &body[field]), (status, &value), "{body}");
    }
    app.stop().await
}

/// What hyper refuses before any handler runs — a URI over its 64 KiB, a megabyte of headers or
/// 300 of them, a raw `0xff` byte in the path — is answered in the shape of the service the
/// path names, with the right status, and the connection closes.
#[tokio::test]
async fn refusals_before_any_handler_come_in_each_services_shape() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let send = |request: Vec<u8>| async move {
        let mut stream = TcpStream::connect(app.addr).await.expect("connects");
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(&request).await;
        let answer = until_closed(&mut stream, Duration::from_secs(10))
            .await
            .expect("the connection closes");
        let status: u16 = answer
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("no JSON body in {answer:?}"));
        (status, json)
    };
    let request = |target: &[u8], headers: &str| {
        let mut r = b"GET ".to_vec();
        r.extend_from_slice(target);
        r.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\n");
        r.extend_from_slice(headers.as_bytes());
        r.extend_from_slice(b"\r\n");
        r
    };
    let uri = format!("?q={}", "x".repeat(100 * 1024));
    let many: String = (0..300).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge = format!("x-big: {}\r\n", "y".repeat(1024 * 1024));
    let cases: Vec<(Vec<u8>, u16, &str, Value)> = vec![
        (
            request(format!("/rest/v1/projects{uri}").as_bytes(), ""),
            414,
            "code",
            json!("414"),
        ),
        (
            request(
                format!("/realtime/v1/websocket{uri}").as_bytes(),
                "upgrade: websocket\r\nconnection: upgrade\r\n",
            ),
            414,
            "error",
            json!("The request URI is too long"),
        ),
        (
            request(b"/auth/v1/settings", &many),
            431,
            "code",
            json!("request_headers_too_large"),
        ),
        (
            request(b"/storage/v1/bucket", &huge),
            400,
            "statusCode",
            json!("431"),
        ),
        (
            request(b"/auth/v1/\xff", ""),
            400,
            "code",
            json!("validation_failed"),
        ),
        (
            request(b"/functions/v1/\xfflog", ""),
            400,
            "error",
            json!("invalid_request"),
        ),
    ];
    for (raw, status, field, value) in cases {
        let (got, body) = send(raw).await;
        assert_eq!((got, &body[field]), (status, &value), "{body}");
    }
    app.stop().await
}

#[tokio::test]
async fn every_service_answers_503_in_its_shape_while_the_database_is_gone() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| c.ai.worker_concurrency = 0).await?;
    let user = uuid::Uuid::new_v4();
    let token = app.user_token(user);
    crate::fixture::drop_database(&app).await?;
    let http = reqwest::Client::new();
    let key = app.keys.anon_key();
    let call = |method: reqwest::Method, path: &str, bearer: &str| {
        http.request(method, app.url(path))
            .header("apikey", &key)
            .header("authorization", format!("Bearer {bearer}"))
    };
    use reqwest::Method;
    let cases = [
        (
            call(Method::POST, "/auth/v1/token?grant_type=password", &key)
                .json(&json!({"email": "a@b.test", "password": "long-enough-1"})),
            "code",
        ),
        (call(Method::GET, "/rest/v1/projects", &token), "code"),
        (
            call(Method::GET, "/storage/v1/bucket", &token),
            "statusCode",
        ),
        (
            call(Method::POST, "/functions/v1/log-create", &token)
                .json(&json!({"org_id": uuid::Uuid::new_v4(), "comment": "x"})),
            "error",
        ),
    ];
    for (request, field) in cases {
        let res = request.send().await?;
        let status = res.status().as_u16();
        let body: Value = res.json().await?;
        assert_eq!(status, 503, "{body}");
        assert!(body.get(field).is_some(), "{body}");
    }
    app.stop().await
}
