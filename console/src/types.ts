/** The shapes the admin API answers with (docs/API.md and the README's admin section). */
export interface Key {
  id: string;
  name: string;
  key_prefix: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  monthly_quota: number | null;
  monthly_token_quota: number | null;
  models: string[] | null;
  active: boolean;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  quota_reset_at: string;
  /** The key's team (its limits apply too); null: none. */
  team_id?: string | null;
  /** In CURRENCY; null: no budget of its own. */
  monthly_budget?: number | null;
  /** Fields other issues add (max_concurrent, priority, weight...) arrive as extra properties. */
  [field: string]: unknown;
}

export interface KeyWithUsage extends Key {
  /** `cost`: spend this period in CURRENCY. */
  usage: { requests: number; tokens: number; cost?: number; quota_reset_at: string };
}

export interface Team {
  id: string;
  name: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  monthly_quota: number | null;
  monthly_token_quota: number | null;
  /** In CURRENCY; null: no budget. */
  monthly_budget: number | null;
  max_concurrent: number | null;
  created_at: string;
  updated_at: string;
  [field: string]: unknown;
}

export interface TeamWithUsage extends Team {
  /** `reserved`: the largest cost of its requests in flight, held against the budget. */
  usage: { requests: number; tokens: number; cost: number; reserved: number; quota_reset_at: string };
  /** Its unrevoked keys. */
  key_count: number;
}

/** What a key's team field offers. */
export type TeamChoice = Pick<Team, 'id' | 'name'>;

export interface TeamPage {
  data: Team[];
  next_cursor: string | null;
}

export interface CreatedKey extends Key {
  key: string;
}

export interface KeyPage {
  data: Key[];
  next_cursor: string | null;
}

export interface DailyUsage {
  date: string;
  model: string;
  requests: number;
  cached_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** In CURRENCY. */
  cost?: number;
}

export interface Upstream {
  upstream: string;
  weight: number;
  state: 'up' | 'down';
  latency_ms: number;
  /** The circuit breaker fed by real requests: closed (in use), half_open (one probe), open (skipped). */
  breaker: 'closed' | 'half_open' | 'open';
  reason: string | null;
  [field: string]: unknown;
}

export interface Model {
  name: string;
  provider: string;
  kind: 'embedded' | 'remote';
  upstream_model: string;
  default: boolean;
  required: boolean;
  fallbacks: string[];
  max_new_tokens: number;
  default_max_new_tokens: number;
  timeout_ms: number;
  ready: boolean;
  upstreams: Upstream[];
}

export interface ModelList {
  default_model: string;
  /** The unit of prices and budgets (CURRENCY). */
  currency?: string;
  checked_at: string;
  data: Model[];
}
