-- An event's identity is (tenant, source, id): CloudEvents makes (source, id) unique per producer,
-- and producers of two tenants know nothing of each other. With (source, id) unique across tenants,
-- a tenant could claim another's ids first, or learn by its duplicate answer that another tenant
-- sent one.
ALTER TABLE events DROP CONSTRAINT events_source_id_key;
ALTER TABLE events ADD CONSTRAINT events_tenant_source_id_key UNIQUE (tenant, source, event_id);
