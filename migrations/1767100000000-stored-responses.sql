-- Responses kept for /v1/responses (modules/stored-responses): the response object as answered,
-- and the conversation it ends (input and output as chat messages) that previous_response_id
-- continues. Only the key that created one may read it (key_id; a rotated key keeps its id).
-- Rows past expires_at are invisible at once and deleted by a daily sweep.

-- migrate:up
CREATE TABLE stored_responses (
  id text PRIMARY KEY,
  key_id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  response jsonb NOT NULL,
  conversation jsonb NOT NULL
);
CREATE INDEX stored_responses_expires_at_idx ON stored_responses (expires_at);

-- migrate:down
DROP TABLE stored_responses;
