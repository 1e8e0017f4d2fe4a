//! `--format table` names cards by key: the work-item ids in a table's rows (a link's two ends)
//! are replaced by their display keys (`PM-12`), read from the server once per card. Only the
//! table gets them; JSON output stays the server's exact answer. A card that cannot be read
//! (deleted, not visible) keeps its id.
use std::collections::HashMap;

use pm_client::rest_client::RestClient;
use serde_json::Value;

/// Fields holding a work item's id, in the lists that have them.
const CARD_FIELDS: &[&str] = &["blocking_item_id", "blocked_item_id"];

/// Replaces card ids by keys in every row of every list of `body`.
pub async fn name_cards(client: &RestClient, body: &mut Value) {
    let mut keys: HashMap<String, Option<String>> = HashMap::new();
    let Value::Object(map) = body else { return };
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
        }
    }
}
