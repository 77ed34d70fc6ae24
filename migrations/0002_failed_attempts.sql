-- Each failed delivery of a message, so that when a consumer gives up the dead letter carries the
-- error of every attempt, including attempts made by other replicas.
CREATE TABLE failed_attempts (
    consumer   text        NOT NULL,
    stream_seq bigint      NOT NULL,
    delivered  integer     NOT NULL,
    error      text        NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream_seq, delivered)
);
