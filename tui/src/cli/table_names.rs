//! `--format table` names things for people: the work-item ids in a table's rows (a link's two
//! ends) become their display keys (`PM-12`), read from the server once per card, and user ids
//! (who commented, logged time, changed something) become names, from the server's user list
//! (one WebSocket request; REST has none). Only the table gets them; JSON output stays the
//! server's exact answer. What cannot be read keeps its id (a user's as its first 8 characters).
use std::collections::HashMap;
use std::time::Duration;

use pm_client::rest_client::RestClient;
use pm_client::sdk::{self, SessionConfig};
use pm_shared::proto::{self, Payload};
use serde_json::Value;

/// Fields holding a work item's id.
const CARD_FIELDS: &[&str] = &["blocking_item_id", "blocked_item_id"];
/// Fields holding a user's id.
const USER_FIELDS: &[&str] = &["created_by", "user_id"];
/// How long the user list may take.
const USERS_WAIT: Duration = Duration::from_secs(3);

/// Replaces card ids by keys and user ids by names in every row of every list of `body`.
pub async fn name_things(client: &RestClient, token: Option<String>, body: &mut Value) {
    let Value::Object(map) = body else { return };
    let has = |fields: &[&str]| {
        map.values().any(|rows| {
            rows.as_array().is_some_and(|rows| {
                rows.iter()
                    .any(|r| fields.iter().any(|f| r.get(*f).is_some()))
            })
        })
    };
    let users = if has(USER_FIELDS) {
        user_names(client, token).await
    } else {
        HashMap::new()
    };
    let mut keys: HashMap<String, Option<String>> = HashMap::new();
    for rows in map.values_mut() {
        let Value::Array(rows) = rows else { continue };
        for row in rows {
            for field in CARD_FIELDS {
                let Some(Value::String(id)) = row.get(*field) else {
                    continue;
                };
                let id = id.clone();
                if !keys.contains_key(&id) {
                    let key =
                        client.get_work_item(&id).await.ok().and_then(|w| {
                            w["work_item"]["display_key"].as_str().map(str::to_string)
                        });
                    keys.insert(id.clone(), key);
                }
                if let Some(Some(key)) = keys.get(&id) {
                    row[*field] = Value::String(key.clone());
                }
            }
            for field in USER_FIELDS {
                let name = match row.get(*field) {
                    Some(Value::String(id)) => users.get(id).cloned(),
                    _ => None,
                };
                if let Some(name) = name {
                    row[*field] = Value::String(name);
                }
            }
        }
    }
}

/// The server's users by id, or none when the list cannot be had in time.
async fn user_names(client: &RestClient, token: Option<String>) -> HashMap<String, String> {
    let mut config = SessionConfig::new(client.base_url(), client.user_id());
    config.token = token;
    let session = sdk::spawn(config, |_| {});
    let mut names = HashMap::new();
    if session.connected(USERS_WAIT).await {
        let list = session
            .request(
                Payload::ListUsersRequest(proto::ListUsersRequest {}),
                USERS_WAIT,
            )
            .await;
        if let Ok(proto::WebSocketMessage {
            payload: Some(Payload::UserList(list)),
            ..
        }) = list
        {
            names.extend(list.users.into_iter().map(|u| (u.id, u.name)));
        }
    }
    session.close();
    names
}
