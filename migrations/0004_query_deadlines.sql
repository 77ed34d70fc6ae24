-- Deadlines of undecided queries: the timer that ends a query when its experts never answer reads
-- them, so the deadline holds even when no message about the query ever comes again.
CREATE TABLE query_deadlines (
    stream_id   text        PRIMARY KEY,
    tenant      text        NOT NULL,
    deadline_at timestamptz NOT NULL,
    decided_at  timestamptz
);
CREATE INDEX query_deadlines_due ON query_deadlines (deadline_at) WHERE decided_at IS NULL;
