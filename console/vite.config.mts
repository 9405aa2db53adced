/**
 * Builds the admin console into dist/admin-ui (served by src/http/admin/console.controller.ts at /admin/ui). Plain
 * Vite: JSX goes to Preact through tsconfig's jsxImportSource, so no plugin is needed. Nothing
 * is inlined into the HTML and no asset becomes a data: URL, so the page's CSP can forbid both.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/admin/ui/',
  publicDir: 'public',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/admin-ui', import.meta.url)),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    // The polyfill is for browsers without <link rel=modulepreload>; all current ones have it.
    modulePreload: { polyfill: false },
    target: 'es2022',
    sourcemap: false,
  },
});
