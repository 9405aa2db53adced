/**
 * Loads node-llama-cpp (the llama.cpp bindings) once per process.
 *
 * It is ESM-only and has top-level await, so `require()` fails even on Node versions with
 * require(esm) (ERR_REQUIRE_ASYNC_MODULE), and TypeScript/swc turn a literal `import()` into
 * `require()` in our CommonJS output. So we do a real dynamic import through `new Function`
 * (plain Node: `node dist/main.js`, `node -r @swc-node/register`). Under jest (CommonJS, no
 * --experimental-vm-modules) that import() throws ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG, so
 * we fall back to a vm.Script compiled with importModuleDynamically =
 * vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER, which runs the import() with Node's own ESM loader
 * (prints one ExperimentalWarning, tests only).
 */
import { pathToFileURL } from 'node:url';
import * as vm from 'node:vm';

export type NodeLlamaCpp = typeof import('node-llama-cpp');

const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

function vmImport(specifier: string): Promise<unknown> {
  // Node ≥ 20.19 / 21.7; typed as a number by @types/node, a symbol at runtime.
  const loader: unknown = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (loader === undefined) {
    throw new Error('node-llama-cpp cannot be imported here: this Node has no vm USE_MAIN_CONTEXT_DEFAULT_LOADER');
  }
  const script = new vm.Script('(specifier) => import(specifier)', {
    filename: 'llama-cpp-esm-import.js',
    importModuleDynamically: loader as never,
  });
  return (script.runInThisContext() as (s: string) => Promise<unknown>)(specifier);
}

let nodeLlamaCpp: Promise<NodeLlamaCpp> | null = null;

/** Imports node-llama-cpp once per process (see the file comment for why it is done this way). */
export function loadNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  if (!nodeLlamaCpp) {
    const load = async (): Promise<NodeLlamaCpp> => {
      // An absolute file URL: resolution must not depend on the importing script or the cwd.
      const url = pathToFileURL(require.resolve('node-llama-cpp')).href;
      try {
        return (await nativeImport(url)) as NodeLlamaCpp;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (
          code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG' &&
          code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING'
        ) {
          throw err;
        }
        return (await vmImport(url)) as NodeLlamaCpp;
      }
    };
    nodeLlamaCpp = load();
    nodeLlamaCpp.catch(() => (nodeLlamaCpp = null));
  }
  return nodeLlamaCpp;
}
