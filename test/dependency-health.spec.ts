/**
 * One health state per dependency (infra/lifecycle/dependency-health.ts), as the request path
 * and /readyz read it (API.md "Health"): an outage marks it down at once; a statement that times
 * out is that statement's failure, and only several in a row mark it down; an answer (even an
 * error answer) resets the count; timeouts of background retries never count.
 */
import { DependencyDown, DependencyHealth, type FailureKind } from '../src/infra/lifecycle/dependency-health';

class Failure extends Error {
  constructor(readonly kind: FailureKind) {
    super(kind);
  }
}

function health(): DependencyHealth {
  return new DependencyHealth('database', {
    probe: async () => undefined,
    classify: (error) => (error instanceof Failure ? error.kind : 'outage'),
    timeoutsToDown: 3,
    probeIntervalMs: 60_000,
  });
}

const failing = (kind: FailureKind) => async () => {
  throw new Failure(kind);
};

describe('DependencyHealth', () => {
  it('an outage marks it down at once; calls then fail fast with DependencyDown', async () => {
    const dependency = health();
    await expect(dependency.call(failing('outage'))).rejects.toBeInstanceOf(DependencyDown);
    expect(dependency.up).toBe(false);
    await expect(dependency.call(async () => 'never run')).rejects.toBeInstanceOf(DependencyDown);
    dependency.close();
  });

  it('a timeout is that call’s failure; three in a row mark it down; an answer in between resets the count', async () => {
    const dependency = health();
    for (const kind of ['timeout', 'timeout', 'answer', 'timeout', 'timeout'] as const) {
      await dependency.call(failing(kind)).catch(() => undefined);
    }
    expect(dependency.up).toBe(true);
    await dependency.call(failing('timeout')).catch(() => undefined);
    expect(dependency.up).toBe(false);
    dependency.close();
  });

  it('timeouts of background retries (one statement waiting on a locked row, again and again) never mark it down', async () => {
    const dependency = health();
    for (let i = 0; i < 10; i += 1) {
      await expect(dependency.call(failing('timeout'), { timeoutsCount: false })).rejects.toBeInstanceOf(
        DependencyDown,
      );
    }
    expect(dependency.up).toBe(true);
    await expect(dependency.call(failing('outage'), { timeoutsCount: false })).rejects.toBeInstanceOf(DependencyDown);
    expect(dependency.up).toBe(false); // an outage is an outage, whoever meets it
    dependency.close();
  });
});
