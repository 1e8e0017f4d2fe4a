//! The CLI subcommands over the REST API: one module per resource. Each resource's `run` makes
//! its API calls and returns what to print; [`execute`] finds the server, runs it and prints
//! the result (JSON, or a table with `--format table`) or the error, and picks the exit status.
pub mod activity;
pub mod comment;
pub mod completions;
pub mod dependency;
pub mod init;
pub mod man;
pub mod project;
pub mod sprint;
pub mod swim_lane;
pub mod sync;
pub mod table;
mod table_names;
pub mod time_entry;
pub mod toml_file;
pub mod work_item;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use pm_client::rest_client::{resolve_token, ClientError, RestClient};
use serde_json::Value;

/// Exit status of a runtime or API error (clap exits 2 on usage errors).
pub const EXIT_FAILURE: u8 = 1;

/// Flags every subcommand accepts, before or after it.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Server URL, e.g. http://127.0.0.1:8000, or several servers of one database separated
    /// by commas (the next is tried when one does not answer) [default: $PM_SERVER, else the
    /// port file server.json in the server's data directory]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub server: Option<String>,
    /// Act as this user (a UUID, sent as X-User-Id) [default: $PM_USER_ID, else the local
    /// default user]
    #[arg(
        long,
        global = true,
        value_name = "UUID",
        help_heading = "Global options"
    )]
    pub user_id: Option<String>,
    /// Bearer token for a server in team (token) mode [default: $PM_TOKEN]
    #[arg(
        long,
        global = true,
        value_name = "JWT",
        help_heading = "Global options",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Indent the JSON output
    #[arg(long, global = true, help_heading = "Global options")]
    pub pretty: bool,
    /// Output format: the server's JSON, or an aligned table for people
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = Format::Json,
        help_heading = "Global options"
    )]
    pub format: Format,
    /// Also write the response to this file as TOML (nulls left out; stdout still gets the
    /// JSON). Edit it and send it back with `work-item create|update --from-toml`
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub output_toml: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

/// What a command prints.
pub enum Output {
    /// A response body.
    Json(Value),
    /// JSON text exactly as the server wrote it (its key order kept).
    Text(String),
}

impl From<Value> for Output {
    fn from(body: Value) -> Self {
        Output::Json(body)
    }
}

/// Connects (with the `--token` / `$PM_TOKEN` bearer token, if any), runs the command's API
/// calls and prints what it returns. Every failure — finding the server, the API, a file a
/// command reads or writes — is reported the same way (`Error: …`, exit 1). Returns the
/// process exit status.
pub fn execute<F, Fut, T, E>(global: &GlobalArgs, call: F) -> ExitCode
where
    F: FnOnce(RestClient) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: Into<Output>,
    E: Into<anyhow::Error>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let client = match connect(global) {
        Ok(client) => client,
        Err(e) => return fail(&format!("{:#}", anyhow::Error::from(e))),
    };
    let result = runtime
        .block_on(call(client.clone()))
        .map(Into::into)
        .map_err(Into::into);
    let output = match result {
        Ok(output) => output,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let status = match &output {
        Output::Json(body) if global.format == Format::Table => {
            let mut shown = body.clone();
            let token = resolve_token(global.token.as_deref());
            runtime.block_on(table_names::name_things(&client, token, &mut shown));
            print_body(global, &shown)
        }
        Output::Json(body) => print_body(global, body),
        Output::Text(text) => match global.format {
            Format::Json if global.pretty => print_text(reindent(text)),
            Format::Json => print_text(text.clone()),
            Format::Table => match serde_json::from_str::<Value>(text) {
                Ok(body) => print_body(global, &body),
                Err(e) => fail(&format!("the server's answer is not JSON: {e}")),
            },
        },
    };
    match &global.output_toml {
        Some(path) => match write_toml(path, output) {
            Ok(()) => status,
            Err(e) => fail(&e),
        },
        None => status,
    }
}

