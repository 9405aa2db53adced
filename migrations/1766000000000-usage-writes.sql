-- Ids of the usage writes that happened (modules/usage/usage-writes.sql.ts): every batch of ledger
-- rows and token charges, every quota reservation and every give-back records its id here in the
-- same statement, so a write retried after an ambiguous failure (a timeout whose statement may
-- have committed) is never counted twice. Old ids are swept (an hour for reservations, a week for
-- batches).

-- migrate:up
CREATE TABLE usage_writes (
  id text PRIMARY KEY,
  written_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_writes_written_at_idx ON usage_writes (written_at);

-- migrate:down
DROP TABLE usage_writes;
