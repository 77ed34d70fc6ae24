-- API keys: each bound to one tenant and a set of roles. Only a hash of the key is kept; the prefix
-- (not secret) finds the row, the hash is then compared in constant time.
CREATE TABLE api_keys (
    id          uuid        PRIMARY KEY,
    prefix      text        NOT NULL UNIQUE,
    tenant      text        NOT NULL,
    roles       text[]      NOT NULL
        CHECK (cardinality(roles) > 0 AND roles <@ ARRAY['publisher', 'operator', 'auditor']),
    hash        bytea       NOT NULL,
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant);
