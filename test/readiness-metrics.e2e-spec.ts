/**
 * Readiness as metrics (src/http/middleware/readiness-metrics.ts): llm_gateway_ready follows the
 * /readyz answers, llm_gateway_readiness_changes_total counts every change between ready and not
 * ready (the input of the flapping alert), and neither moves before /readyz is asked.
 */
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { parseExposition, sampleValue } from './harness/prometheus';
import { FakeVllm } from './fakes/fake-vllm';

describeInProcess('readiness metrics', 'switches a fake upstream between healthy and not', () => {
  let fake: FakeVllm;
  let app: TestApp;

  beforeAll(async () => {
    fake = await FakeVllm.start();
    app = await startTestApp({
      modelsYaml: `default_model: v
models:
  - name: v
    provider: vllm
    upstream_model: m
    base_url: ${fake.url}
    required: true
`,
    });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  async function readiness(): Promise<{ ready: number | undefined; changes: number | undefined }> {
    const res = await app.http().get('/metrics');
    const metrics = parseExposition(res.text);
    return {
      ready: sampleValue(metrics, 'llm_gateway_ready'),
      changes: sampleValue(metrics, 'llm_gateway_readiness_changes_total'),
    };
  }

  async function readyz(expected: number): Promise<void> {
    expect((await app.http().get('/readyz')).status).toBe(expected);
  }

  it('reports nothing before /readyz is asked, then follows its answers and counts the changes', async () => {
    expect(await readiness()).toEqual({ ready: undefined, changes: 0 });

    await readyz(200);
    expect(await readiness()).toEqual({ ready: 1, changes: 0 });
    await readyz(200);
    expect(await readiness()).toEqual({ ready: 1, changes: 0 });

    fake.setHealth(503);
    await readyz(503);
    expect(await readiness()).toEqual({ ready: 0, changes: 1 });
    await readyz(503);
    expect(await readiness()).toEqual({ ready: 0, changes: 1 });

    fake.setHealth(200);
    await readyz(200);
    fake.setHealth(503);
    await readyz(503);
    fake.setHealth(200);
    await readyz(200);
    expect(await readiness()).toEqual({ ready: 1, changes: 4 });
  });
});
