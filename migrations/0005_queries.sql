-- The queries read model: one row per query, its experts' results and its consensus, kept by the
-- consensus service's projection (its checkpoint commits with these rows) and read by ingest.
CREATE TABLE queries (
    query_id      text        PRIMARY KEY,
    stream_id     text        NOT NULL UNIQUE,
    tenant        text        NOT NULL,
    question      text        NOT NULL,
    status        text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'reached', 'failed')),
    experts       jsonb       NOT NULL DEFAULT '{}',
    consensus     jsonb,
    submitted_at  timestamptz NOT NULL,
    decided_at    timestamptz
);
CREATE INDEX queries_by_tenant ON queries (tenant, submitted_at);
