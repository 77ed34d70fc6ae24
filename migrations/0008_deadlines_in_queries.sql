-- The deadline timer reads the `queries` read model (docs/adr/0009): the projection writes each
-- query's deadline with its row, in the batches it writes anyway, and its status leaves 'pending'
-- when the consensus is applied. Consensus no longer writes a timer row per query and marks it
-- decided: two statements per query, in the hottest path there is.
ALTER TABLE queries ADD COLUMN deadline_at timestamptz;
UPDATE queries q SET deadline_at = d.deadline_at FROM query_deadlines d WHERE d.stream_id = q.stream_id;
-- A query without a timer row is looked at by the timer at once; its fold knows the real deadline.
UPDATE queries SET deadline_at = submitted_at WHERE deadline_at IS NULL;
ALTER TABLE queries ALTER COLUMN deadline_at SET NOT NULL;
CREATE INDEX queries_due ON queries (deadline_at) WHERE status = 'pending';
DROP TABLE query_deadlines;
