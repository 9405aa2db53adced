-- API keys and their quota period. Only a SHA-256 hash of a key is stored (hex), plus a short
-- display prefix; the plaintext exists once, in the create/rotate response.

-- migrate:up
CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  key_prefix text NOT NULL,
  key_hash char(64) NOT NULL,
  rpm_limit integer CHECK (rpm_limit > 0),
  tpm_limit integer CHECK (tpm_limit > 0),
  monthly_quota integer CHECK (monthly_quota >= 0),
  monthly_token_quota bigint CHECK (monthly_token_quota >= 0),
  models text[],
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  expires_at timestamptz,
  revoked_at timestamptz,
  -- The current quota period: [quota_period_start, quota_reset_at), calendar month in UTC.
  quota_period_start timestamptz NOT NULL,
  quota_reset_at timestamptz NOT NULL,
  quota_requests_used integer NOT NULL DEFAULT 0 CHECK (quota_requests_used >= 0),
  quota_tokens_used bigint NOT NULL DEFAULT 0 CHECK (quota_tokens_used >= 0)
);

CREATE UNIQUE INDEX api_keys_key_hash_idx ON api_keys (key_hash);
-- Keyset pagination of the admin listing.
CREATE INDEX api_keys_created_at_id_idx ON api_keys (created_at, id);

-- Per key, UTC day and model: what the key used. Filled by upserts, read by the admin API.
CREATE TABLE key_usage_daily (
  key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  day date NOT NULL,
  model text NOT NULL,
  requests integer NOT NULL DEFAULT 0,
  cached_requests integer NOT NULL DEFAULT 0,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, day, model)
);

-- migrate:down
DROP TABLE key_usage_daily;
DROP TABLE api_keys;
