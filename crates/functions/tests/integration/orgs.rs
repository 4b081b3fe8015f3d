//! `orgs-list`: each person's organizations with their role, and nobody else's.

use serde_json::{Value, json};

use crate::world::World;

fn listed(body: &Value) -> Vec<(String, String)> {
    body["orgs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["name"].as_str().unwrap_or_default().to_owned(),
                o["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_person_lists_their_own_organizations_and_roles() {
    let w = World::new().await;
    let (status, owner) = w.call("owner_a", "orgs-list", json!({})).await;
    assert_eq!(status, 200, "{owner}");
    assert_eq!(listed(&owner), [("A".to_owned(), "owner".to_owned())]);
    assert_eq!(owner["orgs"][0]["org_id"], json!(w.id("org_a")));
    assert_eq!(owner["orgs"][0]["timezone"], "Europe/Berlin");
    let (_, viewer) = w.call("viewer_a", "orgs-list", json!({})).await;
    assert_eq!(listed(&viewer), [("A".to_owned(), "viewer".to_owned())]);

    // Someone in two orgs sees both, oldest membership first; the others see no more.
    sqlx::query("insert into memberships (org_id, user_id, role) values ($1, $2, 'member')")
        .bind(w.id("org_a"))
        .bind(w.id("owner_b"))
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    let (_, both) = w.call("owner_b", "orgs-list", json!({})).await;
    assert_eq!(
        listed(&both),
        [
            ("B".to_owned(), "owner".to_owned()),
            ("A".to_owned(), "member".to_owned())
        ]
    );
    let (_, again) = w.call("member_a", "orgs-list", json!({})).await;
    assert_eq!(listed(&again), [("A".to_owned(), "member".to_owned())]);

    let anon = w.app.keys.anon_key();
    let (status, _) = w.invoke("orgs-list", &anon, json!({})).await;
    assert_eq!(status, 401);
    let (status, body) = w.call("owner_a", "orgs-list", json!({"org_id": "x"})).await;
    assert_eq!(status, 400, "{body}");
}
