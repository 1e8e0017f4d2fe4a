//! The REST client for `/api/v1`, with server discovery and caller identity, shared by the `pm`
//! CLI, the board and the tests.
//!
//! - **Discovery** ([`discover`]): an explicit URL (`--server`), else `PM_SERVER`, else the port
//!   file `server.json` that `pm-server` writes into its data directory (`PM_DATA_DIR`, else
//!   `<git root of the working directory>/.pm`, else `~/.pm`, the same chain the server uses).
//!   A port file naming a dead process is stale and is deleted.
//! - **Identity** ([`resolve_user_id`]): `--user-id`, else `PM_USER_ID`, else
//!   [`pm_shared::DEFAULT_USER_ID`]; sent as `X-User-Id` on every request.
//! - **Results**: the response body as a [`serde_json::Value`]. A failure is a [`ClientError`]
//!   that tells an API error (`{"error":{code,message,field}}`) from a server that could not be
//!   reached or answered something that is not the API's JSON.
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

/// Environment variable naming the server URL.
pub const SERVER_ENV: &str = "PM_SERVER";
/// Environment variable holding a bearer token (token mode).
pub const TOKEN_ENV: &str = "PM_TOKEN";
/// Environment variable naming the caller's user id.
pub const USER_ENV: &str = "PM_USER_ID";

// The port file's format and the data directory chain live in `pm-shared`, which the server
// uses too; they are re-exported here so discovery reads as one place.
pub use pm_shared::port_file::{
    data_dir_candidates, default_data_dir, ServerInfo, DATA_DIR_ENV, PORT_FILE,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a non-JSON error body is quoted in an error message.
const BODY_EXCERPT: usize = 300;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The error JSON the API sends: `{"error":{"code","message","field"}}`, plus the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "API error: {} (code: {}", self.message, self.code)?;
        if let Some(field) = &self.field {
            write!(f, ", field: {field}")?;
        }
        write!(f, ")")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No URL was given and no live port file was found.
    #[error("{}", no_server_message(.checked))]
    NoServer {
        /// Every place that was looked at, with what was found there.
        checked: Vec<String>,
    },
    #[error("invalid server URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid user id '{value}' (from {origin}): expected a UUID")]
    InvalidUserId { value: String, origin: &'static str },
    /// The server could not be reached at all (refused, unreachable, connect timeout).
    #[error("cannot reach pm-server at {url}: {reason}. Is the server running?")]
    Connect { url: String, reason: String },
    /// The request was sent but failed on the way (reset, timeout, broken body).
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    /// The server answered with the API's error JSON.
    #[error("{0}")]
    Api(ApiError),
    /// The server answered something that is not the API's JSON.
    #[error("unexpected response from {url} (HTTP {status}): {body}")]
    InvalidResponse {
        url: String,
        status: u16,
        body: String,
    },
}

impl ClientError {
    /// The API error, when the server answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// True when no server was reached: none found, or the one named did not answer.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::NoServer { .. } | ClientError::Connect { .. }
        )
    }
}

fn no_server_message(checked: &[String]) -> String {
    let mut msg = String::from("No running pm-server found. Checked:");
    for c in checked {
        msg.push_str("\n  - ");
        msg.push_str(c);
    }
    msg.push_str(
        "\nStart one with `pm-server` (it writes <data dir>/server.json), or pass --server URL \
         or set PM_SERVER.",
    );
    msg
}

/// The innermost cause of an error: reqwest's own message only says "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

/// Whether a process with this id exists. Only Linux can tell without extra dependencies
/// (`/proc/<pid>`); elsewhere the process is assumed alive and the connection attempt decides.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// What a data directory's port file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortFile {
    /// The file names a running process.
    Live(ServerInfo),
    /// The file named a process that is gone; it has been deleted (`removed` says whether the
    /// deletion worked).
    Stale {
        info: ServerInfo,
        removed: bool,
    },
    Missing,
    /// The file exists but cannot be read or parsed.
    Unreadable(String),
}

/// Reads `<dir>/server.json`, deleting it when it names a dead process.
pub fn read_port_file(dir: &Path) -> PortFile {
    let path = dir.join(PORT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return PortFile::Missing,
        Err(e) => return PortFile::Unreadable(e.to_string()),
    };
    let info: ServerInfo = match serde_json::from_str(&text) {
        Ok(i) => i,
        Err(e) => return PortFile::Unreadable(format!("not a port file: {e}")),
    };
    if pid_alive(info.pid) {
        PortFile::Live(info)
    } else {
        let removed = std::fs::remove_file(&path).is_ok();
        PortFile::Stale { info, removed }
    }
}

