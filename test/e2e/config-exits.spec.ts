/**
 * The server process on bad configuration: every failure CONFIG.md lists stops the real process
 * with exit code 1 and a message naming the variable, or the file, model and field (the parser's
 * own tests are in test/config.spec.ts).
 */
import { BAD_MODELS } from '../fixtures/bad-models';
import { writeModelsFile } from '../harness/app';
import { runServerUntilExit } from '../harness/process';

describe('the server process on bad configuration', () => {
  jest.setTimeout(60_000);

  const processCases: [string, Record<string, string>, RegExp][] = [
    ...BAD_MODELS.map(([label, yaml, message]): [string, Record<string, string>, RegExp] => {
      const file = writeModelsFile(yaml);
      const escapedFile = file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      // Every message must name the real file the server was given.
      const named = message.source.startsWith('models\\.yaml')
        ? message.source.replace(/^models\\\.yaml/, escapedFile)
        : `${escapedFile}: ${message.source}`;
      return [label, { MODELS_FILE: file }, new RegExp(named)];
    }),
    ['a bad variable', { PORT: 'eighty' }, /PORT: expected an integer/],
    ['production without ADMIN_TOKEN', { NODE_ENV: 'production' }, /ADMIN_TOKEN: must be set when NODE_ENV=production/],
  ];

  it('exits non-zero naming the file, model and field for every CONFIG.md failure', async () => {
    // Four at a time: each child compiles the entry point; 2 cores.
    const results: Awaited<ReturnType<typeof runServerUntilExit>>[] = [];
    for (let i = 0; i < processCases.length; i += 4) {
      results.push(...(await Promise.all(processCases.slice(i, i + 4).map(([, env]) => runServerUntilExit(env)))));
    }
    results.forEach((result, i) => {
      const [label, , message] = processCases[i];
      expect({ label, code: result.code }).toEqual({ label, code: 1 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/); // a message, not a stack trace
    });
  });

  it('stops on a bad OTEL_* variable, naming it (tracing config: test/tracing-config.spec.ts)', async () => {
    const { code, stderr } = await runServerUntilExit({
      DATABASE_URL: 'pglite://memory',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OTEL_TRACES_SAMPLER: 'sometimes',
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/configuration error: OTEL_TRACES_SAMPLER: must be one of/);
  });
});
