//! Server text never writes to the terminal: titles, comments and error messages holding ESC,
//! NUL, BEL or bidi overrides come out of `pm … --format table` and `Error: …` as a visible `�`,
//! while the default JSON output stays the server's exact JSON. The real `pm` binary against a
//! real pm-server.

use crate::common::TestServer;
use serde_json::json;

const EVIL: &str = "\x1b[31mred\0\u{202E}gnp.exe\x1b]0;pwned\x07";
const USER: &str = "00000000-0000-4000-8000-0000000000e1";

/// True when `text` holds a byte or character a terminal must not get from data.
fn dangerous(text: &str) -> Option<char> {
    text.chars().find(|c| {
        (c.is_control() && *c != '\n')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
    })
}

/// A backup whose project, item and comment carry `EVIL` (a command line cannot hold a NUL,
/// an import can).
fn backup(status: &str) -> serde_json::Value {
    let pid = "0e0e0e0e-0000-4000-8000-000000000001";
    let wid = "0e0e0e0e-0000-4000-8000-000000000002";
    json!({
        "schema_version": 1,
        "projects": [{
            "id": pid, "key": "EV", "title": format!("Project {EVIL}"), "status": "active",
            "version": 1, "created_at": 1_800_000_000, "updated_at": 1_800_000_000,
            "created_by": USER, "updated_by": USER,
        }],
        "work_items": [{
            "id": wid, "item_type": "task", "title": EVIL, "description": format!("a\n{EVIL}"),
            "status": status, "priority": "low", "project_id": pid, "item_number": 1,
            "position": 0, "version": 1, "created_at": 1_800_000_000,
            "updated_at": 1_800_000_000, "created_by": USER, "updated_by": USER,
        }],
        "comments": [{
            "id": "0e0e0e0e-0000-4000-8000-000000000003", "work_item_id": wid,
            "content": format!("see {EVIL}"), "created_at": 1_800_000_000,
            "updated_at": 1_800_000_000, "created_by": USER, "updated_by": USER,
        }],
    })
}

#[test]
fn table_output_and_errors_show_controls_and_bidi_overrides_as_placeholders() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.json");
    std::fs::write(&file, backup("todo").to_string()).expect("write backup");
    let path = file.to_str().expect("path");
    server.ok(&["sync", "import", "-f", path]);

    for args in [
        &["work-item", "list", "EV", "--format", "table"][..],
        &["work-item", "get", "EV-1", "--format", "table"],
        &["project", "list", "--format", "table"],
        &["project", "get", "EV", "--format", "table"],
        &["comment", "list", "EV-1", "--format", "table"],
        &["activity", "work-item", "EV-1", "--format", "table"],
    ] {
        let out = server.pm(args).success().stdout;
        assert_eq!(dangerous(&out), None, "pm {args:?} printed:\n{out:?}");
    }
    let list = server
        .pm(&["work-item", "list", "EV", "--format", "table"])
        .success()
        .stdout;
    assert!(list.contains("�[31mred��gnp.exe�]0;pwned�"), "{list:?}");
    let one = server
        .pm(&["work-item", "get", "EV-1", "--format", "table"])
        .success()
        .stdout;
    assert!(
        one.contains("a\n"),
        "the description keeps its lines: {one:?}"
    );

    // JSON stays exact: the title comes back byte for byte.
    let json = server.ok(&["work-item", "get", "EV-1"]);
    assert_eq!(json["work_item"]["title"], EVIL);

    // An error quoting the file's text (an import's bad status) is sanitised on stderr too,
    // and so is the summary of a tolerant import that left the row out for it.
    std::fs::write(&file, backup("\x1b]0;pwned\x07").to_string()).expect("write backup");
    let err = server
        .pm(&["sync", "import", "-f", path, "--strict"])
        .runtime_error();
    assert!(err.contains("status"), "{err}");
    assert_eq!(dangerous(&err), None, "{err:?}");
    let tolerant = server.pm(&["sync", "import", "-f", path]);
    assert_eq!(tolerant.code, 0, "{}", tolerant.stderr);
    let skipped = tolerant.stderr;
    assert!(skipped.contains("status"), "{skipped}");
    assert_eq!(dangerous(&skipped), None, "{skipped:?}");
}
