//! Asymmetric signing keys as an operator rotates them (`tally signing-keys`): sessions' tokens
//! are ES256 with the current key's kid and published in the JWKS; a rotation signs nobody out
//! (tokens of the previous key still verify); a revoked key's tokens are refused by REST,
//! functions, storage and realtime — on every instance, at once, and realtime closes the
//! channels they had joined.

use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tally_server::signing_key_commands::{SigningKeyAction, run};
use tally_testkit::TestApp;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// Signs `email` up through `/auth/v1`: the access token.
async fn session_token(app: &TestApp, email: &str) -> anyhow::Result<String> {
    let session = app.sign_up(email).await?;
    Ok(session["access_token"]
        .as_str()
        .context("an access token")?
        .to_owned())
}

/// The kids `instance` publishes.
async fn published(instance: &TestApp) -> anyhow::Result<Vec<String>> {
    let anon = instance.keys.anon_key();
    let (_, jwks) = instance
        .call(&anon, Method::GET, "/auth/v1/.well-known/jwks.json", None)
        .await?;
    Ok(jwks["keys"]
        .as_array()
        .context("keys")?
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect())
}

/// Waits (up to 10 s) until every instance has loaded `count` keys: a change is seen through
/// a notification, not at the instant of the command.
async fn settled(instances: &[&TestApp], count: usize) -> anyhow::Result<()> {
    for _ in 0..100 {
        let mut all = true;
        for instance in instances {
            all &= published(instance).await?.len() == count;
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the instances did not load {count} keys")
}

fn kid_of(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// A socket that joined a channel with `token`, and whether the join was accepted.
async fn join(app: &TestApp, token: &str) -> anyhow::Result<(Socket, bool)> {
    let url = format!(
        "ws://{}/realtime/v1/websocket?apikey={}&vsn=1.0.0",
        app.addr,
        app.keys.anon_key()
    );
    let (mut ws, _) = connect_async(url).await?;
    let join = json!({"topic": "realtime:keys", "event": "phx_join", "ref": "1", "join_ref": "1",
        "payload": {"config": {"postgres_changes": []}, "access_token": token}});
    ws.send(Message::Text(join.to_string().into())).await?;
    let reply = next_event(&mut ws, "phx_reply").await?;
    let ok = reply["payload"]["status"] == "ok";
    Ok((ws, ok))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message of `event` on `ws` (5 s at most).
async fn next_event(ws: &mut Socket, event: &str) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await?
            .context("a message")??;
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text)?;
            if message["event"] == event {
                return Ok(message);
            }
        }
    }
}

/// The statuses `token` gets from REST, functions and storage, and whether realtime lets it
/// join a channel.
async fn doors(app: &TestApp, token: &str) -> anyhow::Result<(u16, u16, u16, bool)> {
    let rest = app
        .call(token, Method::GET, "/rest/v1/organizations?select=id", None)
        .await?
        .0;
    let functions = app
        .call(
            token,
            Method::POST,
            "/functions/v1/orgs-list",
            Some(json!({})),
        )
        .await?
        .0;
    let storage = app
        .call(
            token,
            Method::POST,
            "/storage/v1/object/list/voices",
            Some(json!({"prefix": ""})),
        )
        .await?
        .0;
    let joined = join(app, token).await?.1;
    Ok((rest.as_u16(), functions.as_u16(), storage.as_u16(), joined))
}

#[tokio::test]
async fn rotation_signs_nobody_out_and_revocation_holds_everywhere_at_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let other = app.another_instance().await?;
    let owner = &app.db.owner;
    let legacy = session_token(&app, "keys-legacy@example.com").await?;
    assert_eq!(kid_of(&legacy), None, "HS256 until a key exists");

    // The first rotation makes an ES256 key and signs with it, on both instances.
    run(owner, SigningKeyAction::Rotate).await?;
    settled(&[&app, &other], 1).await?;
    let first = session_token(&app, "keys-first@example.com").await?;
    let first_kid = kid_of(&first).context("a kid")?;
    assert_eq!(
        jsonwebtoken::decode_header(&first)?.alg,
        jsonwebtoken::Algorithm::ES256
    );
    let anon = app.keys.anon_key();
    let (_, jwks) = other
        .call(&anon, Method::GET, "/auth/v1/.well-known/jwks.json", None)
        .await?;
    assert_eq!(jwks["keys"][0]["kid"], first_kid.as_str(), "{jwks}");
    assert_eq!(jwks["keys"][0]["alg"], "ES256", "{jwks}");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private part: {jwks}"
    );
    let open = (200, 200, 200, true);
    assert_eq!(doors(&other, &first).await?, open);
    assert_eq!(
        doors(&other, &legacy).await?,
        open,
        "HS256 tokens still verify"
    );

    // A second rotation: the new key signs, the first still verifies what it signed.
    run(owner, SigningKeyAction::Rotate).await?;
    settled(&[&app, &other], 2).await?;
    let second = session_token(&app, "keys-second@example.com").await?;
    assert_ne!(kid_of(&second), Some(first_kid.clone()));
    assert_eq!(doors(&app, &first).await?, open);

    // The current key cannot be revoked; the previous one can, and then its tokens are
    // refused at every door of every instance.
    assert!(
        run(
            owner,
            SigningKeyAction::Revoke {
                kid: kid_of(&second).context("a kid")?
            }
        )
        .await
        .is_err()
    );
    let (mut open_channel, joined) = join(&other, &first).await?;
    assert!(joined);
    run(owner, SigningKeyAction::Revoke { kid: first_kid }).await?;
    settled(&[&app, &other], 1).await?;
    // A channel joined before with the revoked key's token is closed, with the reason.
    let system = next_event(&mut open_channel, "system").await?;
    assert_eq!(
        system["payload"]["message"], "The token's signing key was revoked",
        "{system}"
    );
    next_event(&mut open_channel, "phx_close").await?;
    for instance in [&app, &other] {
        let (rest, functions, storage, joined) = doors(instance, &first).await?;
        assert_eq!((rest, functions), (401, 401));
        assert!(
            storage == 400 || storage == 401 || storage == 403,
            "{storage}"
        );
        assert!(!joined, "realtime refuses the revoked key's token");
        assert_eq!(doors(instance, &second).await?, open);
    }
    other.stop().await?;
    app.stop().await
}