/// Where the server URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSource {
    /// Given explicitly (`--server`).
    Explicit,
    /// The `PM_SERVER` environment variable.
    Env,
    /// A live port file.
    PortFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub url: Url,
    pub source: ServerSource,
    /// Further servers of the same database, tried in turn when `url` does not answer
    /// (`--server URL1,URL2,…`: several pm-servers on one PostgreSQL).
    pub fallbacks: Vec<Url>,
}

/// A comma-separated list of server URLs: the first and the rest.
fn server_list(raw: &str) -> Result<(Url, Vec<Url>), ClientError> {
    let mut urls = raw
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(normalize_server_url)
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(ClientError::InvalidUrl {
            url: raw.to_string(),
            reason: "empty".into(),
        });
    }
    let first = urls.remove(0);
    Ok((first, urls))
}

/// Finds the server: `explicit`, else `PM_SERVER`, else the first live port file among
/// [`data_dir_candidates`]. Stale port files met on the way are deleted.
pub fn discover(explicit: Option<&str>) -> Result<Discovered, ClientError> {
    if let Some(urls) = explicit {
        let (url, fallbacks) = server_list(urls)?;
        return Ok(Discovered {
            url,
            source: ServerSource::Explicit,
            fallbacks,
        });
    }
    let mut checked = vec!["--server: not given".to_string()];
    match std::env::var(SERVER_ENV) {
        Ok(urls) if !urls.trim().is_empty() => {
            let (url, fallbacks) = server_list(&urls)?;
            return Ok(Discovered {
                url,
                source: ServerSource::Env,
                fallbacks,
            });
        }
        _ => checked.push(format!("{SERVER_ENV}: not set")),
    }
    for dir in data_dir_candidates() {
        let path = dir.join(PORT_FILE);
        match read_port_file(&dir) {
            PortFile::Live(info) => {
                return Ok(Discovered {
                    url: normalize_server_url(&info.url())?,
                    source: ServerSource::PortFile(path),
                    fallbacks: Vec::new(),
                })
            }
            PortFile::Missing => checked.push(format!("{}: no such file", path.display())),
            PortFile::Stale { info, removed } => checked.push(format!(
                "{}: stale (process {} is not running){}",
                path.display(),
                info.pid,
                if removed { ", removed" } else { "" }
            )),
            PortFile::Unreadable(why) => {
                checked.push(format!("{}: unreadable ({why})", path.display()))
            }
        }
    }
    Err(ClientError::NoServer { checked })
}

/// Accepts `http(s)://host:port[/prefix]`, a bare `host:port`, or the WebSocket URL
/// `ws(s)://host:port/ws`, and returns the HTTP base URL.
pub fn normalize_server_url(raw: &str) -> Result<Url, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let with_scheme = if let Some(rest) = trimmed.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = trimmed.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a server URL has no query or fragment"));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/ws").unwrap_or(path).to_string();
    url.set_path(&path);
    Ok(url)
}

