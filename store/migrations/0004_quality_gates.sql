-- Quality gates: which SLI provider each project's evaluations ask, and the comparison query.

-- Keptn kept this in a ConfigMap per project (lighthouse-config-<project>, key sli-provider),
-- written when it handled sh.keptn.event.monitoring.configure.
CREATE TABLE monitoring_configs (
    project      text PRIMARY KEY REFERENCES projects (name) ON DELETE CASCADE,
    sli_provider text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every evaluation compares with the previous evaluations of its project/stage/service, newest
-- first: this keeps that query an index scan however many events a project has.
CREATE INDEX events_evaluations ON events (project, stage, service, time DESC, seq DESC)
    WHERE type = 'sh.keptn.event.evaluation.finished';
-- The invalidation lookup of that query (excludeInvalidated).
CREATE INDEX events_invalidations ON events (triggeredid, type) WHERE type LIKE '%.invalidated';
