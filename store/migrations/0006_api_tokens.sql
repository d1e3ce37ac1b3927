-- Scoped API tokens (access control). The admin token from the settings is not stored here.

-- A token is "cap_<id>_<secret>"; only sha256(secret) is kept, so a database dump does not hand
-- out working tokens. A revoked token keeps its row (revoked_at set): it is listed as revoked and
-- answered 401 "revoked", and its id is never reused.
-- project is deliberately not a foreign key: a token may be made for a project before it exists,
-- and deleting a project must neither delete the token silently nor widen it to all projects.
CREATE TABLE api_tokens (
    id          text PRIMARY KEY,
    seq         bigint GENERATED ALWAYS AS IDENTITY,  -- creation order, the listing order
    name        text NOT NULL,
    secret_hash bytea NOT NULL,
    scopes      text[] NOT NULL,
    project     text,                                  -- NULL: all projects
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
