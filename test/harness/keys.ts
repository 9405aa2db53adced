/** Seeded-key factories: keys are made through the admin API, so they work in every mode. */
import type { TestApp } from './app';
import { TEST_ADMIN_TOKEN } from './environment';

export interface SeededKey {
  key: string;
  id: string;
  view: Record<string, unknown>;
}

export function adminAuth(): [string, string] {
  return ['Authorization', `Bearer ${TEST_ADMIN_TOKEN}`];
}

export async function createKey(app: TestApp, fields: Record<string, unknown> = {}): Promise<SeededKey> {
  const res = await app
    .http()
    .post('/admin/keys')
    .set(...adminAuth())
    .send({ name: 'test key', ...fields });
  if (res.status !== 201) throw new Error(`createKey failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { key: res.body.key as string, id: res.body.id as string, view: res.body as Record<string, unknown> };
}

/**
 * The names of the models the server under test serves, in models.yaml order: from the config
 * in-process, from GET /v1/models (with an unrestricted key) in API mode, where the server runs
 * its own models.yaml (the image's default serves only `tiny`).
 */
export async function modelNames(app: TestApp): Promise<string[]> {
  if (app.config) return app.config.models.models.map((model) => model.name);
  const { key } = await createKey(app);
  const res = await app.http().get('/v1/models').set('X-API-Key', key);
  if (res.status !== 200) throw new Error(`GET /v1/models failed: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body.data as { id: string }[]).map((model) => model.id);
}
