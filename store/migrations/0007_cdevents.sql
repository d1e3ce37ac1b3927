-- CDEvents subscriptions and their transactional outbox (docs/cdevents.md).

-- Who wants CDEvents, and how delivery to them is going. A subscriber is retried as a whole:
-- after a failure nothing more is sent to it until next_attempt_at, so it gets events in order.
CREATE TABLE cdevent_subscriptions (
    id              text PRIMARY KEY,
    url             text NOT NULL,
    project         text,                      -- NULL: every project
    types           text[] NOT NULL DEFAULT '{}',  -- CDEvents type prefixes; empty: every type
    created_at      timestamptz NOT NULL DEFAULT now(),
    failures        integer NOT NULL DEFAULT 0,  -- consecutive failed attempts
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    delivered       bigint NOT NULL DEFAULT 0   -- CDEvents acknowledged by the subscriber
);

-- One row per (subscription, stored Keptn event) still to be forwarded. Written by the trigger
-- below in the same transaction as the event itself: an event is either stored and queued for
-- every subscriber, or neither. The forwarder deletes a row once the subscriber acknowledged it.
CREATE TABLE cdevent_outbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES cdevent_subscriptions (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cdevent_outbox_subscription ON cdevent_outbox (subscription_id, seq);

-- One statement-level trigger (a COPY of a million events runs it once): the hot path pays one
-- join of the inserted rows with a table that is usually tiny, often empty.
CREATE FUNCTION cdevent_outbox_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdevent_outbox (subscription_id, event_id)
    SELECT s.id, e.id
    FROM new_events e JOIN cdevent_subscriptions s ON s.project IS NULL OR s.project = e.project
    WHERE e.type LIKE 'sh.keptn.event%' AND e.type NOT LIKE 'sh.keptn.event.get-sli.%'
    ORDER BY e.seq, s.id;
    IF FOUND THEN
        -- Wakes a waiting forwarder at commit; it also polls, so a lost notification only delays.
        PERFORM pg_notify('cdevent_outbox', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_cdevent_outbox AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION cdevent_outbox_fan_out();
