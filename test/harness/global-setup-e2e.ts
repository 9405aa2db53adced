/**
 * Jest global setup of `npm run test:e2e`: the compiled server the child-process tests run, and
 * the PGlite template for the files that also start an in-process app.
 */
import 'reflect-metadata';
import { compiledMain } from './compiled-server';
import { ensureTestTemplate } from './pglite-template';

export default async function globalSetup(): Promise<void> {
  if (process.env.API_BASE) return; // the server under test is already running
  compiledMain();
  await ensureTestTemplate();
}
