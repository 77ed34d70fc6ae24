-- A tenant's history (`GET /v1/events?…`, exports by tenant) reads events of one tenant in position
-- order: without this index that is a scan of every tenant's events.
CREATE INDEX events_by_tenant ON events (tenant, position);
