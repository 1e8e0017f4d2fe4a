//! The reference CLI's TOML round trip against a real server: `--output-toml` writes the
//! response as TOML, `work-item create|update --from-toml` read the reference's shape back.
use crate::common::TestServer;
use serde_json::Value;

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

#[test]
fn get_to_toml_edit_and_update_from_toml_round_trip() {
    let server = TestServer::start();
    server.project("RT");
    let dir = tempfile::tempdir().expect("temp dir");
    // No trailing newline: the server trims text fields.
    let description = "# Plan\n\nSteps with \"quotes\", `code` and\n```\nfenced\n```";
    let created = server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "RT",
        "--type",
        "task",
        "--title",
        "Draft",
        "--description",
        description,
    ])["work_item"]
        .clone();
    assert_eq!(created["version"], 1);

    let file = dir.path().join("rt-1.toml");
    let file_arg = file.to_str().expect("utf-8 path");
    // stdout still gets the JSON; the file gets the same response as TOML.
    let got = server.ok(&["work-item", "get", "RT-1", "--output-toml", file_arg]);
    assert_eq!(got["work_item"]["id"], created["id"]);
    let text = std::fs::read_to_string(&file).expect("the TOML file");
    assert!(text.starts_with("[work_item]\n"), "{text}");
    // Nulls are left out (TOML has none): the item has no parent, assignee or sprint.
    for absent in ["parent_id", "assignee_id", "sprint_id"] {
        assert!(
            !text.lines().any(|l| l.starts_with(absent)),
            "{absent} in {text}"
        );
    }
    // The Markdown description stays readable: a multi-line string, not an escaped one-liner.
    assert!(text.contains("\"\"\""), "{text}");
    let parsed: toml::Table = text.parse().expect("valid TOML");
    assert_eq!(
        parsed["work_item"]["description"].as_str(),
        Some(description)
    );

    // Edit the file as an agent would: new title, status and points, description appended.
    let edited = text
        .replace("title = \"Draft\"", "title = \"Final\"")
        .replace("status = \"backlog\"", "status = \"in_progress\"")
        .replace("[work_item]\n", "[work_item]\nstory_points = 8\n");
    std::fs::write(&file, edited).expect("edit the file");
    let updated = server.ok(&[
        "work-item",
        "update",
        "RT-1",
        "--from-toml",
        file_arg,
        "--version",
        "1",
        // A flag wins over the file.
        "--priority",
        "high",
    ])["work_item"]
        .clone();
    assert_eq!(updated["title"], "Final");
    assert_eq!(updated["status"], "in_progress");
    assert_eq!(updated["story_points"], 8);
    assert_eq!(updated["priority"], "high");
    assert_eq!(updated["description"], description);
    assert_eq!(updated["parent_id"], Value::Null);
    assert_eq!(updated["version"], 2);

    // And flags beat the file's value for the same field.
    let again = server.ok(&[
        "work-item",
        "update",
        "RT-1",
        "--from-toml",
        file_arg,
        "--title",
        "From the flag",
        "--version",
        "2",
    ]);
    assert_eq!(again["work_item"]["title"], "From the flag");
}

