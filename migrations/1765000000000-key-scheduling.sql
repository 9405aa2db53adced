-- Scheduling fields of a key (API.md "Admin API"): how many generations it may have in flight
-- (null = unlimited), its priority class in the models' queues and its share within the class.

-- migrate:up
ALTER TABLE api_keys
  ADD COLUMN max_concurrent integer CONSTRAINT api_keys_max_concurrent_check CHECK (max_concurrent > 0),
  ADD COLUMN priority text NOT NULL DEFAULT 'normal'
    CONSTRAINT api_keys_priority_check CHECK (priority IN ('high', 'normal', 'low')),
  ADD COLUMN weight integer NOT NULL DEFAULT 1 CONSTRAINT api_keys_weight_check CHECK (weight BETWEEN 1 AND 100);

-- migrate:down
ALTER TABLE api_keys DROP COLUMN weight, DROP COLUMN priority, DROP COLUMN max_concurrent;
