-- Secrets (Keptn's secret-service): values encrypted at rest, names and keys in clear for listing.

-- A secret is identified by its scope and name. ciphertext is one Fernet token (url-safe base64
-- text, kept as bytes) of the JSON map key -> value, made with the key of CAPSTAN_SECRET_KEY or
-- <data dir>/secret-key; the database never sees a value in clear. keys repeats the map's keys,
-- sorted, so that listing needs no key and no decryption.
CREATE TABLE secrets (
    scope      text NOT NULL,
    name       text NOT NULL,
    keys       text[] NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, name)
);
-- GET /secret?name=... without a scope.
CREATE INDEX secrets_name ON secrets (name);