/// The bearer token: `explicit`, else `PM_TOKEN` (None for a desktop-mode server).
pub fn resolve_token(explicit: Option<&str>) -> Option<String> {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var(TOKEN_ENV).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The user a token names (its `sub` claim), read without checking the signature: the server
/// checks it; clients only need to know who they are.
pub fn token_subject(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let sub = claims.get("sub")?.as_str()?;
    uuid::Uuid::parse_str(sub).ok().map(|u| u.to_string())
}

/// The caller's user id: `explicit`, else `PM_USER_ID`, else [`pm_shared::DEFAULT_USER_ID`].
/// A value that is not a UUID is an error (the server would silently act as the default user).
pub fn resolve_user_id(explicit: Option<&str>) -> Result<String, ClientError> {
    let (value, origin) = match explicit {
        Some(v) => (v.to_string(), "--user-id"),
        None => match std::env::var(USER_ENV) {
            Ok(v) if !v.trim().is_empty() => (v, USER_ENV),
            _ => return Ok(pm_shared::DEFAULT_USER_ID.to_string()),
        },
    };
    uuid::Uuid::parse_str(value.trim())
        .map(|u| u.to_string())
        .map_err(|_| ClientError::InvalidUserId { value, origin })
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// Filters of `GET /api/v1/projects/{id}/work-items`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkItemFilter {
    /// "epic", "story" or "task".
    pub item_type: Option<String>,
    pub status: Option<String>,
    pub sprint_id: Option<String>,
    /// Children of this item (UUID or display key).
    pub parent_id: Option<String>,
    /// Only items without a parent.
    pub orphaned: bool,
    pub descendants_of: Option<String>,
    pub ancestors_of: Option<String>,
    /// Include `done` items (excluded by default, as in the reference).
    pub include_done: bool,
}

impl WorkItemFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let opts = [
            ("type", &self.item_type),
            ("status", &self.status),
            ("sprint_id", &self.sprint_id),
            ("parent_id", &self.parent_id),
            ("descendants_of", &self.descendants_of),
            ("ancestors_of", &self.ancestors_of),
        ];
        for (name, value) in opts {
            if let Some(v) = value {
                q.push((name, v.clone()));
            }
        }
        if self.orphaned {
            q.push(("orphaned", "true".to_string()));
        }
        if self.include_done {
            q.push(("include_done", "true".to_string()));
        }
        q
    }
}

/// A client of one server, acting as one user. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RestClient {
    base: Url,
    /// Servers tried in turn when `base` does not answer (see [`Discovered::fallbacks`]).
    fallbacks: Vec<Url>,
    user_id: String,
    /// Bearer token for a server in token mode.
    token: Option<String>,
    http: reqwest::Client,
}

impl RestClient {
    /// A client of the server at `base_url` acting as `user_id` (sent verbatim as `X-User-Id`).
    pub fn new(base_url: &str, user_id: impl Into<String>) -> Result<Self, ClientError> {
        let base = normalize_server_url(base_url)?;
        Self::with_url(base, user_id.into())
    }

    /// Discovers the server ([`discover`]) and the identity ([`resolve_user_id`]).
    pub fn connect(server: Option<&str>, user_id: Option<&str>) -> Result<Self, ClientError> {
        let user_id = resolve_user_id(user_id)?;
        let found = discover(server)?;
        let mut client = Self::with_url(found.url, user_id)?;
        client.fallbacks = found.fallbacks;
        Ok(client)
    }