/// `--output-toml`: the response, which stdout already got as JSON, written to `path` as TOML.
fn write_toml(path: &std::path::Path, output: Output) -> Result<(), String> {
    let body = match output {
        Output::Json(body) => body,
        Output::Text(text) => serde_json::from_str(&text)
            .map_err(|e| format!("the server's answer is not JSON: {e}"))?,
    };
    toml_file::write(path, &body)
}

/// The REST client every server subcommand uses: the server from `--server` / `$PM_SERVER` /
/// the port file, the user from `--user-id` / `$PM_USER_ID`, the token from `--token` /
/// `$PM_TOKEN`.
pub fn connect(global: &GlobalArgs) -> Result<RestClient, ClientError> {
    RestClient::connect(global.server.as_deref(), global.user_id.as_deref())
        .map(|c| c.with_token(resolve_token(global.token.as_deref())))
}

/// Indents JSON text two spaces per level, like `--pretty`, without reordering keys (serde_json
/// keeps the document's key order: the workspace enables `preserve_order`). Text that is not
/// JSON is returned as it is.
pub fn reindent(json: &str) -> String {
    match serde_json::from_str::<Value>(json) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| json.to_string()),
        Err(_) => json.to_string(),
    }
}

pub fn print_text(text: String) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot write the output: {e}")),
    }
}

fn print_body(global: &GlobalArgs, body: &Value) -> ExitCode {
    let text = match global.format {
        Format::Table => table::render(body),
        Format::Json if global.pretty => serde_json::to_string_pretty(body).unwrap_or_default(),
        Format::Json => body.to_string(),
    };
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`pm ... | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot write the output: {e}")),
    }
}

/// Prints `Error: <message>` on stderr and returns exit status 1. The message may quote server
/// or file text (an import's bad value, a title), so controls and bidi marks are replaced.
pub fn fail(message: &str) -> ExitCode {
    eprintln!(
        "Error: {}",
        pm_shared::terminal::sanitize_lines_for_terminal(message)
    );
    ExitCode::from(EXIT_FAILURE)
}

/// A clap parser accepting exactly the wire spellings of a domain enum.
pub fn one_of(values: impl IntoIterator<Item = &'static str>) -> PossibleValuesParser {
    PossibleValuesParser::new(values)
}

/// Adds `"key": value` to a JSON object when the value is present.
pub fn put_opt<T: Into<Value>>(body: &mut Value, key: &str, value: Option<T>) {
    if let (Some(v), Some(map)) = (value, body.as_object_mut()) {
        map.insert(key.to_string(), v.into());
    }
}

/// Dates on the command line: Unix seconds, or a UTC calendar date `YYYY-MM-DD` (midnight).
pub fn parse_date(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let bad = || format!("'{s}' is neither Unix seconds nor a date like 2026-01-31");
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return Err(bad()),
    };
    if y.to_string().len() != 4 {
        return Err(bad());
    }
    pm_shared::date::date_to_days(y, m, d)
        .map(|days| days * pm_shared::date::SECS_PER_DAY)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindent_keeps_key_order_and_strings() {
        let text = r#"{"b":1,"a":[],"c":{"x":"a,b:{[\"}","y":[1,{"z":null}]},"d":{}}"#;
        let pretty = reindent(text);
        assert_eq!(
            pretty,
            "{\n  \"b\": 1,\n  \"a\": [],\n  \"c\": {\n    \"x\": \"a,b:{[\\\"}\",\n    \"y\": [\n      1,\n      {\n        \"z\": null\n      }\n    ]\n  },\n  \"d\": {}\n}"
        );
        // It parses back to the same document.
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&pretty).unwrap(), value);
    }

    #[test]
    fn dates_parse_as_unix_seconds_or_calendar_dates() {
        assert_eq!(parse_date("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2026-11-22"), Ok(1_795_305_600));
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800));
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2026-13-01").is_err());
        assert!(parse_date("tomorrow").is_err());
    }
}
