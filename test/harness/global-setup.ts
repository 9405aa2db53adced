/** Jest global setup: the migrated PGlite snapshot every in-process test app starts from. */
import 'reflect-metadata';
import { ensureSnapshot } from './pglite-snapshot';

export default async function globalSetup(): Promise<void> {
  if (process.env.API_BASE) return; // the server under test has its own database
  await ensureSnapshot();
}
