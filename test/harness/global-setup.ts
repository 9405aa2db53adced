/**
 * Jest global setup of `npm test`: the migrated PGlite template every in-process test app's
 * database starts from (test/harness/pglite-template.ts).
 */
import 'reflect-metadata';
import { ensureTestTemplate } from './pglite-template';

export default async function globalSetup(): Promise<void> {
  if (process.env.API_BASE) return; // the server under test is already running
  await ensureTestTemplate();
}
