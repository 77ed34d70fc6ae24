-- The event store: Quorum's system of record. Rows are appended, never updated or deleted.

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction's id. Readers order by (tx_id, position) below the snapshot xmin
    -- watermark, because positions are handed out before commit (docs/adr/0002).
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    tenant          text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    event_id        text        NOT NULL CHECK (event_id <> ''),
    source          text        NOT NULL CHECK (source <> ''),
    type            text        NOT NULL CHECK (type <> ''),
    data            bytea,
    datacontenttype text,
    attributes      jsonb       NOT NULL,
    correlation_id  text,
    causation_id    text,
    occurred_at     timestamptz,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_source_id_key UNIQUE (source, event_id)
);

CREATE INDEX events_commit_order ON events (tx_id, position);
CREATE INDEX events_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TRIGGER events_append_only_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Wakes the relay at commit (NOTIFY is delivered only when the transaction commits, and repeated
-- notifications within one transaction collapse into one). The relay also polls, so a lost
-- notification only delays it.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quorum_events', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Where the relay stands: the last (tx_id, position) it published in order, and the JetStream
-- sequence that event got, so a stream that lost data can be noticed and refilled (docs/adr/0003).
CREATE TABLE relay_checkpoints (
    name        text        PRIMARY KEY,
    tx_id       xid8        NOT NULL,
    position    bigint      NOT NULL,
    stream_seq  bigint      NOT NULL,
    event_id    text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Checkpoints of catch-up readers (projections), on the same (tx_id, position) pair.
CREATE TABLE consumer_checkpoints (
    name        text        PRIMARY KEY,
    tx_id       xid8        NOT NULL,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Messages a consumer gave up on. Written (and committed) before the message is terminated in
-- JetStream, so nothing is dropped; the DLQ stream only notifies.
CREATE TABLE dead_letters (
    id              uuid        PRIMARY KEY,
    consumer        text        NOT NULL,
    tenant          text,
    subject         text        NOT NULL,
    stream_seq      bigint,
    event_id        text,
    event_type      text,
    headers         jsonb       NOT NULL,
    payload         bytea       NOT NULL,
    errors          jsonb       NOT NULL,
    attempts        integer     NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'parked'
        CHECK (status IN ('parked', 'replayed', 'discarded')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- One row per (consumer, message): a redelivered poison message parks once.
    CONSTRAINT dead_letters_consumer_msg_key UNIQUE (consumer, subject, stream_seq)
);

CREATE INDEX dead_letters_by_consumer ON dead_letters (consumer, status, created_at);
