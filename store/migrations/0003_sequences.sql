-- Sequence executions and Keptn's sequence state view, both written only by the context workflow
-- (through the record_sequence activity) and read by the API.

-- The latest picture of every sequence execution: one run of one sequence in one stage of one
-- Keptn context, keyed by the id of its <stage>.<sequence>.triggered event. The picture is kept
-- whole as jsonb; the columns beside it exist to be filtered, sorted and joined on.
CREATE TABLE sequence_executions (
    triggered_id  text PRIMARY KEY,
    -- a deleted project takes its executions with it, as Keptn dropped its sequence collections
    project       text NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    stage         text NOT NULL,
    service       text NOT NULL,
    keptn_context text NOT NULL,
    sequence      text NOT NULL,
    state         text NOT NULL,
    triggered_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    -- the sequence trigger and every task .triggered id: the events the state view reads
    event_ids     text[] NOT NULL,
    execution     jsonb NOT NULL
);
-- GET /sequence-execution: scoped by project, optionally stage/service, newest trigger first.
CREATE INDEX sequence_executions_project_time
    ON sequence_executions (project, triggered_at DESC, triggered_id DESC);
CREATE INDEX sequence_executions_project_stage_service_time
    ON sequence_executions (project, stage, service, triggered_at DESC);
-- every execution of a context: recomputing its state, and the state view's event lookup
CREATE INDEX sequence_executions_context ON sequence_executions (keptn_context, project);

-- Keptn's SequenceState per Keptn context, recomputed from the context's executions whenever one
-- of them is recorded, so that listing, filtering by state and paging need no aggregation.
-- The parts derived from events (image, evaluation, latest events) are read with the page.
CREATE TABLE sequence_states (
    project       text NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    keptn_context text NOT NULL,
    name          text NOT NULL,
    service       text NOT NULL,
    time          timestamptz NOT NULL,
    state         text NOT NULL,
    problem_title text,
    -- [{"name", "state", "blockedBy"?}] in the order the stages were first triggered
    stages        jsonb NOT NULL,
    PRIMARY KEY (project, keptn_context)
);
CREATE INDEX sequence_states_project_time ON sequence_states (project, time DESC, keptn_context DESC);
CREATE INDEX sequence_states_project_state_time ON sequence_states (project, state, time DESC);
CREATE INDEX sequence_states_project_name_time ON sequence_states (project, name, time DESC);
