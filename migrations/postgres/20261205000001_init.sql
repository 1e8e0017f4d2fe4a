-- pm schema for PostgreSQL: the same tables, indexes and documents as the SQLite migrations in
-- ../ (versions 1 and 2 together), in PostgreSQL's types: every integer is BIGINT (what pm reads
-- them as), frames are BYTEA. Several pm-servers share one such database; the event log's
-- counters (pm_streams) are taken inside each write's transaction, so seqs commit in order.

-- pm schema, version 1.
-- Identifiers are UUID strings, timestamps Unix seconds. Entities are soft-deleted (deleted_at);
-- every uniqueness rule is a partial index over live rows, so a deleted key or link can be reused.

CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    email       TEXT,
    name        TEXT,
    created_at  BIGINT NOT NULL DEFAULT (CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))
);

CREATE TABLE pm_projects (
    id                     TEXT PRIMARY KEY NOT NULL,
    title                  TEXT NOT NULL,
    description            TEXT,
    key                    TEXT NOT NULL,
    status                 TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    version                BIGINT NOT NULL DEFAULT 1,
    next_work_item_number  BIGINT NOT NULL DEFAULT 1,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    created_by             TEXT NOT NULL,
    updated_by             TEXT NOT NULL,
    deleted_at             BIGINT
);
CREATE UNIQUE INDEX idx_pm_projects_live_key ON pm_projects(key) WHERE deleted_at IS NULL;

