//! Mail over SMTP: a minimal SMTP server on loopback receives what Tally's real SMTP client
//! (lettre) sends; the outbox row is marked sent. A dead server leaves the mail queued with
//! its error, and sign-up still answers.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

use crate::support::{Api, PASSWORD, ok_json};

/// Accepts SMTP sessions and keeps each message's envelope recipient and data.
async fn fake_smtp() -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let store = inbox.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake.test ESMTP\r\n").await.ok();
                let (mut rcpt, mut data, mut in_data) = (String::new(), String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            store.lock().unwrap().push((rcpt.clone(), data.clone()));
                            write.write_all(b"250 queued\r\n").await.ok();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let upper = line.to_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-fake.test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        rcpt = line[8..].trim().trim_matches(['<', '>']).to_owned();
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        data.clear();
                        b"354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.ok();
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, inbox)
}

#[tokio::test]
async fn confirmation_mail_goes_out_over_smtp() {
    let (port, inbox) = fake_smtp().await;
    let api = Api::with(|c| {
        c.auth.autoconfirm = false;
        c.auth.smtp_host = Some("127.0.0.1".into());
        c.auth.smtp_port = port;
        c.auth.smtp_tls = "none".into();
        c.auth.smtp_from = "Tally <no-reply@tally.test>".into();
    })
    .await;
    let res = api
        .req(Method::POST, "/signup")
        .json(&json!({"email": "mail@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    ok_json(res).await;
    let (_, link, _) = api.last_mail("mail@example.com").await;
    let mut delivered = None;
    let started = std::time::Instant::now();
    for _ in 0..100 {
        delivered = inbox.lock().unwrap().first().cloned();
        if delivered.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (rcpt, data) = delivered.expect("the SMTP server received the mail");
    // The sender is woken by the commit, not by its five-second poll.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "delivered after {:?}",
        started.elapsed()
    );
    assert_eq!(rcpt, "mail@example.com");
    assert!(data.contains("Subject: Confirm your signup"), "{data}");
    assert!(data.contains("From: Tally <no-reply@tally.test>"), "{data}");
    // The body is quoted-printable: undo its soft line breaks and escapes.
    let body = data.replace("=\n", "").replace("=3D", "=");
    assert!(body.contains(&link), "the body carries the link: {body}");
    // The row is marked sent (the sender commits right after the SMTP reply).
    let mut sent = false;
    for _ in 0..50 {
        sent = sqlx::query_scalar(
            "select sent_at is not null from auth.mail_outbox where recipient = 'mail@example.com'",
        )
        .fetch_one(&api.app.db.owner)
        .await
        .unwrap();
        if sent {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sent, "the outbox row is marked sent");
}

#[tokio::test]
async fn an_unreachable_smtp_server_keeps_the_mail_queued_with_its_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = Api::with(|c| {
        c.auth.autoconfirm = false;
        c.auth.smtp_host = Some("127.0.0.1".into());
        c.auth.smtp_port = port;
        c.auth.smtp_tls = "none".into();
    })
    .await;
    let res = api
        .req(Method::POST, "/recover")
        .json(&json!({"email": "nobody@example.com"}))
        .send()
        .await
        .unwrap();
    ok_json(res).await;
    api.req(Method::POST, "/signup")
        .json(&json!({"email": "q@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let mut row: Option<(i32, Option<String>)> = None;
    for _ in 0..100 {
        row = sqlx::query_as("select attempts, error from auth.mail_outbox where recipient = 'q@example.com' and attempts > 0")
            .fetch_optional(&api.app.db.owner)
            .await
            .unwrap();
        if row.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (attempts, error) = row.expect("a failed attempt is recorded");
    assert_eq!(attempts, 1);
    assert!(error.is_some_and(|e| !e.is_empty()));
}
