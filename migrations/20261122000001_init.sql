-- pm schema, version 1.
-- Identifiers are UUID strings, timestamps Unix seconds. Entities are soft-deleted (deleted_at);
-- every uniqueness rule is a partial index over live rows, so a deleted key or link can be reused.

CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    email       TEXT,
    name        TEXT,
    created_at  INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

CREATE TABLE pm_projects (
    id                     TEXT PRIMARY KEY NOT NULL,
    title                  TEXT NOT NULL,
    description            TEXT,
    key                    TEXT NOT NULL,
    status                 TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    version                INTEGER NOT NULL DEFAULT 1,
    next_work_item_number  INTEGER NOT NULL DEFAULT 1,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    created_by             TEXT NOT NULL,
    updated_by             TEXT NOT NULL,
    deleted_at             INTEGER
);
CREATE UNIQUE INDEX idx_pm_projects_live_key ON pm_projects(key) WHERE deleted_at IS NULL;

CREATE TABLE pm_project_members (
    id          TEXT PRIMARY KEY NOT NULL,
    project_id  TEXT NOT NULL REFERENCES pm_projects(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, user_id)
);

CREATE TABLE pm_sprints (
    id          TEXT PRIMARY KEY NOT NULL,
    project_id  TEXT NOT NULL REFERENCES pm_projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    goal        TEXT,
    start_date  INTEGER NOT NULL,
    end_date    INTEGER NOT NULL,
    status      TEXT NOT NULL DEFAULT 'planned'
                CHECK (status IN ('planned', 'active', 'completed', 'cancelled')),
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    deleted_at  INTEGER
);
CREATE INDEX idx_pm_sprints_project ON pm_sprints(project_id) WHERE deleted_at IS NULL;

CREATE TABLE pm_work_items (
    id            TEXT PRIMARY KEY NOT NULL,
    item_type     TEXT NOT NULL CHECK (item_type IN ('epic', 'story', 'task')),
    parent_id     TEXT REFERENCES pm_work_items(id) ON DELETE SET NULL,
    project_id    TEXT NOT NULL REFERENCES pm_projects(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL DEFAULT 0,
    title         TEXT NOT NULL,
    description   TEXT,
    status        TEXT NOT NULL DEFAULT 'backlog'
                  CHECK (status IN ('backlog', 'todo', 'in_progress', 'review', 'done')),
    priority      TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    story_points  INTEGER,
    assignee_id   TEXT REFERENCES users(id) ON DELETE SET NULL,
    sprint_id     TEXT REFERENCES pm_sprints(id) ON DELETE SET NULL,
    item_number   INTEGER NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    deleted_at    INTEGER,
    UNIQUE (project_id, item_number)
);
CREATE INDEX idx_pm_work_items_project ON pm_work_items(project_id, position) WHERE deleted_at IS NULL;
CREATE INDEX idx_pm_work_items_parent ON pm_work_items(parent_id) WHERE deleted_at IS NULL;

CREATE TABLE pm_comments (
    id            TEXT PRIMARY KEY NOT NULL,
    work_item_id  TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    content       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    deleted_at    INTEGER
);
CREATE INDEX idx_pm_comments_work_item ON pm_comments(work_item_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE pm_time_entries (
    id                TEXT PRIMARY KEY NOT NULL,
    work_item_id      TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    duration_seconds  INTEGER,
    description       TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER
);
CREATE INDEX idx_pm_time_entries_work_item ON pm_time_entries(work_item_id) WHERE deleted_at IS NULL;

CREATE TABLE pm_dependencies (
    id                TEXT PRIMARY KEY NOT NULL,
    blocking_item_id  TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    blocked_item_id   TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    dependency_type   TEXT NOT NULL DEFAULT 'blocks' CHECK (dependency_type IN ('blocks', 'relates_to')),
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    deleted_at        INTEGER,
    CHECK (blocking_item_id <> blocked_item_id)
);
CREATE UNIQUE INDEX idx_pm_dependencies_live_pair
    ON pm_dependencies(blocking_item_id, blocked_item_id) WHERE deleted_at IS NULL;

-- One row per mutation. `changes` is a JSON array of {field_name, old_value, new_value}.
CREATE TABLE pm_activity_log (
    id           TEXT PRIMARY KEY NOT NULL,
    project_id   TEXT,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    changes      TEXT NOT NULL DEFAULT '[]',
    user_id      TEXT NOT NULL,
    timestamp    INTEGER NOT NULL,
    comment      TEXT
);
CREATE INDEX idx_pm_activity_log_entity ON pm_activity_log(entity_type, entity_id, timestamp DESC);

-- The event log. A stream is a project id, or '' for the workspace stream (project lifecycle).
-- last_seq is the stream's counter; events hold the encoded WebSocketMessage frame, replayed as is.
CREATE TABLE pm_streams (
    stream    TEXT PRIMARY KEY NOT NULL,
    last_seq  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE pm_events (
    stream      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    frame       BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;

-- Key/value facts about this database, e.g. its event epoch.
CREATE TABLE pm_meta (
    key    TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
);

-- Idempotent creates: a retried request with the same message_id from the same user gets the
-- stored response instead of a second entity.
CREATE TABLE pm_idempotency_keys (
    user_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    operation   TEXT NOT NULL,
    response    BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, message_id)
);
