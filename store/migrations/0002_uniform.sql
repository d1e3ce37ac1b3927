-- Keptn's uniform: registered integrations, their subscriptions, the open task .triggered events
-- that pull clients poll, and the error logs integrations report.

-- A registered integration. Its id is Keptn's sha1(name-namespace-hostname). metadata is Keptn's
-- Integration.metadata without lastseen (kept in last_seen). An integration whose expires_at has
-- passed (no heartbeat within UNIFORM_INTEGRATION_TTL) is gone: never listed, never delivered to,
-- and deleted lazily by the next write.
CREATE TABLE uniform_integrations (
    id         text PRIMARY KEY,
    seq        bigint GENERATED ALWAYS AS IDENTITY,  -- registration order, the listing order
    name       text NOT NULL,
    namespace  text NOT NULL,
    metadata   jsonb NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX uniform_integrations_name ON uniform_integrations (name, namespace);
CREATE INDEX uniform_integrations_expires ON uniform_integrations (expires_at);

-- One subscription of an integration. Ids are unique per integration (Keptn kept them in an array
-- of the integration document; a PUT may create one under a client-chosen id). filter is
-- {"projects": [...], "stages": [...], "services": [...]}; url is Capstan's extension: where to push.
CREATE TABLE uniform_subscriptions (
    integration_id text NOT NULL REFERENCES uniform_integrations (id) ON DELETE CASCADE,
    id             text NOT NULL,
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    event          text NOT NULL,
    filter         jsonb NOT NULL,
    url            text,
    PRIMARY KEY (integration_id, id)
);
CREATE INDEX uniform_subscriptions_push ON uniform_subscriptions (integration_id) WHERE url IS NOT NULL;

-- Task .triggered events the control plane emitted and nobody has answered, aborted or timed out
-- yet: Keptn's "<project>-triggeredEvents" collection, read by GET /event/triggered/{type}.
-- The event is also in events; the copy here keeps the poll a single index scan.
CREATE TABLE open_triggered_events (
    event_id       text PRIMARY KEY,
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    type           text NOT NULL,
    time           timestamptz NOT NULL,
    shkeptncontext text,
    project        text,
    stage          text,
    service        text,
    event          jsonb NOT NULL
);
CREATE INDEX open_triggered_events_type_time ON open_triggered_events (type, time DESC, seq DESC);
CREATE INDEX open_triggered_events_project ON open_triggered_events (project, type);

-- Error logs integrations send with POST /controlPlane/v1/log (Keptn's keptnErrorLogs), kept for
-- LOG_TTL after their time.
CREATE TABLE integration_logs (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id text NOT NULL,
    message        text NOT NULL,
    time           timestamptz NOT NULL,
    shkeptncontext text NOT NULL DEFAULT '',
    task           text NOT NULL DEFAULT '',
    triggeredid    text NOT NULL DEFAULT '',
    gitcommitid    text NOT NULL DEFAULT ''
);
CREATE INDEX integration_logs_integration_time ON integration_logs (integration_id, time DESC);
CREATE INDEX integration_logs_time ON integration_logs (time DESC);
