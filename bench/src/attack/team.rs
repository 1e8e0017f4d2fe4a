//! Attacks on a token-mode server: Mallory holds a valid token but is no member of Alice's
//! project.
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures_util::SinkExt;
use pm_shared::proto::{self, Payload};
use prost::Message as _;
use serde_json::{json, Value};

use super::http::{ask, collect, error_code, ws, Identity, Rest};
use super::{attack, refused, succeeded, Attack, Verdict};
use crate::net::{frame, Target};

/// The two people of the token-mode attacks.
pub struct Cast {
    pub alice: String,
    pub alice_token: String,
    pub mallory: String,
    pub mallory_token: String,
}

/// Alice's project, made for the attacks.
struct Victim {
    id: String,
    key: String,
    item: String,
}

fn fresh_key(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6].to_ascii_uppercase()
    )
}

async fn victim(target: &Target, cast: &Cast) -> Result<Victim> {
    let alice = Rest::new(target, Identity::Token(cast.alice_token.clone()))?;
    let key = fresh_key("CJ");
    let (status, body) = alice
        .post(
            "/api/v1/projects",
            json!({ "title": format!("Crown jewels {key}"), "key": key, "description": "secret plans" }),
        )
        .await?;
    anyhow::ensure!(
        status == 200,
        "Alice could not create her project: {status} {body}"
    );
    let id = str_at(&body, "/project/id")?;
    let (status, body) = alice
        .post(
            "/api/v1/work-items",
            json!({ "project_id": id, "item_type": "story", "title": "secret story" }),
        )
        .await?;
    anyhow::ensure!(
        status == 200,
        "Alice could not create an item: {status} {body}"
    );
    let item = str_at(&body, "/work_item/id")?;
    Ok(Victim { id, key, item })
}

fn str_at(v: &Value, pointer: &str) -> Result<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no {pointer} in {v}"))
}

