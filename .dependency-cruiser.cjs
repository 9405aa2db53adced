/**
 * The architecture's rules (docs/ARCHITECTURE.md), checked by `npm run lint`. Imports point down
 * the layers, never up and never in a circle:
 *
 *   entry files (main, server, app.module, migration-run)
 *     → http/      the only code that knows Express
 *     → modules/   features, each importing only the ones listed before it in FEATURE_ORDER
 *     → stores/    ports and their memory and Redis adapters
 *     → infra/     config, logging, database, redis, metrics, tracing, lifecycle
 *     → contracts/ shared types and small pure functions; imports nothing from src/
 *
 * A rule broken here is a design question, not a lint nit: move the code to where it belongs
 * instead of adding an exception.
 */

/** Feature modules, lowest first: a module may import only the modules before it. */
const FEATURE_ORDER = [
  'gguf', // the GGUF format: reading, writing, the demo model
  'providers', // one file per backend, the HTTP transport, the embedded engine
  'scheduling', // model registry, upstream order, breakers, queues, admission
  'generation', // request resolution and the failover loop over upstreams
  'cache', // completion cache and coalescing
  'limits', // rate limits, quotas, concurrency, and the record of every refusal
  'auth', // API keys, key cache and invalidation, failed-auth limiting
  'usage', // billing rules, accounting, the usage ledger
  'pipeline', // one request from quota to bill, in order
  'stored-responses', // /v1/responses results kept for previous_response_id, GET and DELETE
  'health', // readiness and backend probes
  'console', // the admin console's assets
  'admin', // key administration
];

/** infra's own order, lowest first (each folder may use the ones before it). */
const INFRA_ORDER = ['config', 'logging', 'lifecycle', 'journal', 'metrics', 'tracing', 'database', 'redis'];

/** http's own order, lowest first: the controllers' folders use the shared ones before them. */
const HTTP_ORDER = [
  'core', // the request type, the error table and envelope, limit figures as headers
  'middleware', // the chain every request passes (http-app.ts applies it in order)
  'errors', // the exception filter, body errors, the validation pipe
  'guards', // listener, API key, rate limit, admin and metrics tokens
  'responses', // JSON and SSE answers for the pipeline
  'generate', // POST /v1/generate
  'openai', // the OpenAI-compatible routes
  'anthropic', // the Anthropic-compatible routes (Messages)
  'admin', // /admin/* and the console
  'health', // /healthz, /readyz, /metrics
  'server', // the Nest module of all controllers, the Express app, listeners and shutdown
];

function ordered(layer, order) {
  return order.map((name, index) => ({
    name: `${layer}-order-${name}`,
    severity: 'error',
    comment: `${layer}/${name} may use only ${layer} folders listed before it (${order.slice(0, index).join(', ') || 'none'})`,
    from: { path: `^src/${layer}/${name}/` },
    to: {
      path: `^src/${layer}/(${order
        .slice(index + 1)
        .map((n) => n.replace(/[-]/g, '\\-'))
        .join('|')})/`,
    },
  }));
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'files must not import one another in a circle',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment: 'folders must not import one another in a circle',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'contracts-is-a-leaf',
      severity: 'error',
      comment: 'contracts/ holds shared types and pure functions: it imports nothing from src/',
      from: { path: '^src/contracts/' },
      to: { path: '^src/', pathNot: '^src/contracts/' },
    },
    {
      name: 'infra-uses-only-contracts',
      severity: 'error',
      comment: 'infra/ is the platform: it imports only contracts/ (and itself)',
      from: { path: '^src/infra/' },
      to: { path: '^src/', pathNot: '^src/(contracts|infra)/' },
    },
    {
      name: 'stores-use-only-infra-and-contracts',
      severity: 'error',
      comment: 'stores/ (ports and adapters) imports only contracts/ and infra/',
      from: { path: '^src/stores/' },
      to: { path: '^src/', pathNot: '^src/(contracts|infra|stores)/' },
    },
    {
      name: 'stores-are-independent',
      severity: 'error',
      comment: 'a store does not use another store; shared pieces live in stores/ itself',
      from: { path: '^src/stores/([^/]+)/' },
      to: { path: '^src/stores/[^/]+/', pathNot: '^src/stores/$1/' },
    },
    {
      name: 'modules-never-import-http',
      severity: 'error',
      comment: 'features know nothing of HTTP: http/ calls modules, never the reverse',
      from: { path: '^src/modules/' },
      to: { path: '^src/(http|server|main|app\\.module)' },
    },
    {
      name: 'only-http-knows-express',
      severity: 'error',
      comment: 'only http/ (and the entry files) import express',
      from: { path: '^src/', pathNot: '^src/(http/|main\\.ts$|server\\.ts$)' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'core'], path: '(^|/)node_modules/(express|@types/express|@nestjs/platform-express)/' },
    },
    ...ordered('modules', FEATURE_ORDER),
    ...ordered('infra', INFRA_ORDER),
    ...ordered('http', HTTP_ORDER),
    {
      name: 'no-unknown-feature',
      severity: 'error',
      comment: 'every folder of modules/ has its place in FEATURE_ORDER (.dependency-cruiser.cjs)',
      from: { path: '^src/modules/', pathNot: `^src/modules/(${FEATURE_ORDER.join('|')})/` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^(src|node_modules/(express|@types/express|@nestjs/platform-express))',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '\\.spec\\.ts$' },
  },
};
