/**
 * Jest global setup: the migrated PGlite snapshot every in-process test app starts from, and the
 * compiled server the child-process tests run.
 */
import 'reflect-metadata';
import { compiledMain } from './compiled-server';
import { ensureSnapshot } from './pglite-snapshot';

export default async function globalSetup(): Promise<void> {
  if (process.env.API_BASE) return; // the server under test is already running
  compiledMain();
  await ensureSnapshot();
}