    fn with_url(base: Url, user_id: String) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("pm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: base.to_string(),
                reason: root_cause(&e),
            })?;
        Ok(RestClient {
            base,
            fallbacks: Vec::new(),
            user_id,
            token: None,
            http,
        })
    }

    /// Authenticates every request with this bearer token (a server in token mode).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.trim().is_empty());
        self
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// `<base>/<segments…>?<query>`, each segment and query value percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// `/api/v1/<segments…>`.
    fn api(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut all = vec!["api", "v1"];
        all.extend_from_slice(segments);
        self.url(&all, query)
    }

    /// Sends one request and returns the JSON body of a success (`null` for an empty body).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let (shown, status, text) = self.exchange(method, url, body).await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| invalid_response(shown, status, &text))
    }

    /// Like [`RestClient::send`], but returns the body of a success as the server wrote it
    /// (e.g. to keep the key order of a sync export). It must still be JSON.
    pub async fn send_text(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<String, ClientError> {
        let (shown, status, text) = self.exchange(method, url, body).await?;
        match serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            Ok(_) => Ok(text),
            Err(_) => Err(invalid_response(shown, status, &text)),
        }
    }

    /// One request, sent to the next server when one does not answer: a refused connection
    /// carried nothing, so even a write is safe to send again elsewhere.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(String, u16, String), ClientError> {
        let first = self.exchange_once(method.clone(), url.clone(), body).await;
        let Err(ClientError::Connect { .. }) = &first else {
            return first;
        };
        let Some(path) = url
            .as_str()
            .strip_prefix(self.base_url())
            .map(str::to_string)
        else {
            return first;
        };
        let mut last = first;
        for other in &self.fallbacks {
            let Ok(moved) = Url::parse(&format!("{}{path}", other.as_str().trim_end_matches('/')))
            else {
                continue;
            };
            last = self.exchange_once(method.clone(), moved, body).await;
            if !matches!(last, Err(ClientError::Connect { .. })) {
                return last;
            }
        }
        last
    }

    /// One request: (url, status, body) of a success, or the error it amounts to.
    async fn exchange_once(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(String, u16, String), ClientError> {
        let shown = url.to_string();
        let mut req = self
            .http
            .request(method, url)
            .header("X-User-Id", &self.user_id)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.trim());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                ClientError::Connect {
                    url: e
                        .url()
                        .map(|u| u.origin().ascii_serialization())
                        .unwrap_or_else(|| self.base_url().to_string()),
                    reason: root_cause(&e),
                }
            } else {
                ClientError::Transport {
                    url: shown.clone(),
                    reason: if e.is_timeout() {
                        "timed out".to_string()
                    } else {
                        root_cause(&e)
                    },
                }
            }
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| ClientError::Transport {
            url: shown.clone(),
            reason: root_cause(&e),
        })?;
        if status.is_success() {
            return Ok((shown, status.as_u16(), text));
        }
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if let Some(err) = parsed.as_ref().and_then(|v| v.get("error")) {
            let text_of = |k: &str| err.get(k).and_then(Value::as_str).map(str::to_string);
            return Err(ClientError::Api(ApiError {
                status: status.as_u16(),
                code: text_of("code").unwrap_or_else(|| "UNKNOWN".to_string()),
                message: text_of("message").unwrap_or_else(|| err.to_string()),
                field: text_of("field"),
            }));
        }
        Err(invalid_response(shown, status.as_u16(), &text))
    }

    pub async fn get_text(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<String, ClientError> {
        self.send_text(Method::GET, self.api(segments, query), None)
            .await
    }

    pub async fn get(&self, segments: &[&str]) -> Result<Value, ClientError> {
        self.send(Method::GET, self.api(segments, &[]), None).await
    }

    pub async fn get_query(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        self.send(Method::GET, self.api(segments, query), None)
            .await
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.send(Method::POST, self.api(segments, &[]), Some(body))
            .await
    }

    pub async fn put(&self, segments: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.send(Method::PUT, self.api(segments, &[]), Some(body))
            .await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value, ClientError> {
        self.send(Method::DELETE, self.api(segments, &[]), None)
            .await
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Value, ClientError> {
        self.send(Method::GET, self.url(&["health"], &[]), None)
            .await
    }

    // Projects. `id` is a UUID or a project key.

    pub async fn list_projects(&self) -> Result<Value, ClientError> {
        self.get(&["projects"]).await
    }
    pub async fn get_project(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&["projects", id]).await
    }
    /// Body: `{title, key, description?}`.
    pub async fn create_project(&self, body: &Value) -> Result<Value, ClientError> {
        self.post(&["projects"], body).await
    }
    /// Body: `{title?, description?, status?, expected_version}`.
    pub async fn update_project(&self, id: &str, body: &Value) -> Result<Value, ClientError> {
        self.put(&["projects", id], body).await
    }
    pub async fn delete_project(&self, id: &str) -> Result<Value, ClientError> {
        self.delete(&["projects", id]).await
    }
    pub async fn list_members(&self, project: &str) -> Result<Value, ClientError> {
        self.get(&["projects", project, "members"]).await
    }
    pub async fn add_member(&self, project: &str, body: &Value) -> Result<Value, ClientError> {
        self.post(&["projects", project, "members"], body).await
    }
    pub async fn remove_member(&self, project: &str, user_id: &str) -> Result<Value, ClientError> {
        self.delete(&["projects", project, "members", user_id])
            .await
    }
    pub async fn list_swim_lanes(&self, project: &str) -> Result<Value, ClientError> {
        self.get(&["projects", project, "swim-lanes"]).await
    }

    // Work items. `id` is a UUID or a display key ("PM-12").

    pub async fn list_work_items(
        &self,
        project: &str,
        filter: &WorkItemFilter,
    ) -> Result<Value, ClientError> {
        self.get_query(&["projects", project, "work-items"], &filter.query())
            .await
    }
    pub async fn get_work_item(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&["work-items", id]).await
    }
    /// Body: `{project_id, item_type, title, description?, parent_id?, status?, priority?}`.
    pub async fn create_work_item(&self, body: &Value) -> Result<Value, ClientError> {
        self.post(&["work-items"], body).await
    }
    /// Body: `{title?, description?, status?, priority?, assignee_id?, sprint_id?,
    /// story_points?, parent_id?, update_parent, position?, expected_version}`.
    pub async fn update_work_item(&self, id: &str, body: &Value) -> Result<Value, ClientError> {
        self.put(&["work-items", id], body).await
    }
    pub async fn delete_work_item(&self, id: &str) -> Result<Value, ClientError> {
        self.delete(&["work-items", id]).await
    }
    /// pm: brings a deleted item back (`id`: its UUID or key).
    pub async fn restore_work_item(&self, id: &str) -> Result<Value, ClientError> {
        self.post(&["work-items", id, "restore"], &serde_json::json!({}))
            .await
    }

    // Sprints. `id` is a UUID; `project` a UUID or key.

    pub async fn list_sprints(&self, project: &str) -> Result<Value, ClientError> {
        self.get(&["projects", project, "sprints"]).await
    }
    pub async fn get_sprint(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&["sprints", id]).await
    }
    /// Body: `{project_id, name, goal?, start_date, end_date}`.
    pub async fn create_sprint(&self, body: &Value) -> Result<Value, ClientError> {
        self.post(&["sprints"], body).await
    }
    /// Body: `{name?, goal?, start_date?, end_date?, status?, expected_version}`.
    pub async fn update_sprint(&self, id: &str, body: &Value) -> Result<Value, ClientError> {
        self.put(&["sprints", id], body).await
    }
    pub async fn delete_sprint(&self, id: &str) -> Result<Value, ClientError> {
        self.delete(&["sprints", id]).await
    }

    // Comments. `work_item` is a UUID or display key; `id` a comment UUID.

    pub async fn list_comments(&self, work_item: &str) -> Result<Value, ClientError> {
        self.get(&["work-items", work_item, "comments"]).await
    }
    pub async fn get_comment(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&["comments", id]).await
    }
    pub async fn create_comment(
        &self,
        work_item: &str,
        content: &str,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "content": content });
        self.post(&["work-items", work_item, "comments"], &body)
            .await
    }
    pub async fn update_comment(&self, id: &str, content: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "content": content });
        self.put(&["comments", id], &body).await
    }
    pub async fn delete_comment(&self, id: &str) -> Result<Value, ClientError> {
        self.delete(&["comments", id]).await
    }

    // Dependencies. Work items by UUID or display key; `id` a dependency UUID.

    pub async fn list_dependencies(&self, work_item: &str) -> Result<Value, ClientError> {
        self.get(&["work-items", work_item, "dependencies"]).await
    }
    /// Body: `{blocking_item_id, blocked_item_id, dependency_type}`; answers a bare DTO.
    pub async fn create_dependency(&self, body: &Value) -> Result<Value, ClientError> {
        self.post(&["dependencies"], body).await
    }
    pub async fn delete_dependency(&self, id: &str) -> Result<Value, ClientError> {
        self.delete(&["dependencies", id]).await
    }

    // Time entries. `work_item` a UUID or display key; `id` a time entry UUID.

    pub async fn list_time_entries(&self, work_item: &str) -> Result<Value, ClientError> {
        self.get(&["work-items", work_item, "time-entries"]).await
    }
    pub async fn get_time_entry(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&["time-entries", id]).await
    }
    /// Body: `{work_item_id, description?}` starts a timer (stopping yours);
    /// with `started_at` and `ended_at` it records a finished entry.
    pub async fn create_time_entry(&self, body: &Value) -> Result<Value, ClientError> {
        self.post(&["time-entries"], body).await
    }
    /// Body: `{stop?, description?, started_at?, ended_at?}`.
    pub async fn update_time_entry(&self, id: &str, body: &Value) -> Result<Value, ClientError> {
        self.put(&["time-entries", id], body).await
    }
    pub async fn delete_time_entry(&self, id: &str) -> Result<Value, ClientError> {
        self.delete(&["time-entries", id]).await
    }

    // History and sync.

    /// `GET /api/v1/activity`: the history of one entity, newest first.
    pub async fn activity(
        &self,
        entity_type: &str,
        entity_id: &str,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<Value, ClientError> {
        let mut q = vec![
            ("entity_type", entity_type.to_string()),
            ("entity_id", entity_id.to_string()),
        ];
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(o) = offset {
            q.push(("offset", o.to_string()));
        }
        self.get_query(&["activity"], &q).await
    }
    /// `GET /api/v1/sync/export` with its query; the JSON text exactly as the server wrote it.
    pub async fn sync_export(&self, query: &[(&str, String)]) -> Result<String, ClientError> {
        self.get_text(&["sync", "export"], query).await
    }
    /// `POST /api/v1/sync/import` with an ExportData document.
    pub async fn sync_import(&self, document: &Value) -> Result<Value, ClientError> {
        self.post(&["sync", "import"], document).await
    }

    /// `POST /api/v1/sync/import`, `?strict=true` when one row that cannot be stored must
    /// refuse the whole document.
    pub async fn sync_import_with(
        &self,
        document: &Value,
        strict: bool,
    ) -> Result<Value, ClientError> {
        let query = if strict {
            vec![("strict", "true".to_string())]
        } else {
            Vec::new()
        };
        self.send(
            Method::POST,
            self.api(&["sync", "import"], &query),
            Some(document),
        )
        .await
    }
}