/// Alice's project's members, as (user, role).
async fn members(target: &Target, cast: &Cast, project: &str) -> Result<Vec<(String, String)>> {
    let alice = Rest::new(target, Identity::Token(cast.alice_token.clone()))?;
    let (status, body) = alice
        .get(&format!("/api/v1/projects/{project}/members"))
        .await?;
    anyhow::ensure!(status == 200, "members: {status} {body}");
    Ok(body["members"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| {
                    (
                        m["user_id"].as_str().unwrap_or_default().to_string(),
                        m["role"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

pub fn attacks<'a>(target: &'a Target, cast: &'a Cast) -> Vec<Attack<'a>> {
    vec![
        attack(
            "1. a non-member makes itself admin of a project over WebSocket",
            self_promotion_ws(target, cast),
        ),
        attack(
            "1. an editor makes itself admin over REST, then removes the owner",
            self_promotion_rest(target, cast),
        ),
        attack(
            "3. replaying the workspace stream from 0 shows every project",
            workspace_replay(target, cast),
        ),
        attack(
            "3. live workspace events of a project reach a non-member",
            workspace_live(target, cast),
        ),
        attack(
            "10. errors tell an outsider a stale version or a child count",
            probe_errors(target, cast),
        ),
        attack(
            "10. a known project key answers differently from an unknown one",
            probe_keys(target, cast),
        ),
        attack(
            "low. an import names another user as creator, who becomes admin",
            import_created_by(target, cast),
        ),
        attack(
            "7/10. an import overwrites a project the importer is no member of",
            import_overwrite(target, cast),
        ),
        attack(
            "9. a time entry starting at i64::MIN is stored",
            time_entry_overflow(target, cast),
        ),
        attack(
            "low. clients that write `bearer` in lowercase are locked out",
            lowercase_bearer(target, cast),
        ),
        attack(
            "low. REST has no rate limit: one token floods the server",
            rest_flood(target, cast),
        ),
        attack(
            "4. a foreign web page opens a WebSocket with a user's token",
            foreign_origin_ws(target, cast),
        ),
    ]
}

async fn self_promotion_ws(target: &Target, cast: &Cast) -> Result<Verdict> {
    let v = victim(target, cast).await?;
    let mut mallory = ws(target, &Identity::Token(cast.mallory_token.clone()), &[]).await?;
    let answer = ask(
        &mut mallory,
        Payload::AddProjectMemberRequest(proto::AddProjectMemberRequest {
            project_id: v.id.clone(),
            user_id: cast.mallory.clone(),
            role: "admin".into(),
        }),
    )
    .await?;
    let members = members(target, cast, &v.id).await?;
    if members.iter().any(|(u, _)| *u == cast.mallory) {
        return succeeded(format!("Mallory is a member now: {members:?}"));
    }
    refused(format!("answered {:?}", error_code(&answer)))
}

async fn self_promotion_rest(target: &Target, cast: &Cast) -> Result<Verdict> {
    let v = victim(target, cast).await?;
    let alice = Rest::new(target, Identity::Token(cast.alice_token.clone()))?;
    let mallory = Rest::new(target, Identity::Token(cast.mallory_token.clone()))?;
    let path = format!("/api/v1/projects/{}/members", v.id);
    let (status, _) = alice
        .post(&path, json!({ "user_id": cast.mallory, "role": "editor" }))
        .await?;
    anyhow::ensure!(
        status == 200,
        "Alice could not add Mallory as editor: {status}"
    );
    let (promote, _) = mallory
        .post(&path, json!({ "user_id": cast.mallory, "role": "admin" }))
        .await?;
    let (remove, _) = mallory.delete(&format!("{path}/{}", cast.alice)).await?;
    let members = members(target, cast, &v.id).await?;
    let role_of = |u: &str| members.iter().find(|(m, _)| m == u).map(|(_, r)| r.clone());
    if role_of(&cast.mallory).as_deref() != Some("editor") || role_of(&cast.alice).is_none() {
        return succeeded(format!("members now {members:?}"));
    }
    refused(format!(
        "promotion answered {promote}, removing the owner {remove}"
    ))
}

/// Whether any frame mentions the project (its id, key or title).
fn mentions(frames: &[proto::WebSocketMessage], v: &Victim) -> bool {
    frames.iter().any(|f| {
        let bytes = f.encode_to_vec();
        let text = String::from_utf8_lossy(&bytes);
        // Ids and keys are this victim's own (Mallory may belong to another attack's project).
        text.contains(&v.id) || text.contains(&v.key)
    })
}

async fn workspace_replay(target: &Target, cast: &Cast) -> Result<Verdict> {
    let v = victim(target, cast).await?;
    let mut mallory = ws(target, &Identity::Token(cast.mallory_token.clone()), &[]).await?;
    let list = ask(
        &mut mallory,
        Payload::ListProjectsRequest(proto::ListProjectsRequest {}),
    )
    .await?;
    // The replay may come before the answer: everything that arrives is kept.
    let subscribe = Payload::Subscribe(proto::Subscribe {
        cursors: vec![proto::ResumeCursor {
            stream: String::new(),
            last_seq: 0,
            epoch: list.epoch.clone(),
        }],
        ..Default::default()
    });
    mallory
        .send(frame(uuid::Uuid::new_v4().to_string(), subscribe))
        .await?;
    let frames = collect(&mut mallory, Duration::from_millis(800)).await;
    let replayed = frames.iter().filter(|f| f.seq > 0).count();
    anyhow::ensure!(
        replayed > 0,
        "nothing was replayed, so nothing was tested (epoch {:?})",
        list.epoch
    );
    if mentions(&frames, &v) {
        let leaked: Vec<String> = frames
            .iter()
            .filter(|f| mentions(std::slice::from_ref(f), &v))
            .map(|f| format!("seq {} {:?}", f.seq, f.payload))
            .collect();
        return succeeded(format!(
            "{replayed} replayed events, some about Alice's project: {leaked:?}"
        ));
    }
    refused(format!(
        "{replayed} replayed events, none naming Alice's projects"
    ))
}

async fn workspace_live(target: &Target, cast: &Cast) -> Result<Verdict> {
    let mut mallory = ws(target, &Identity::Token(cast.mallory_token.clone()), &[]).await?;
    ask(
        &mut mallory,
        Payload::Subscribe(proto::Subscribe {
            project_list: true,
            ..Default::default()
        }),
    )
    .await?;
    let v = victim(target, cast).await?;
    let alice = Rest::new(target, Identity::Token(cast.alice_token.clone()))?;
    alice
        .put(
            &format!("/api/v1/projects/{}", v.id),
            json!({ "title": "Crown jewels v2", "expected_version": 1 }),
        )
        .await?;
    let frames = collect(&mut mallory, Duration::from_millis(800)).await;
    if mentions(&frames, &v) {
        return succeeded("Mallory saw Alice's project being created or renamed");
    }
    refused(format!(
        "{} frames, none about Alice's project",
        frames.len()
    ))
}

/// (code, message with `id` blanked) of an answer.
fn shape(msg: &proto::WebSocketMessage, id: &str) -> (String, String) {
    match &msg.payload {
        Some(Payload::Error(e)) => (e.code.clone(), e.message.replace(id, "<id>")),
        other => ("(no error)".into(), format!("{other:?}")),
    }
}

async fn probe_errors(target: &Target, cast: &Cast) -> Result<Verdict> {
    let v = victim(target, cast).await?;
    let alice = Rest::new(target, Identity::Token(cast.alice_token.clone()))?;
    // A child makes the delete's answer a child count, if the server tells it.
    alice
        .post(
            "/api/v1/work-items",
            json!({ "project_id": v.id, "item_type": "task", "title": "child", "parent_id": v.item }),
        )
        .await?;
    let mut mallory = ws(target, &Identity::Token(cast.mallory_token.clone()), &[]).await?;
    let nobody = uuid::Uuid::new_v4().to_string();
    let stale = |id: &str| {
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            work_item_id: id.into(),
            expected_version: 999,
            title: Some("x".into()),
            ..Default::default()
        })
    };
    let delete = |id: &str| {
        Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
            work_item_id: id.into(),
        })
    };
    for (what, real, absent) in [
        ("a stale update", stale(&v.item), stale(&nobody)),
        ("a delete", delete(&v.item), delete(&nobody)),
    ] {
        let theirs = shape(&ask(&mut mallory, real).await?, &v.item);
        let none = shape(&ask(&mut mallory, absent).await?, &nobody);
        if theirs != none {
            return succeeded(format!(
                "{what}: {theirs:?}, where an absent id gets {none:?}"
            ));
        }
    }
    refused("the same answer as for an id nobody uses")
}

async fn probe_keys(target: &Target, cast: &Cast) -> Result<Verdict> {
    let v = victim(target, cast).await?;
    let mallory = Rest::new(target, Identity::Token(cast.mallory_token.clone()))?;
    let unknown = fresh_key("NO");
    let (a, body_a) = mallory.get(&format!("/api/v1/projects/{}", v.key)).await?;
    let (b, body_b) = mallory.get(&format!("/api/v1/projects/{unknown}")).await?;
    let msg = |body: &Value, key: &str| {
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .replace(key, "<key>")
    };
    if a != b || msg(&body_a, &v.key) != msg(&body_b, &unknown) {
        return succeeded(format!("known key: {a} {body_a}; unknown: {b} {body_b}"));
    }
    refused(format!("both {a}"))
}

/// A one-project export document.
fn project_doc(id: &str, key: &str, title: &str, created_by: &str, updated_at: i64) -> Value {
    json!({
        "schema_version": 1,
        "projects": [{
            "id": id, "key": key, "title": title, "description": null, "status": "active",
            "version": 1, "created_at": 1_790_000_000, "updated_at": updated_at,
            "created_by": created_by, "updated_by": created_by
        }]
    })
}

async fn import_created_by(target: &Target, cast: &Cast) -> Result<Verdict> {
    let mallory = Rest::new(target, Identity::Token(cast.mallory_token.clone()))?;
    let alice = Rest::new(target, Identity::Token(cast.alice_token.clone()))?;
    let id = uuid::Uuid::new_v4().to_string();
    let doc = project_doc(
        &id,
        &fresh_key("MA"),
        "Mallory's bait",
        &cast.alice,
        1_790_000_000,
    );
    let (status, body) = mallory.post("/api/v1/sync/import", doc).await?;
    anyhow::ensure!(
        status == 200,
        "Mallory's own import failed: {status} {body}"
    );
    let (seen, _) = alice.get(&format!("/api/v1/projects/{id}")).await?;
    if seen == 200 {
        return succeeded("Alice became a member of a project Mallory imported in her name");
    }
    refused(format!("Alice is no member of it ({seen})"))
}

async fn import_overwrite(target: &Target, cast: &Cast) -> Result<Verdict> {
    let v = victim(target, cast).await?;
    let mallory = Rest::new(target, Identity::Token(cast.mallory_token.clone()))?;
    let alice = Rest::new(target, Identity::Token(cast.alice_token.clone()))?;
    let later = pm_shared::now_secs() + 3_600;
    let doc = project_doc(&v.id, &v.key, "pwned", &cast.mallory, later);
    let (status, body) = mallory.post("/api/v1/sync/import", doc).await?;
    let (_, project) = alice.get(&format!("/api/v1/projects/{}", v.id)).await?;
    if project["project"]["title"] == "pwned" {
        return succeeded("Alice's project was renamed by Mallory's import");
    }
    refused(format!("{status} {}", body["error"]["code"]))
}

async fn time_entry_overflow(target: &Target, cast: &Cast) -> Result<Verdict> {
    let mallory = Rest::new(target, Identity::Token(cast.mallory_token.clone()))?;
    let (_, body) = mallory
        .post(
            "/api/v1/projects",
            json!({ "title": "Mine", "key": fresh_key("MT") }),
        )
        .await?;
    let project = str_at(&body, "/project/id")?;
    let (_, body) = mallory
        .post(
            "/api/v1/work-items",
            json!({ "project_id": project, "item_type": "task", "title": "t" }),
        )
        .await?;
    let item = str_at(&body, "/work_item/id")?;
    let (status, body) = mallory
        .post(
            "/api/v1/time-entries",
            json!({ "work_item_id": item, "started_at": i64::MIN, "ended_at": 0 }),
        )
        .await?;
    if (200..300).contains(&status) {
        return succeeded(format!("stored: {body}"));
    }
    refused(format!("{status} {}", body["error"]["code"]))
}

async fn lowercase_bearer(target: &Target, cast: &Cast) -> Result<Verdict> {
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/api/v1/projects", target.http))
        .header("Authorization", format!("bearer {}", cast.alice_token))
        .send()
        .await?;
    let status = resp.status().as_u16();
    if status == 401 {
        return succeeded("401 for `bearer <token>`");
    }
    refused(format!("`bearer <token>` is accepted ({status})"))
}

async fn rest_flood(target: &Target, cast: &Cast) -> Result<Verdict> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let rest = Rest::new(target, Identity::Token(cast.mallory_token.clone()))?;
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u32;
            let mut limited = 0u32;
            while started.elapsed() < Duration::from_secs(4) && limited == 0 {
                let (status, _) = rest.get("/api/v1/projects").await?;
                sent += 1;
                if status == 429 {
                    limited += 1;
                }
            }
            anyhow::Ok((sent, limited))
        }));
    }
    let (mut sent, mut limited) = (0, 0);
    for t in tasks {
        let (s, l) = t.await.context("flood task")??;
        sent += s;
        limited += l;
    }
    if limited == 0 {
        return succeeded(format!(
            "{sent} requests in {:.1} s, none limited",
            started.elapsed().as_secs_f64()
        ));
    }
    refused(format!("429 after {sent} requests"))
}

async fn foreign_origin_ws(target: &Target, cast: &Cast) -> Result<Verdict> {
    match ws(
        target,
        &Identity::Token(cast.mallory_token.clone()),
        &[("Origin", "http://evil.example")],
    )
    .await
    {
        Ok(_) => succeeded("the upgrade was accepted"),
        Err(e) => refused(format!("{e:#}")),
    }
}
