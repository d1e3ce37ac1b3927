-- Capstan's first schema: events, projects/stages/services and versioned resources.

-- Every stored CloudEvent, keyed by its id: a duplicate id is accepted once, not twice.
-- The full wire event is kept as jsonb and returned as is; the other columns exist to be queried.
CREATE TABLE events (
    id             text PRIMARY KEY,
    seq            bigint GENERATED ALWAYS AS IDENTITY,  -- arrival order, breaks ties on time
    type           text NOT NULL,
    source         text NOT NULL,
    time           timestamptz NOT NULL,
    shkeptncontext text,
    triggeredid    text,
    project        text,
    stage          text,
    service        text,
    event          jsonb NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_seq ON events (seq);
-- The datastore queries are scoped by project or by context and sorted newest first.
CREATE INDEX events_project_time ON events (project, time DESC, seq DESC);
CREATE INDEX events_project_type_time ON events (project, type, time DESC, seq DESC);
CREATE INDEX events_project_service_time ON events (project, service, time DESC, seq DESC);
CREATE INDEX events_context_time ON events (shkeptncontext, time DESC, seq DESC);
CREATE INDEX events_triggeredid ON events (triggeredid) WHERE triggeredid IS NOT NULL;
-- Filters on arbitrary data.* paths use jsonb containment.
CREATE INDEX events_data ON events USING gin ((event -> 'data') jsonb_path_ops);

-- The first (oldest) event of each Keptn context of a project: Keptn's "root events", normally the
-- sequence trigger that started the context. Maintained on insert.
CREATE TABLE context_roots (
    project        text NOT NULL,
    shkeptncontext text NOT NULL,
    event_id       text NOT NULL,
    time           timestamptz NOT NULL,
    seq            bigint NOT NULL,
    PRIMARY KEY (project, shkeptncontext)
);
CREATE INDEX context_roots_event ON context_roots (event_id);
CREATE INDEX context_roots_project_time ON context_roots (project, time DESC, seq DESC);
CREATE INDEX context_roots_context ON context_roots (shkeptncontext);

CREATE TABLE projects (
    name             text PRIMARY KEY,
    shipyard         text NOT NULL,
    shipyard_version text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE stages (
    project  text NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    name     text NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (project, name)
);

-- A service exists in every stage of its project (created in all of them at once).
CREATE TABLE services (
    project        text NOT NULL,
    stage          text NOT NULL,
    name           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    deployed_image text,
    PRIMARY KEY (project, stage, name),
    FOREIGN KEY (project, stage) REFERENCES stages (project, name) ON DELETE CASCADE
);
CREATE INDEX services_project_name ON services (project, name);

-- Keptn's ExpandedService.lastEventTypes: the newest task event of each type per service.
-- Maintained on insert; no foreign key because events may name services that do not exist yet.
CREATE TABLE service_last_events (
    project        text NOT NULL,
    stage          text NOT NULL,
    service        text NOT NULL,
    type           text NOT NULL,
    event_id       text NOT NULL,
    shkeptncontext text,
    time           timestamptz NOT NULL,
    seq            bigint NOT NULL,
    PRIMARY KEY (project, stage, service, type)
);

-- A version ("commit") of a project's resources; every write creates one.
CREATE TABLE commits (
    id         text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{40}$'),
    project    text NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    message    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX commits_seq ON commits (seq);
CREATE INDEX commits_project_seq ON commits (project, seq DESC);

-- One row per resource changed by a commit. stage = '' is project level, service = '' is stage
-- level. content NULL means the resource was deleted in that commit. The state as of a commit is,
-- per resource, the newest row whose commit_seq is not after it.
CREATE TABLE resource_versions (
    project    text NOT NULL,
    stage      text NOT NULL,
    service    text NOT NULL,
    uri        text NOT NULL,
    commit_seq bigint NOT NULL,
    commit_id  text NOT NULL REFERENCES commits (id) ON DELETE CASCADE,
    content    bytea,
    PRIMARY KEY (project, stage, service, uri, commit_seq)
);
CREATE INDEX resource_versions_scope_seq ON resource_versions (project, stage, commit_seq DESC);
