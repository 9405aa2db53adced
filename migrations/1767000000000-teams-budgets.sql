-- Teams, prices and budgets (API.md "Teams, prices and budgets").
-- A team carries the same limits as a key, with the same quota period and counters, so the same
-- conditional statements (limits/quota.service.ts) reserve from either. Money is `numeric`
-- (exact): costs are kept to 1e-15 of a CURRENCY unit and never rounded per request.
-- budget_spent: settled spend in the current period; budget_reserved: the largest possible cost
-- of the requests in flight. A reservation is also a row of budget_reservations, held by one
-- process that renews it while its request runs: a process that dies leaves rows that lapse, and
-- any replica's sweep gives their amounts back (usage/budget-upkeep.ts).

-- migrate:up
CREATE TABLE teams (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CONSTRAINT teams_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
  rpm_limit integer CONSTRAINT teams_rpm_limit_check CHECK (rpm_limit > 0),
  tpm_limit integer CONSTRAINT teams_tpm_limit_check CHECK (tpm_limit > 0),
  monthly_quota integer CONSTRAINT teams_monthly_quota_check CHECK (monthly_quota >= 0),
  monthly_token_quota bigint CONSTRAINT teams_monthly_token_quota_check CHECK (monthly_token_quota >= 0),
  monthly_budget numeric CONSTRAINT teams_monthly_budget_check CHECK (monthly_budget >= 0),
  max_concurrent integer CONSTRAINT teams_max_concurrent_check CHECK (max_concurrent > 0),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  quota_period_start timestamptz NOT NULL,
  quota_reset_at timestamptz NOT NULL,
  quota_requests_used integer NOT NULL DEFAULT 0 CONSTRAINT teams_quota_requests_used_check CHECK (quota_requests_used >= 0),
  quota_tokens_used bigint NOT NULL DEFAULT 0 CONSTRAINT teams_quota_tokens_used_check CHECK (quota_tokens_used >= 0),
  budget_spent numeric NOT NULL DEFAULT 0,
  budget_reserved numeric NOT NULL DEFAULT 0
);
CREATE INDEX teams_created_at_id_idx ON teams (created_at, id);

ALTER TABLE api_keys
  ADD COLUMN team_id uuid REFERENCES teams (id),
  ADD COLUMN monthly_budget numeric CONSTRAINT api_keys_monthly_budget_check CHECK (monthly_budget >= 0),
  ADD COLUMN budget_spent numeric NOT NULL DEFAULT 0,
  ADD COLUMN budget_reserved numeric NOT NULL DEFAULT 0;
CREATE INDEX api_keys_team_id_idx ON api_keys (team_id);

ALTER TABLE key_usage_daily ADD COLUMN cost numeric NOT NULL DEFAULT 0;

-- Per team, UTC day and model: what its keys used while they belonged to it.
CREATE TABLE team_usage_daily (
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  day date NOT NULL,
  model text NOT NULL,
  requests integer NOT NULL DEFAULT 0,
  cached_requests integer NOT NULL DEFAULT 0,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  cost numeric NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, day, model)
);

-- One row per budget reservation in flight: owner_table is api_keys or teams.
CREATE TABLE budget_reservations (
  id text NOT NULL,
  owner_table text NOT NULL CONSTRAINT budget_reservations_owner_check CHECK (owner_table IN ('api_keys', 'teams')),
  owner_id uuid NOT NULL,
  amount numeric NOT NULL,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (id, owner_table)
);
CREATE INDEX budget_reservations_expires_at_idx ON budget_reservations (expires_at);
CREATE INDEX budget_reservations_holder_idx ON budget_reservations (holder);

-- migrate:down
DROP TABLE budget_reservations;
DROP TABLE team_usage_daily;
ALTER TABLE key_usage_daily DROP COLUMN cost;
DROP INDEX api_keys_team_id_idx;
ALTER TABLE api_keys DROP COLUMN budget_reserved, DROP COLUMN budget_spent, DROP COLUMN monthly_budget, DROP COLUMN team_id;
DROP TABLE teams;
