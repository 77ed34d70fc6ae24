-- Each fan-out process's circuit breakers, as it last reported them, for `quorum status`. A process
-- reports every few seconds and removes its rows when it stops; rows not seen for a while belong to
-- a process that died, and status leaves them out.
CREATE TABLE expert_breakers (
    instance text        NOT NULL,
    expert   text        NOT NULL,
    state    text        NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    failures integer     NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, expert)
);
