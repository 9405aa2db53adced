/**
 * Names, label sets and histogram buckets of every metric the server exports (API.md "Health
 * and metrics"). One place, so the dashboard test can check that deploy/grafana only queries
 * metrics that exist.
 */

/** HTTP durations: API calls take milliseconds; streamed generations can take a minute. */
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Whole LLM calls: from a cached-prefix 50 ms answer to a long generation of five minutes. */
export const LLM_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
/** The gateway's own time per request: 0.1 ms to a second. */
export const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Time to first token: 10 ms (warm, small model) to a minute (queued behind a long batch). */
export const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Time in a model's queue: most requests not at all, a backlog seconds, max_wait_ms at most. */
export const QUEUE_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDefinition {
  name: string;
  type: MetricType;
  help: string;
  labels: readonly string[];
}

export const METRICS = {
  httpRequests: {
    name: 'http_requests_total',
    type: 'counter',
    help: 'HTTP requests answered, by method, route template and status code (499: the client went away first)',
    labels: ['method', 'route', 'status_code'],
  },
  httpDuration: {
    name: 'http_request_duration_seconds',
    type: 'histogram',
    help: 'HTTP request duration in seconds, from the first byte received to the response end',
    labels: ['method', 'route', 'status_code'],
  },
  gatewayOverhead: {
    name: 'llm_gateway_overhead_seconds',
    type: 'histogram',
    help: 'Time each request spent in the gateway itself, excluding the wait on the backend (X-Gateway-Overhead-Ms), by route template',
    labels: ['route'],
  },
  llmRequests: {
    name: 'llm_requests_total',
    type: 'counter',
    help: 'Backend generation calls by serving model, provider kind and outcome (success|error|timeout|unavailable|aborted)',
    labels: ['model', 'provider', 'outcome'],
  },
  llmDuration: {
    name: 'llm_request_duration_seconds',
    type: 'histogram',
    help: 'Duration of backend generation calls in seconds (client-aborted calls excluded)',
    labels: ['model', 'provider'],
  },
  llmTtft: {
    name: 'llm_time_to_first_token_seconds',
    type: 'histogram',
    help: 'Time from the start of a streamed generation to its first token, in seconds',
    labels: ['model', 'provider'],
  },
  llmTokens: {
    name: 'llm_tokens_total',
    type: 'counter',
    help: 'Tokens processed by backends, by model and type (prompt|completion)',
    labels: ['model', 'type'],
  },
  llmCost: {
    name: 'llm_cost_total',
    type: 'counter',
    help: 'Spend charged to keys, in CURRENCY, by the model that answered (pricing in models.yaml)',
    labels: ['model'],
  },
  budgetUsed: {
    name: 'llm_budget_used_ratio',
    type: 'gauge',
    help: 'Share of its monthly_budget a key or team has spent this month (settled spend / budget), for keys and teams with a budget',
    labels: ['owner', 'id', 'name'],
  },
  llmCache: {
    name: 'llm_cache_requests_total',
    type: 'counter',
    help: 'Completion cache lookups by model and result (hit|miss|coalesced)',
    labels: ['model', 'result'],
  },
  llmBackendUp: {
    name: 'llm_backend_up',
    type: 'gauge',
    help: 'Result of the last readiness probe of each upstream: 1 ready, 0 not ready',
    labels: ['model', 'upstream'],
  },
  llmUpstreamState: {
    name: 'llm_upstream_state',
    type: 'gauge',
    help: 'Circuit breaker of each upstream: 0 closed (in use), 1 half-open (one probe request), 2 open (skipped)',
    labels: ['model', 'upstream'],
  },
  llmInFlight: {
    name: 'llm_in_flight_requests',
    type: 'gauge',
    help: 'Generations in progress, by requested model',
    labels: ['model'],
  },
  queueLength: {
    name: 'llm_queue_length',
    type: 'gauge',
    help: "Requests waiting in a model's queue for an upstream slot (max_in_flight), by key priority",
    labels: ['model', 'priority'],
  },
  queueWait: {
    name: 'llm_queue_wait_seconds',
    type: 'histogram',
    help: 'Time admitted requests of models with max_in_flight waited in the queue (0 when admitted at once), by key priority',
    labels: ['model', 'priority'],
  },
  requestsShed: {
    name: 'llm_requests_shed_total',
    type: 'counter',
    help: 'Requests answered 503 overloaded, by model and reason (queue_full|max_wait)',
    labels: ['model', 'reason'],
  },
  upstreamInFlight: {
    name: 'llm_upstream_in_flight',
    type: 'gauge',
    help: 'Requests this replica has on each upstream now (bounded by max_in_flight)',
    labels: ['model', 'upstream'],
  },
  rateLimitRejections: {
    name: 'rate_limit_rejections_total',
    type: 'counter',
    help: 'Requests rejected with 429, by reason (rpm|tpm|concurrency|auth)',
    labels: ['reason'],
  },
  quotaRejections: {
    name: 'quota_rejections_total',
    type: 'counter',
    help: 'Generations rejected with 402, by quota type (requests|tokens)',
    labels: ['type'],
  },
  gatewayReady: {
    name: 'llm_gateway_ready',
    type: 'gauge',
    help: 'The last /readyz answer of this replica: 1 ready (200), 0 not ready (503, draining included); absent until /readyz is first asked',
    labels: [],
  },
  readinessChanges: {
    name: 'llm_gateway_readiness_changes_total',
    type: 'counter',
    help: 'Changes of the /readyz answer between ready and not ready (flapping shows as a fast-growing count)',
    labels: [],
  },
} as const satisfies Record<string, MetricDefinition>;

export const LLM_OUTCOMES = ['success', 'error', 'timeout', 'unavailable', 'aborted'] as const;
/**
 * How a backend generation call ended:
 * - success: the answer (or the whole stream) was delivered;
 * - error: the backend answered with an error or garbage (502), or anything unexpected;
 * - timeout: the model's timeout_ms passed (504);
 * - unavailable: no upstream could be reached, fallbacks included (503);
 * - aborted: the client went away first.
 */
export type LlmOutcome = (typeof LLM_OUTCOMES)[number];

export const CACHE_RESULTS = ['hit', 'miss', 'coalesced'] as const;
export type CacheResult = (typeof CACHE_RESULTS)[number];

/** `concurrency`: the key's max_concurrent; `auth`: too many failed authentications from one client address. */
export const RATE_LIMIT_REASONS = ['rpm', 'tpm', 'concurrency', 'auth'] as const;
export type RateLimitReason = (typeof RATE_LIMIT_REASONS)[number];

/** `budget`: 402 budget_exhausted (a key's or team's monthly_budget). */
export const QUOTA_TYPES = ['requests', 'tokens', 'budget'] as const;
export type QuotaType = (typeof QUOTA_TYPES)[number];

/** Why admission control answered 503 overloaded: the queue was full, or the request waited max_wait_ms. */
export const SHED_REASONS = ['queue_full', 'max_wait'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

/** The `priority` label: a key's priority class. */
export const PRIORITY_LABELS = ['high', 'normal', 'low'] as const;

/** The `route` label of requests that matched no route (404 from the router). */
export const UNMATCHED_ROUTE = 'unmatched';