/// The error for a body that is not the API's JSON, quoting its start.
fn invalid_response(url: String, status: u16, text: &str) -> ClientError {
    let mut excerpt: String = text.chars().take(BODY_EXCERPT).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    if excerpt.trim().is_empty() {
        excerpt = "(empty body)".to_string();
    }
    ClientError::InvalidResponse {
        url,
        status,
        body: excerpt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalized() {
        let n = |s: &str| normalize_server_url(s).map(|u| u.to_string());
        assert_eq!(n("127.0.0.1:8000").unwrap(), "http://127.0.0.1:8000/");
        assert_eq!(n("http://h:1/").unwrap(), "http://h:1/");
        assert_eq!(n("ws://h:1/ws").unwrap(), "http://h:1/");
        assert_eq!(n("https://h/pm/").unwrap(), "https://h/pm");
        assert!(n("").is_err());
        assert!(n("ftp://h").is_err());
        assert!(n("http://").is_err());
    }

    #[test]
    fn urls_encode_segments_and_queries() {
        let c = RestClient::new("http://h:1/prefix/", pm_shared::DEFAULT_USER_ID).unwrap();
        assert_eq!(c.base_url(), "http://h:1/prefix");
        let u = c.api(
            &["work-items", "a/b c"],
            &[("status", "in progress&x".into())],
        );
        assert_eq!(
            u.as_str(),
            "http://h:1/prefix/api/v1/work-items/a%2Fb%20c?status=in+progress%26x"
        );
        let c = RestClient::new("http://h:1", pm_shared::DEFAULT_USER_ID).unwrap();
        assert_eq!(
            c.api(&["projects"], &[]).as_str(),
            "http://h:1/api/v1/projects"
        );
    }

    #[test]
    fn port_files_live_stale_and_broken() {
        let dir = std::env::temp_dir().join(format!("pm-port-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_port_file(&dir), PortFile::Missing);
        let live = ServerInfo {
            pid: std::process::id(),
            port: 4242,
            host: "127.0.0.1".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            version: "0.1.0".into(),
        };
        std::fs::write(dir.join(PORT_FILE), serde_json::to_string(&live).unwrap()).unwrap();
        assert_eq!(read_port_file(&dir), PortFile::Live(live.clone()));
        // The reference's file has the same fields; extra ones are ignored.
        std::fs::write(dir.join(PORT_FILE), "{\"pid\":1,\"port\":1,\"host\":\"h\"}").unwrap();
        assert!(matches!(read_port_file(&dir), PortFile::Live(_)));
        std::fs::write(dir.join(PORT_FILE), "nonsense").unwrap();
        assert!(matches!(read_port_file(&dir), PortFile::Unreadable(_)));
        if cfg!(target_os = "linux") {
            let dead = ServerInfo { pid: 0, ..live };
            std::fs::write(dir.join(PORT_FILE), serde_json::to_string(&dead).unwrap()).unwrap();
            assert!(matches!(
                read_port_file(&dir),
                PortFile::Stale { removed: true, .. }
            ));
            assert!(!dir.join(PORT_FILE).exists());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn api_errors_display_message_code_and_field() {
        let e = ClientError::Api(ApiError {
            status: 409,
            code: "CONFLICT".into(),
            message: "Version mismatch".into(),
            field: None,
        });
        assert_eq!(
            e.to_string(),
            "API error: Version mismatch (code: CONFLICT)"
        );
        let e = ApiError {
            status: 400,
            code: "VALIDATION_ERROR".into(),
            message: "bad".into(),
            field: Some("title".into()),
        };
        assert_eq!(
            e.to_string(),
            "API error: bad (code: VALIDATION_ERROR, field: title)"
        );
    }
}