#[test]
fn create_from_a_wrapped_and_a_flat_file() {
    let server = TestServer::start();
    let project = server.project("TF");
    let dir = tempfile::tempdir().expect("temp dir");

    let wrapped = dir.path().join("epic.toml");
    std::fs::write(
        &wrapped,
        format!(
            "[work_item]\nproject_id = \"{}\"\ntype = \"epic\"\ntitle = \"Checkout\"\n\
             description = \"\"\"\nMulti-line\n**markdown**\n\"\"\"\npriority = \"critical\"\n\
             story_points = 3\n",
            s(&project["id"])
        ),
    )
    .expect("write");
    let epic = server.ok(&[
        "work-item",
        "create",
        "--from-toml",
        wrapped.to_str().expect("utf-8"),
    ])["work_item"]
        .clone();
    assert_eq!(epic["item_type"], "epic");
    assert_eq!(epic["title"], "Checkout");
    // The server trims the file's trailing newline as it trims every text field.
    assert_eq!(epic["description"], "Multi-line\n**markdown**");
    assert_eq!(epic["priority"], "critical");
    // story_points is an update-only field: ignored on create, as the reference does.
    assert_eq!(epic["story_points"], Value::Null);

    let flat = dir.path().join("story.toml");
    std::fs::write(
        &flat,
        format!(
            "project_id = \"TF\"\ntype = \"story\"\ntitle = \"From the file\"\nparent_id = \"{}\"\n",
            s(&epic["id"])
        ),
    )
    .expect("write");
    let story = server.ok(&[
        "work-item",
        "create",
        "--from-toml",
        flat.to_str().expect("utf-8"),
        "--title",
        "From the flag",
    ])["work_item"]
        .clone();
    assert_eq!(story["item_type"], "story");
    assert_eq!(story["title"], "From the flag");
    assert_eq!(story["parent_id"], epic["id"]);

    // --output-toml on a list: an array of tables.
    let list_file = dir.path().join("list.toml");
    server.ok(&[
        "work-item",
        "list",
        "TF",
        "--output-toml",
        list_file.to_str().expect("utf-8"),
    ]);
    let list: toml::Table = std::fs::read_to_string(&list_file)
        .expect("list file")
        .parse()
        .expect("valid TOML");
    assert_eq!(list["work_items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_bad_file_names_the_file_and_the_key() {
    let server = TestServer::start();
    server.project("BF");
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    let bad_arg = bad.to_str().expect("utf-8");

    std::fs::write(
        &bad,
        "project_id = \"BF\"\ntype = \"task\"\ntitle = \"T\"\nstatus = \"someday\"\n",
    )
    .expect("write");
    let err = server
        .pm(&["work-item", "create", "--from-toml", bad_arg])
        .runtime_error();
    assert!(
        err.contains("bad.toml") && err.contains("`status`"),
        "{err}"
    );

    std::fs::write(&bad, "[work_item]\nstory_points = \"five\"\n").expect("write");
    let err = server
        .pm(&[
            "work-item",
            "update",
            "BF-1",
            "--from-toml",
            bad_arg,
            "--version",
            "1",
        ])
        .runtime_error();
    assert!(
        err.contains("bad.toml") && err.contains("`story_points`"),
        "{err}"
    );

    std::fs::write(&bad, "title = \"unterminated\n").expect("write");
    let err = server
        .pm(&["work-item", "create", "--from-toml", bad_arg])
        .runtime_error();
    assert!(err.contains("bad.toml") && err.contains("TOML"), "{err}");

    // A file without the required fields says which one is missing and where it may come from.
    std::fs::write(&bad, "type = \"task\"\ntitle = \"T\"\n").expect("write");
    let err = server
        .pm(&["work-item", "create", "--from-toml", bad_arg])
        .runtime_error();
    assert!(
        err.contains("--project-id") && err.contains("bad.toml"),
        "{err}"
    );

    let missing = dir.path().join("missing.toml");
    let err = server
        .pm(&[
            "work-item",
            "create",
            "--from-toml",
            missing.to_str().expect("utf-8"),
        ])
        .runtime_error();
    assert!(err.contains("missing.toml"), "{err}");

    // Without --from-toml the three fields are still required flags (a usage error).
    server
        .pm(&["work-item", "create", "--project-id", "BF", "--title", "T"])
        .usage_error();
}

#[test]
fn output_toml_to_an_unwritable_path_fails_after_printing_the_json() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no-such-dir").join("out.toml");
    let run = server.pm(&[
        "project",
        "create",
        "--title",
        "T",
        "--key",
        "UW",
        "--output-toml",
        path.to_str().expect("utf-8"),
    ]);
    // The project was created and its JSON printed; the file could not be written: exit 1.
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert_eq!(run.json()["project"]["key"], "UW");
    assert!(
        run.stderr.starts_with("Error: ") && run.stderr.contains("out.toml"),
        "{}",
        run.stderr
    );

    // A failed request writes no file.
    let missing = dir.path().join("missing.toml");
    server
        .pm(&[
            "project",
            "get",
            "NOPE",
            "--output-toml",
            missing.to_str().expect("utf-8"),
        ])
        .runtime_error();
    assert!(!missing.exists());
}
