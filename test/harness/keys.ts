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