CREATE TABLE pm_project_members (
    id          TEXT PRIMARY KEY NOT NULL,
    project_id  TEXT NOT NULL REFERENCES pm_projects(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_at  BIGINT NOT NULL,
    UNIQUE (project_id, user_id)
);

CREATE TABLE pm_sprints (
    id          TEXT PRIMARY KEY NOT NULL,
    project_id  TEXT NOT NULL REFERENCES pm_projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    goal        TEXT,
    start_date  BIGINT NOT NULL,
    end_date    BIGINT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'planned'
                CHECK (status IN ('planned', 'active', 'completed', 'cancelled')),
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    deleted_at  BIGINT
);
CREATE INDEX idx_pm_sprints_project ON pm_sprints(project_id) WHERE deleted_at IS NULL;

CREATE TABLE pm_work_items (
    id            TEXT PRIMARY KEY NOT NULL,
    item_type     TEXT NOT NULL CHECK (item_type IN ('epic', 'story', 'task')),
    parent_id     TEXT REFERENCES pm_work_items(id) ON DELETE SET NULL,
    project_id    TEXT NOT NULL REFERENCES pm_projects(id) ON DELETE CASCADE,
    position      BIGINT NOT NULL DEFAULT 0,
    title         TEXT NOT NULL,
    description   TEXT,
    status        TEXT NOT NULL DEFAULT 'backlog'
                  CHECK (status IN ('backlog', 'todo', 'in_progress', 'review', 'done')),
    priority      TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    story_points  BIGINT,
    assignee_id   TEXT REFERENCES users(id) ON DELETE SET NULL,
    sprint_id     TEXT REFERENCES pm_sprints(id) ON DELETE SET NULL,
    item_number   BIGINT NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    deleted_at    BIGINT,
    UNIQUE (project_id, item_number)
);
CREATE INDEX idx_pm_work_items_project ON pm_work_items(project_id, position) WHERE deleted_at IS NULL;
CREATE INDEX idx_pm_work_items_parent ON pm_work_items(parent_id) WHERE deleted_at IS NULL;

CREATE TABLE pm_comments (
    id            TEXT PRIMARY KEY NOT NULL,
    work_item_id  TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    content       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX idx_pm_comments_work_item ON pm_comments(work_item_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE pm_time_entries (
    id                TEXT PRIMARY KEY NOT NULL,
    work_item_id      TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    ended_at          BIGINT,
    duration_seconds  BIGINT,
    description       TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);
CREATE INDEX idx_pm_time_entries_work_item ON pm_time_entries(work_item_id) WHERE deleted_at IS NULL;

CREATE TABLE pm_dependencies (
    id                TEXT PRIMARY KEY NOT NULL,
    blocking_item_id  TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    blocked_item_id   TEXT NOT NULL REFERENCES pm_work_items(id) ON DELETE CASCADE,
    dependency_type   TEXT NOT NULL DEFAULT 'blocks' CHECK (dependency_type IN ('blocks', 'relates_to')),
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    deleted_at        BIGINT,
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
    timestamp    BIGINT NOT NULL,
    comment      TEXT
);
CREATE INDEX idx_pm_activity_log_entity ON pm_activity_log(entity_type, entity_id, timestamp DESC);

-- The event log. A stream is a project id, or '' for the workspace stream (project lifecycle).
-- last_seq is the stream's counter; events hold the encoded WebSocketMessage frame, replayed as is.
CREATE TABLE pm_streams (
    stream    TEXT PRIMARY KEY NOT NULL,
    last_seq  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE pm_events (
    stream      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    frame       BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (stream, seq)
);

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
    response    BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, message_id)
);

-- pm schema, version 2: indexes for dependencies and time tracking, and the LLM context table.
--
-- pm_llm_context holds short, self-describing documents about this database for assistants
-- (GetLlmContextRequest): what each table means, the event log design, the business rules, and
-- queries that answer common questions. The entries below are pm's own, written for pm's schema.

-- Who blocks an item (the live pair index already serves "what does this item block").
CREATE INDEX idx_pm_dependencies_blocked
    ON pm_dependencies(blocked_item_id) WHERE deleted_at IS NULL;

-- A user's running timer, and a work item's entries by start time.
CREATE INDEX idx_pm_time_entries_running
    ON pm_time_entries(user_id, started_at) WHERE ended_at IS NULL AND deleted_at IS NULL;
CREATE INDEX idx_pm_time_entries_started
    ON pm_time_entries(work_item_id, started_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE pm_llm_context (
    id                   TEXT PRIMARY KEY NOT NULL,
    context_type         TEXT NOT NULL
                         CHECK (context_type IN ('schema_doc', 'query_pattern', 'business_rule', 'example', 'instruction')),
    category             TEXT NOT NULL,
    title                TEXT NOT NULL,
    content              TEXT NOT NULL,
    example_sql          TEXT,
    example_description  TEXT,
    priority             BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    deleted_at           BIGINT
);
CREATE INDEX idx_pm_llm_context_type ON pm_llm_context(context_type) WHERE deleted_at IS NULL;
CREATE INDEX idx_pm_llm_context_category ON pm_llm_context(category) WHERE deleted_at IS NULL;
CREATE INDEX idx_pm_llm_context_priority ON pm_llm_context(priority DESC) WHERE deleted_at IS NULL;

INSERT INTO pm_llm_context (id, context_type, category, title, content, example_sql, example_description, priority, created_at, updated_at) VALUES
-- ---------------------------------------------------------------- schema documents (100)
('7d0c6a52-1f00-4c11-9e00-000000000001', 'schema_doc', 'overview', 'How pm stores a board',
 'pm keeps everything in one SQLite database. Identifiers are lowercase UUID strings, timestamps are Unix seconds (BIGINT). Entities are soft-deleted: deleted_at is NULL while a row is live, so almost every query needs "deleted_at IS NULL". Uniqueness rules (project keys, dependency pairs) are partial indexes over live rows, so a deleted key or link can be used again. Every write goes through one pipeline that, in the same transaction, updates the entity, appends one pm_activity_log row and appends one event to pm_events.',
 NULL, NULL, 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000002', 'schema_doc', 'projects', 'pm_projects: projects and their keys',
 'One row per project: title, optional description, key (2-20 of A-Z, 0-9, _; stored uppercase, unique among live projects), status active|archived, version (optimistic concurrency, +1 per update), next_work_item_number (the number the next work item gets; work item keys read KEY-N), created_at/updated_at, created_by/updated_by (user ids). pm_project_members(project_id, user_id, role viewer|editor|admin) records who administers a project; its creator is admin.',
 'SELECT key, title, status, next_work_item_number FROM pm_projects WHERE deleted_at IS NULL ORDER BY title;', 'Every live project with the number its next item will get.', 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000003', 'schema_doc', 'work_items', 'pm_work_items: the cards',
 'Epics, stories and tasks (item_type). parent_id builds the hierarchy (epic > story > task, in the same project). status is the lane: backlog, todo, in_progress, review, done. priority: low, medium, high, critical. story_points 0-100 or NULL. assignee_id and sprint_id are optional. item_number is unique per project (UNIQUE(project_id, item_number), deleted rows included) and never reused; the display key is <project key>-<item_number>. position orders cards within a lane. version increases on every update.',
 'SELECT p.key || ''-'' || w.item_number AS display_key, w.item_type, w.status, w.title FROM pm_work_items w JOIN pm_projects p ON p.id = w.project_id WHERE w.deleted_at IS NULL ORDER BY p.key, w.item_number;', 'All live cards with their display keys.', 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000004', 'schema_doc', 'sprints', 'pm_sprints: time boxes',
 'A sprint belongs to a project: name, goal, start_date/end_date (Unix seconds, start before end), status planned|active|completed|cancelled, version. Work items join a sprint through pm_work_items.sprint_id. At most one sprint per project is active; a completed sprint is frozen.',
 NULL, NULL, 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000005', 'schema_doc', 'comments', 'pm_comments: discussion on a card',
 'Comments on a work item (work_item_id): content up to 5000 characters, created_by/updated_by. Only the author may edit or delete a comment. Comments of a deleted work item are hidden from every read.',
 NULL, NULL, 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000006', 'schema_doc', 'time_entries', 'pm_time_entries: time tracking',
 'One row per stretch of work by user_id on work_item_id. A running timer has ended_at and duration_seconds NULL; stopping it sets ended_at and duration_seconds = ended_at - started_at. A user has at most one running timer: starting one stops the previous one in the same transaction. description is optional (up to 1000 characters). Only the owner (user_id) may change or delete an entry.',
 'SELECT user_id, work_item_id, started_at FROM pm_time_entries WHERE ended_at IS NULL AND deleted_at IS NULL;', 'Who is tracking time right now, and on what.', 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000007', 'schema_doc', 'dependencies', 'pm_dependencies: links between cards',
 'A link from blocking_item_id to blocked_item_id with dependency_type blocks (the blocked card waits for the blocking one) or relates_to (informational). Both cards are in the same project; a card cannot link to itself; each live ordered pair exists once; each card has at most 50 live links per side; blocks links never form a cycle. Deleting a link sets deleted_at, after which the same pair may be linked again.',
 NULL, NULL, 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000008', 'schema_doc', 'activity', 'pm_activity_log: the history of every entity',
 'One row per mutation: entity_type (project, work_item, sprint, comment, time_entry, dependency), entity_id, project_id, action created|updated|deleted, user_id, timestamp, and changes: a JSON array of {field_name, old_value, new_value} with the real before and after of every changed field (values are strings, NULL for empty). Rows are never deleted, so the history of deleted entities stays readable.',
 'SELECT timestamp, user_id, action, changes FROM pm_activity_log WHERE entity_type = ''work_item'' AND entity_id = ?1 ORDER BY timestamp DESC, rowid DESC;', 'The history of one work item, newest first.', 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000009', 'schema_doc', 'events', 'pm_streams and pm_events: the numbered event log',
 'Every change is also an event in a stream: the project''s id for everything inside a project, or the empty string for the workspace stream (projects being created, updated, deleted). pm_streams.last_seq counts per stream; pm_events(stream, seq) holds the encoded protobuf frame exactly as it was broadcast. Seqs are 1, 2, 3 ... with no gaps, because they are taken inside the same transaction as the change. pm_meta(''epoch'') names this history: a client that remembers (stream, seq, epoch) can resume after a disconnect and receive exactly the events it missed. Old events are pruned; a client too far behind reloads a snapshot.',
 'SELECT stream, last_seq FROM pm_streams ORDER BY stream;', 'How many events each stream has seen.', 100, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000010', 'schema_doc', 'users', 'users and pm_idempotency_keys',
 'users(id, email, name): everyone who ever acted; name is the display name boards show. pm_idempotency_keys(user_id, message_id, operation, response): a create retried with the same message_id by the same user returns the stored response instead of creating a second entity.',
 NULL, NULL, 100, 1795305600, 1795305600),
-- ---------------------------------------------------------------- query patterns (90)
('7d0c6a52-1f00-4c11-9e00-000000000011', 'query_pattern', 'work_items', 'Find a card by its display key',
 'A display key such as PM-12 is the project key plus item_number. Split at the last hyphen, look the project up by key among live projects, then the item by (project_id, item_number).',
 'SELECT w.* FROM pm_work_items w JOIN pm_projects p ON p.id = w.project_id WHERE p.key = ?1 AND w.item_number = ?2 AND p.deleted_at IS NULL AND w.deleted_at IS NULL;', 'The live card PM-12 with ?1 = ''PM'' and ?2 = 12.', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000012', 'query_pattern', 'work_items', 'The board of a project, lane by lane',
 'The five lanes are the statuses in order backlog, todo, in_progress, review, done; within a lane cards are ordered by position, then item_number.',
 'SELECT status, item_number, title FROM pm_work_items WHERE project_id = ?1 AND deleted_at IS NULL ORDER BY CASE status WHEN ''backlog'' THEN 0 WHEN ''todo'' THEN 1 WHEN ''in_progress'' THEN 2 WHEN ''review'' THEN 3 ELSE 4 END, position, item_number;', 'Cards of a project in board order.', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000013', 'query_pattern', 'work_items', 'Everything under an epic (one recursive query)',
 'Walk parent_id downwards with a recursive CTE instead of one query per level. The same shape upwards (join on w.id = up.parent_id) gives the ancestors, nearest first.',
 'WITH RECURSIVE down(id, depth) AS (SELECT id, 0 FROM pm_work_items WHERE id = ?1 UNION ALL SELECT w.id, down.depth + 1 FROM pm_work_items w JOIN down ON w.parent_id = down.id WHERE w.deleted_at IS NULL AND down.depth < 100) SELECT id, depth FROM down WHERE depth > 0 ORDER BY depth;', 'All live descendants of a card, children first.', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000014', 'query_pattern', 'dependencies', 'What blocks a card right now',
 'A card is blocked while some live blocks link points at it from a live card that is not done.',
 'SELECT b.item_number, b.title, b.status FROM pm_dependencies d JOIN pm_work_items b ON b.id = d.blocking_item_id WHERE d.blocked_item_id = ?1 AND d.dependency_type = ''blocks'' AND d.deleted_at IS NULL AND b.deleted_at IS NULL AND b.status <> ''done'';', 'The open blockers of one card.', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000015', 'query_pattern', 'dependencies', 'Would a new blocks link create a cycle?',
 'Adding A blocks B creates a cycle exactly when A is already reachable from B along live blocks links. One recursive query answers it; UNION (not UNION ALL) visits each link once, so it terminates on any graph.',
 'WITH RECURSIVE reach(node) AS (SELECT ?2 UNION SELECT d.blocked_item_id FROM pm_dependencies d JOIN reach r ON d.blocking_item_id = r.node WHERE d.dependency_type = ''blocks'' AND d.deleted_at IS NULL) SELECT EXISTS (SELECT 1 FROM reach WHERE node = ?1);', '1 when ?1 blocks ?2 would close a cycle.', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000016', 'query_pattern', 'time_entries', 'Time spent per card and per person',
 'Sum duration_seconds of finished entries; a running entry counts until now.',
 'SELECT work_item_id, user_id, SUM(COALESCE(duration_seconds, strftime(''%s'', ''now'') - started_at)) AS seconds FROM pm_time_entries WHERE deleted_at IS NULL GROUP BY work_item_id, user_id ORDER BY seconds DESC;', 'Tracked seconds by card and user, running timers included.', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000017', 'query_pattern', 'activity', 'Who changed what in a project today',
 'pm_activity_log.project_id ties every row to its project; changes holds the per-field values as JSON, which json_each can unpack.',
 'SELECT a.timestamp, a.user_id, a.entity_type, a.entity_id, c.value ->> ''field_name'' AS field, c.value ->> ''old_value'' AS old, c.value ->> ''new_value'' AS new FROM pm_activity_log a, json_each(a.changes) c WHERE a.project_id = ?1 AND a.timestamp >= strftime(''%s'', ''now'', ''start of day'') ORDER BY a.timestamp DESC;', 'Every field change in a project since midnight (UTC).', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000018', 'query_pattern', 'events', 'Catching up a client after seq N',
 'Replay is a range scan of one stream; if the oldest retained seq is above N + 1 the client must reload a snapshot instead (its events were pruned).',
 'SELECT seq, frame FROM pm_events WHERE stream = ?1 AND seq > ?2 ORDER BY seq;', 'The stored frames a client at seq ?2 of stream ?1 has not seen.', 90, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000019', 'query_pattern', 'sprints', 'Progress of the active sprint',
 'Story points by lane for the active sprint of a project.',
 'SELECT w.status, COUNT(*) AS cards, COALESCE(SUM(w.story_points), 0) AS points FROM pm_sprints s JOIN pm_work_items w ON w.sprint_id = s.id AND w.deleted_at IS NULL WHERE s.project_id = ?1 AND s.status = ''active'' AND s.deleted_at IS NULL GROUP BY w.status;', 'Cards and points per status in the running sprint.', 90, 1795305600, 1795305600),
-- ---------------------------------------------------------------- business rules (80)
('7d0c6a52-1f00-4c11-9e00-000000000020', 'business_rule', 'pipeline', 'Never write around the pipeline',
 'Writing rows directly (for example with the sqlite3 shell while the server runs) bypasses the activity log and the event log: open boards will not see the change until they reload, and resuming clients will not either. Use the REST API, the pm CLI or a WebSocket request; sync import (POST /api/v1/sync/import) is the bulk path and also logs and broadcasts.',
 NULL, NULL, 80, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000021', 'business_rule', 'work_items', 'Hierarchy and numbering',
 'An epic has no parent, a story may sit under an epic, a task under a story, always in the same project, never under itself or its own descendant. Deleting a card with live children is refused. item_number comes from pm_projects.next_work_item_number and is never reused, not even after a delete.',
 NULL, NULL, 80, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000022', 'business_rule', 'time_entries', 'Manual time entries',
 'A manual entry needs started_at before ended_at, neither more than 60 seconds in the future, and lasts at most 24 hours. Editing an entry re-checks the same rules once it has an end.',
 NULL, NULL, 80, 1795305600, 1795305600),
('7d0c6a52-1f00-4c11-9e00-000000000023', 'business_rule', 'concurrency', 'Versions and last writer wins',
 'Projects, work items and sprints carry a version; an update must name the version it read (expected_version) or it fails with CONFLICT and the current version. Sync import instead merges by updated_at: a row with a newer updated_at replaces the stored one, an older or equal one is skipped, so importing the same file twice changes nothing the second time.',
 NULL, NULL, 80, 1795305600, 1795305600);
