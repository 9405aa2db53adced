/**
 * `engines.node` in package.json tells the truth: every Node line it names is one CI runs the
 * suite on (.ci/run: the main line, Node 24 LTS, and its matrix; the image's Node 24), and the oldest
 * release it admits on each line satisfies the `engines` of every package in the lockfile, dev
 * ones included (npm ci prints EBADENGINE for those alike). A dependency update that drops a Node
 * line fails here until the range (or the dependency choice: package.json `overrides`) says so.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as semver from 'semver';

const root = join(__dirname, '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface LockEntry {
  version?: string;
  dev?: boolean;
  engines?: { node?: string } | string[];
}

const range = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, LockEntry> };

/** The lowest release of each major line the range admits (`^20.19.0 || ^22.13.0` → 20.19.0, 22.13.0). */
function lowestPerLine(nodeRange: string): string[] {
  return new semver.Range(nodeRange).set.map((comparators) => {
    const lowest = semver.minVersion(new semver.Range(comparators.map((c) => c.value).join(' ')));
    if (!lowest) throw new Error(`no version satisfies ${nodeRange}`);
    return lowest.version;
  });
}

describe('package.json engines.node', () => {
  it('is a set of major lines, each with a lower bound (no open-ended >=)', () => {
    const lines = new semver.Range(range).set;
    expect(lines.length).toBeGreaterThan(0);
    for (const comparators of lines) {
      const upper = comparators.find((c) => c.operator === '<');
      expect({ comparators: comparators.map((c) => c.value).join(' '), hasUpperBound: upper !== undefined }).toEqual({
        comparators: expect.any(String),
        hasUpperBound: true,
      });
    }
  });

  it('names the Node lines CI runs: the main line (every step), the .ci/run matrix and the image', () => {
    const ci = read('.ci/run');
    const main = /^MAIN_NODE=(\d+)$/m.exec(ci);
    expect(main).not.toBeNull();
    const matrix = /for major in ([\d ]+); do\n\s+node_dir="\$\(bash scripts\/node-binary\.sh/.exec(ci);
    expect(matrix).not.toBeNull();
    const image = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(read('Dockerfile'));
    expect(image).not.toBeNull();
    // The image runs the main line: what CI tests first is what ships.
    expect(Number(image![1])).toBe(Number(main![1]));
    const declared = lowestPerLine(range).map((v) => semver.major(v));
    const ciLines = new Set([Number(main![1]), ...matrix![1].trim().split(/\s+/).map(Number), Number(image![1])]);
    expect([...new Set(declared)].sort()).toEqual([...ciLines].sort());
  });

  it("admits no release that any dependency's engines excludes (npm ci prints no EBADENGINE on a declared line)", () => {
    const lowest = lowestPerLine(range);
    const conflicts: string[] = [];
    let checked = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      const engines = entry.engines;
      if (!path || !engines || Array.isArray(engines) || !engines.node) continue;
      const name = path.replace(/^.*node_modules\//, '');
      checked++;
      for (const version of lowest) {
        if (!semver.satisfies(version, engines.node))
          conflicts.push(`${name}@${entry.version} needs ${engines.node}, not ${version}`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(conflicts).toEqual([]);
  });
});
