-- The audit chain: every event, in commit order, linked by hash. Link n holds
-- hash = SHA-256(hash of link n-1 ‖ canonical bytes of the event at `position`), so changing, removing
-- or reordering any stored event breaks every link from it on (docs/adr/0011). The last link is also
-- the chainer's checkpoint: it resumes after (tx_id, position) of the head.
CREATE TABLE audit_chain (
    seq        bigint      PRIMARY KEY CHECK (seq > 0),
    -- No foreign key to events: its check would lock each event row (a write to every chained
    -- event). `verify` joins the two and reports a link whose event is gone.
    position   bigint      NOT NULL UNIQUE,
    tx_id      xid8        NOT NULL,
    event_id   text        NOT NULL,
    tenant     text        NOT NULL,
    prev_hash  bytea       NOT NULL,
    hash       bytea       NOT NULL,
    chained_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_chain_append_only
    BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TRIGGER audit_chain_append_only_truncate
    BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Dead letters: what an operator did with them. A replayed message that fails again is parked as a
-- new row pointing at the one it was replayed from, with that row's errors before its own.
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_status_check;
ALTER TABLE dead_letters
    ADD CONSTRAINT dead_letters_status_check
        CHECK (status IN ('parked', 'replaying', 'replayed', 'discarded')),
    ADD COLUMN replayed_from uuid REFERENCES dead_letters (id),
    ADD COLUMN replay_job    uuid,
    ADD COLUMN replayed_at   timestamptz,
    ADD COLUMN discarded_at  timestamptz,
    ADD COLUMN resolution    text;

CREATE INDEX dead_letters_by_tenant ON dead_letters (tenant, status, created_at);
-- The replayer's outbox: letters an operator asked to replay and that are not yet published.
CREATE INDEX dead_letters_replaying ON dead_letters (replay_job, id) WHERE status = 'replaying';

-- Jobs: a dead-letter replay (published by dlq-replayer at `rate` per second) or a history replay
-- (`quorum replay`, resumable from `cursor`). `reason` and `operator` are also in the job's event.
CREATE TABLE replay_jobs (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('dead-letters', 'history')),
    tenant      text,
    operator    text        NOT NULL,
    reason      text        NOT NULL CHECK (reason <> ''),
    rate        double precision CHECK (rate > 0),
    total       bigint      NOT NULL,
    done        bigint      NOT NULL DEFAULT 0,
    -- History replays: what is selected, where it goes, and how far it got.
    selection   jsonb,
    target      jsonb,
    upto_xmin   xid8,
    cursor_tx   xid8,
    cursor_pos  bigint,
    status      text        NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'interrupted', 'completed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
