/**
 * Deployment files against the code: the Dockerfile, docker-compose.yml (+ models.compose.yaml)
 * and the Kubernetes manifests (deploy/k8s) are parsed with real parsers (yaml; the models files
 * with the server's own loader) and every env var name, port, probe path, mount and shutdown
 * timing is compared with what the server reads and does. No Docker engine or cluster is needed;
 * .ci/prod-smoke runs the image's start path itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseModelsYaml } from '../src/infra/config/models.loader';
import type { ModelsConfig } from '../src/contracts/model-config';

const ROOT = join(__dirname, '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The env var names the server reads: every `readXxx(env, 'NAME'` in the config module. */
const CODE_ENV = new Set(
  ['app.config.ts', 'redis.config.ts'].flatMap((file) =>
    [...read(`src/infra/config/${file}`).matchAll(/read\w+\(env, '([A-Z0-9_]+)'/g)].map((m) => m[1]),
  ),
);
const DEFAULT_PORT = Number(/readInt\(env, 'PORT', (\d+)/.exec(read('src/infra/config/app.config.ts'))![1]);
const DEFAULT_SHUTDOWN_GRACE_MS = Number(
  /'SHUTDOWN_GRACE_MS', ([\d_]+)/.exec(read('src/infra/config/app.config.ts'))![1].replace(/_/g, ''),
);
/** After the drain, main.ts gives closing the app this long before it exits anyway. */
const CLOSE_TIMEOUT_MS = Number(/const CLOSE_TIMEOUT_MS = ([\d_]+)/.exec(read('src/main.ts'))![1].replace(/_/g, ''));
const SECRET_NAMES = ['ADMIN_TOKEN', 'DATABASE_URL', 'REDIS_URL', 'METRICS_TOKEN'];

function loadModels(text: string, env: Record<string, string> = {}): ModelsConfig {
  return parseModelsYaml(text, 'models.yaml', env, '/app');
}
function apiKeyEnvNames(modelsText: string): string[] {
  const raw = parseYaml(modelsText) as { models: { api_key_env?: string }[] };
  return raw.models.flatMap((m) => (m.api_key_env ? [m.api_key_env] : []));
}
function durationMs(value: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(value);
  if (!match) throw new Error(`not a duration: ${value}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

describe('the names the checks compare against', () => {
  it('are read from the code', () => {
    expect([...CODE_ENV]).toEqual(
      expect.arrayContaining([
        'PORT',
        'HOST',
        'DATABASE_URL',
        'REDIS_URL',
        'ADMIN_TOKEN',
        'MODELS_FILE',
        'SHUTDOWN_GRACE_MS',
        'NODE_ENV',
      ]),
    );
    expect([DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE_MS, CLOSE_TIMEOUT_MS].every((n) => Number.isInteger(n) && n > 0)).toBe(
      true,
    );
  });
});

// ---- Dockerfile ---------------------------------------------------------------------------------
interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (!pending && /^\s*(#|$)/.test(raw)) continue;
    if (/\\\s*$/.test(raw)) {
      pending += raw.replace(/\\\s*$/, ' ');
      continue;
    }
    lines.push((pending + raw).trim());
    pending = '';
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (op === 'FROM') {
      const [, from, name] = /^(\S+)\s+AS\s+(\S+)$/i.exec(rest)!;
      stages.push({ name, from, instructions: [] });
    } else if (stages.length === 0 && op === 'ARG') {
      const [name, value] = rest.split('=');
      args[name] = value;
    } else {
      stages.at(-1)!.instructions.push({ op, args: rest });
    }
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const stage = (name: string): Stage => dockerfile.stages.find((s) => s.name === name)!;
const all = (s: Stage, op: string): string[] => s.instructions.filter((i) => i.op === op).map((i) => i.args);
const runtime = stage('runtime');
const imageEnv = Object.fromEntries(
  all(runtime, 'ENV').flatMap((e) => [...e.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]])),
);
const imageWorkdir = all(runtime, 'WORKDIR').at(-1)!;
const imageUser = all(runtime, 'USER').at(-1)!;
const imagePort = Number(all(runtime, 'EXPOSE').at(-1));
/** The tiny model's file inside the image: model_path is relative to the working directory. */
const defaultModels = loadModels(read('config/models.yaml'));

describe('Dockerfile', () => {
  it('is multi-stage: build with the dev dependencies, deps with production ones only, runtime from both', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    expect(all(stage('build'), 'RUN')).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^npm ci\b(?!.*--omit=dev)/),
        expect.stringMatching(/^npm run build\b/),
      ]),
    );
    expect(all(stage('deps'), 'RUN')[0]).toMatch(/^npm ci --omit=dev\b/);
    expect(all(runtime, 'RUN').join('\n')).not.toMatch(/npm (ci|install)/);
  });

  it('runs Node 24 LTS on Debian slim in every stage', () => {
    const image = dockerfile.args.NODE_IMAGE;
    expect(image).toMatch(/^node:24-\w+-slim$/);
    for (const s of dockerfile.stages) expect(s.from).toBe('${NODE_IMAGE}');
  });

  it('the runtime stage holds package*.json, production node_modules, dist, migrations and config: nothing else', () => {
    // .ci/prod-smoke replays exactly these COPY lines, so the smoke run and the image agree.
    expect(all(runtime, 'COPY')).toEqual([
      'package.json package-lock.json ./',
      '--from=deps /app/node_modules ./node_modules',
      '--from=build /build/dist ./dist',
      'migrations ./migrations',
      'config ./config',
    ]);
    expect(all(stage('build'), 'WORKDIR')).toEqual(['/build']);
    expect(all(stage('deps'), 'WORKDIR')).toEqual(['/app']);
    expect(imageWorkdir).toBe('/app');
  });

  it('build and deps RUN lines use relative paths only (prod-smoke runs them in a directory of its own)', () => {
    for (const command of [...all(stage('build'), 'RUN'), ...all(stage('deps'), 'RUN')]) {
      expect(command).not.toMatch(/(^|\s)\/(?!dev\/null)/);
    }
    // The runtime stage's only RUN prepares the DATA_DIR mount point for the server's user.
    expect(all(runtime, 'RUN')).toEqual([`mkdir -p ${imageEnv.DATA_DIR} && chown ${imageUser} ${imageEnv.DATA_DIR}`]);
  });

  it('keeps only the CPU binary of the embedded engine', () => {
    const overrides = JSON.parse(read('package.json')).overrides as Record<string, string>;
    for (const gpu of ['linux-x64-cuda', 'linux-x64-cuda-ext', 'linux-x64-vulkan']) {
      expect(overrides[`@node-llama-cpp/${gpu}`]).toMatch(/^npm:empty-npm-package@/);
    }
    expect(all(stage('deps'), 'RUN').join('\n')).toMatch(/node_modules\/@node-llama-cpp\/\*/);
  });

  it('runs as a non-root numeric user, in production mode, with an exec-form node CMD', () => {
    expect(imageUser).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(imageEnv.NODE_ENV).toBe('production');
    expect(JSON.parse(all(runtime, 'CMD').at(-1)!)).toEqual(['node', 'dist/main.js']);
    expect(all(runtime, 'STOPSIGNAL')).toEqual(['SIGTERM']);
  });

  it('HEALTHCHECK asks /healthz on PORT; EXPOSE and PORT are the server default', () => {
    const healthcheck = all(runtime, 'HEALTHCHECK').at(-1)!;
    expect(healthcheck).toMatch(/CMD \[/);
    expect(healthcheck).toContain("path:'/healthz'");
    expect(healthcheck).toContain('process.env.PORT');
    expect(imagePort).toBe(DEFAULT_PORT);
    expect(Number(imageEnv.PORT)).toBe(DEFAULT_PORT);
  });

  it('sets only env vars the server reads, and no secret', () => {
    for (const name of Object.keys(imageEnv)) expect(CODE_ENV).toContain(name);
    const text = read('Dockerfile');
    for (const name of SECRET_NAMES) expect(text).not.toMatch(new RegExp(`^\\s*(ENV|ARG)\\b.*\\b${name}\\b`, 'm'));
    expect(text).not.toMatch(/^\s*(ENV|ARG)\b.*(PASSWORD|SECRET|API_KEY)/m);
  });

  it('DATA_DIR is the volume, inside WORKDIR, and the tiny model is generated inside it', () => {
    expect(all(runtime, 'VOLUME')).toEqual([JSON.stringify([imageEnv.DATA_DIR])]);
    expect(imageEnv.DATA_DIR.startsWith(`${imageWorkdir}/`)).toBe(true);
    const tiny = defaultModels.models.find((m) => m.name === defaultModels.defaultModel)!;
    // Resolved against /app by loadModels, as the server resolves it against its working directory.
    expect(tiny.llamaCpp!.modelPath.startsWith(`${imageEnv.DATA_DIR}/`)).toBe(true);
    expect(tiny.llamaCpp!.generateIfMissing).toBe(true);
  });

  it('.dockerignore is an allowlist that lets in every COPY source and keeps out local state', () => {
    const rules = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(rules[0]).toBe('*');
    const sources = dockerfile.stages.flatMap((s) =>
      all(s, 'COPY')
        .filter((c) => !c.startsWith('--from'))
        .flatMap((c) => c.split(/\s+/).slice(0, -1)),
    );
    for (const source of new Set(sources)) {
      expect(rules).toContain(`!${source}`);
      expect(existsSync(join(ROOT, source))).toBe(true);
    }
    for (const local of ['data', 'dist', 'node_modules', '.env', '.git', 'test'])
      expect(rules).not.toContain(`!${local}`);
    expect(rules).toEqual(expect.arrayContaining(['**/.env', 'src/**/*.spec.ts']));
  });
});

// ---- docker-compose.yml ---------------------------------------------------------------------------
interface ComposeService {
  build?: string;
  image?: string;
  profiles?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  command?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  read_only?: boolean;
  deploy?: { resources?: { reservations?: { devices?: { driver: string; capabilities: string[] }[] } } };
}
const compose = parseYaml(read('docker-compose.yml')) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const api = services.api;
/** Compose interpolation with each variable's default, or a stand-in for a required one. */
const interpolate = (value: string): string =>
  value.replace(
    /\$\{(\w+)(?::?-([^}]*)|:\?[^}]*)?\}/g,
    (_, name: string, fallback?: string) => fallback ?? `<${name}>`,
  );
const apiEnv = Object.fromEntries(Object.entries(api.environment!).map(([k, v]) => [k, interpolate(String(v))]));
const composeModelsText = read(apiEnv.MODELS_FILE);

describe('docker-compose.yml', () => {
  it('has api (built from here), postgres and redis, and the ollama, vllm and observability profiles', () => {
    expect(api.build).toBe('.');
    expect(services.postgres.profiles).toBeUndefined();
    expect(services.redis.profiles).toBeUndefined();
    expect(api.profiles).toBeUndefined();
    expect(services.ollama.profiles).toEqual(['ollama']);
    expect(services.vllm.profiles).toEqual(['vllm']);
    expect(services.prometheus.profiles).toEqual(['observability']);
    expect(services.grafana.profiles).toEqual(['observability']);
  });

  it('the api service sets only env vars the server reads (or api_key_env of its models file)', () => {
    const known = new Set([...CODE_ENV, ...apiKeyEnvNames(composeModelsText)]);
    for (const name of Object.keys(api.environment!)) expect(known).toContain(name);
    for (const name of apiKeyEnvNames(composeModelsText)) expect(Object.keys(api.environment!)).toContain(name);
  });

  it('ADMIN_TOKEN comes from the environment, is required, and is never written here', () => {
    expect(api.environment!.ADMIN_TOKEN).toMatch(/^\$\{ADMIN_TOKEN:\?[^}]+\}$/);
  });

  it('publishes the api port the server listens on; the healthcheck asks /readyz on it', () => {
    const port = Number(apiEnv.PORT ?? DEFAULT_PORT);
    expect(port).toBe(imagePort);
    expect(api.ports!.map((p) => Number(interpolate(p).split(':').at(-1)))).toEqual([port]);
    const check = api.healthcheck!.test.join(' ');
    expect(check).toContain("path:'/readyz'");
    expect(check).toContain(`port:${port}`);
  });

  it('the api waits for healthy postgres and redis, reaches them by service name, and they keep volumes', () => {
    expect(api.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
    for (const name of ['postgres', 'redis']) {
      expect(services[name].healthcheck!.test.length).toBeGreaterThan(0);
      const volume = services[name].volumes![0].split(':')[0];
      expect(compose.volumes).toHaveProperty(volume);
    }
    const db = new URL(apiEnv.DATABASE_URL);
    const pg = Object.fromEntries(
      Object.entries(services.postgres.environment!).map(([k, v]) => [k, interpolate(String(v))]),
    );
    expect(db.protocol).toBe('postgres:');
    expect([db.hostname, db.port, db.username, decodeURIComponent(db.password), db.pathname]).toEqual([
      'postgres',
      '5432',
      pg.POSTGRES_USER,
      pg.POSTGRES_PASSWORD,
      `/${pg.POSTGRES_DB}`,
    ]);
    const redis = new URL(apiEnv.REDIS_URL);
    expect([redis.protocol, redis.hostname, redis.port]).toEqual(['redis:', 'redis', '6379']);
  });

  it("mounts a volume at the image's DATA_DIR; the rest of the filesystem is read-only", () => {
    const mounts = api.volumes!.map((v) => v.split(':'));
    expect(mounts).toContainEqual([expect.any(String), imageEnv.DATA_DIR]);
    expect(compose.volumes).toHaveProperty(mounts.find((m) => m[1] === imageEnv.DATA_DIR)![0]);
    expect(api.read_only).toBe(true);
  });

  it('stop_grace_period outlasts the drain (SHUTDOWN_GRACE_MS) and the close that follows it', () => {
    const grace = Number(apiEnv.SHUTDOWN_GRACE_MS ?? DEFAULT_SHUTDOWN_GRACE_MS);
    expect(durationMs(api.stop_grace_period!)).toBeGreaterThanOrEqual(grace + CLOSE_TIMEOUT_MS);
  });

  it('models.compose.yaml loads with the server loader, keeps the default tiny model, and points at the profile services', () => {
    const models = loadModels(composeModelsText, apiEnv);
    expect(models.defaultModel).toBe(defaultModels.defaultModel);
    const raw = (text: string) => (parseYaml(text) as { models: { name: string }[] }).models;
    expect(raw(composeModelsText).find((m) => m.name === 'tiny')).toEqual(
      raw(read('config/models.yaml')).find((m) => m.name === 'tiny'),
    );
    const remote = models.models.filter((m) => m.upstreams.length > 0);
    expect(remote.map((m) => m.provider).sort()).toEqual(['ollama', 'vllm']);
    for (const model of remote) {
      // Backends behind a profile may be absent: readiness must not depend on them.
      expect(model.required).toBe(false);
      for (const upstream of model.upstreams) {
        const url = new URL(upstream.baseUrl);
        const service = services[url.hostname];
        expect(service?.profiles).toEqual([model.provider]);
        if (model.provider === 'vllm') expect(service.command!.join(' ')).toContain(`--port ${url.port}`);
        if (model.provider === 'ollama') expect(url.port).toBe('11434');
      }
    }
    const pulled = services['ollama-pull'].command!;
    expect(pulled).toEqual(['pull', models.models.find((m) => m.provider === 'ollama')!.upstreamModel]);
  });

  it('vllm reserves an NVIDIA GPU', () => {
    expect(services.vllm.deploy!.resources!.reservations!.devices).toEqual([
      expect.objectContaining({ driver: 'nvidia', capabilities: ['gpu'] }),
    ]);
  });

  it('Prometheus and Grafana are provisioned from deploy/: the scrape target is the api service, the dashboard is mounted where the provider looks', () => {
    const bind = (service: string) =>
      services[service]
        .volumes!.filter((v) => v.startsWith('./'))
        .map((v) => {
          const [source, target] = v.split(':');
          return { source: source.slice(2), target };
        });
    for (const { source } of [...bind('prometheus'), ...bind('grafana')])
      expect(existsSync(join(ROOT, source))).toBe(true);

    const promMount = bind('prometheus').find((m) => m.source === 'deploy/prometheus/prometheus.yml')!;
    expect(services.prometheus.command).toContain(`--config.file=${promMount.target}`);
    const scrape = parseYaml(read(promMount.source)) as {
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    expect(scrape.scrape_configs[0].metrics_path).toBe('/metrics');
    expect(scrape.scrape_configs[0].static_configs[0].targets).toEqual([`api:${apiEnv.PORT}`]);

    const grafana = bind('grafana');
    const provisioning = (kind: string) => grafana.find((m) => m.source === `deploy/grafana/provisioning/${kind}`)!;
    expect(provisioning('datasources').target).toBe('/etc/grafana/provisioning/datasources');
    expect(provisioning('dashboards').target).toBe('/etc/grafana/provisioning/dashboards');
    const datasource = parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { url: string }[];
    };
    expect(new URL(datasource.datasources[0].url).hostname).toBe('prometheus');
    const provider = parseYaml(read('deploy/grafana/provisioning/dashboards/llm-server.yml')) as {
      providers: { options: { path: string } }[];
    };
    const dashboard = grafana.find((m) => m.source === 'deploy/grafana/llm-server.json')!;
    expect(posix.dirname(dashboard.target)).toBe(provider.providers[0].options.path);
  });

  it('every named volume a service uses is declared', () => {
    for (const service of Object.values(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0];
        if (!source.startsWith('.') && !source.startsWith('/')) expect(compose.volumes).toHaveProperty(source);
      }
    }
  });
});

// ---- Kubernetes ---------------------------------------------------------------------------------
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}
const K8S = 'deploy/k8s';
const kustomization = parseYaml(read(`${K8S}/kustomization.yaml`)) as {
  resources: string[];
  images: { name: string }[];
};
const objects: K8sObject[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(read(`${K8S}/${file}`)).map((doc) => {
    expect(doc.errors).toEqual([]);
    return doc.toJS() as K8sObject;
  }),
);
const byKind = (kind: string): K8sObject => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
};

describe('Kubernetes manifests (deploy/k8s)', () => {
  const deployment = byKind('Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const env = new Map<string, any>(container.env.map((e: { name: string }) => [e.name, e]));
  const literal = (name: string): string => env.get(name)?.value;
  const configMap = byKind('ConfigMap');
  const modelsMount = container.volumeMounts.find((m: { name: string }) =>
    pod.volumes.some((v: any) => v.name === m.name && v.configMap?.name === configMap.metadata.name),
  );
  const modelsText = configMap.data![posix.basename(literal('MODELS_FILE'))];

  it('every resource is a well-formed object of the expected kinds and API versions', () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`).sort()).toEqual([
      'apps/v1 Deployment',
      'autoscaling/v2 HorizontalPodAutoscaler',
      'policy/v1 PodDisruptionBudget',
      'v1 ConfigMap',
      'v1 Service',
    ]);
    for (const o of objects) expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(kustomization.images.map((i) => i.name)).toEqual([container.image]);
  });

  const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  (hasKubectl ? it : it.skip)(
    `kubectl kustomize renders them (it needs no cluster)${hasKubectl ? '' : ' [skipped: kubectl not installed]'}`,
    () => {
      const rendered = execFileSync('kubectl', ['kustomize', join(ROOT, K8S)], { encoding: 'utf8' });
      expect(
        parseAllDocuments(rendered)
          .map((d) => (d.toJS() as K8sObject).kind)
          .sort(),
      ).toEqual(objects.map((o) => o.kind).sort());
    },
  );

  it('the container sets only env vars the server reads (or api_key_env of its models), secrets by reference', () => {
    const known = new Set([...CODE_ENV, ...apiKeyEnvNames(modelsText)]);
    for (const name of env.keys()) expect(known).toContain(name);
    for (const name of [...SECRET_NAMES, ...apiKeyEnvNames(modelsText)]) {
      expect(env.get(name)).toEqual({
        name,
        valueFrom: { secretKeyRef: expect.objectContaining({ name: expect.any(String), key: name }) },
      });
    }
    expect(literal('NODE_ENV')).toBe('production');
  });

  it('the models ConfigMap is mounted where MODELS_FILE points and loads with the server loader', () => {
    expect(posix.dirname(literal('MODELS_FILE'))).toBe(modelsMount.mountPath);
    expect(modelsMount.readOnly).toBe(true);
    const stand = Object.fromEntries(apiKeyEnvNames(modelsText).map((name) => [name, 'stand-in']));
    const models = loadModels(modelsText, stand);
    const tiny = models.models.find((m) => m.provider === 'llama-cpp')!;
    // The embedded model is written into the (writable) data volume.
    expect(tiny.llamaCpp!.modelPath.startsWith(`${literal('DATA_DIR')}/`)).toBe(true);
  });

  it('listens on the named port http = PORT; the Service targets it', () => {
    expect(container.ports).toEqual([{ name: 'http', containerPort: Number(literal('PORT')), protocol: 'TCP' }]);
    expect(Number(literal('PORT'))).toBe(imagePort);
    const service = byKind('Service');
    expect(service.spec.ports.map((p: { targetPort: string }) => p.targetPort)).toEqual(['http']);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(deployment.spec.template.metadata.annotations).toMatchObject({
      'prometheus.io/path': '/metrics',
      'prometheus.io/port': literal('PORT'),
    });
  });

  it('probes: startup and liveness on /healthz, readiness on /readyz', () => {
    expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    // A readiness answer takes up to READINESS_TIMEOUT_MS per check.
    expect(container.readinessProbe.timeoutSeconds * 1000).toBeGreaterThan(Number(literal('READINESS_TIMEOUT_MS')));
  });

  it('terminationGracePeriodSeconds exceeds preStop sleep + SHUTDOWN_GRACE_MS + the close after it', () => {
    const [command, seconds] = container.lifecycle.preStop.exec.command;
    expect(command).toBe('sleep');
    const needMs = Number(seconds) * 1000 + Number(literal('SHUTDOWN_GRACE_MS')) + CLOSE_TIMEOUT_MS;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(needMs);
  });

  it('runs as the image user, non-root, read-only root filesystem, no privilege escalation, no capabilities', () => {
    const [uid, gid] = imageUser.split(':').map(Number);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: uid, runAsGroup: gid, fsGroup: gid });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    const writable = container.volumeMounts
      .filter((m: { readOnly?: boolean }) => !m.readOnly)
      .map((m: { mountPath: string }) => m.mountPath);
    expect(writable.sort()).toEqual([literal('DATA_DIR'), '/tmp'].sort());
    expect(literal('DATA_DIR')).toBe(imageEnv.DATA_DIR);
  });

  it('trusts no X-Forwarded-For hop, as no Ingress is among the manifests', () => {
    expect(objects.map((o) => o.kind)).not.toContain('Ingress');
    expect(literal('TRUST_PROXY_HOPS')).toBe('0');
  });

  it('requests resources and limits memory', () => {
    expect(container.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits.memory).toEqual(expect.any(String));
  });

  it('the autoscaler and the disruption budget target these pods and leave room for a drain', () => {
    const hpa = byKind('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    // The HPA owns the count: a `replicas` in the Deployment would reset it on every apply.
    expect(deployment.spec).not.toHaveProperty('replicas');
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    const pdb = byKind('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('the example Secret (not applied) has exactly the keys the Deployment references', () => {
    const secret = parseYaml(read(`${K8S}/secret.example.yaml`)) as K8sObject & { stringData: Record<string, string> };
    expect(kustomization.resources).not.toContain('secret.example.yaml');
    const referenced = [...env.values()].filter((e) => e.valueFrom?.secretKeyRef && !e.valueFrom.secretKeyRef.optional);
    expect(Object.keys(secret.stringData).sort()).toEqual(referenced.map((e) => e.valueFrom.secretKeyRef.key).sort());
    for (const e of referenced) expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
  });
});
