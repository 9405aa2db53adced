// A Jest reporter that prints the ten slowest test files of the run (wall time of each file in
// its worker), so the cost of a layer is seen file by file.
'use strict';
const { relative } = require('node:path');

class SlowestFilesReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const files = results.testResults
      .map((file) => ({
        path: relative(this.rootDir, file.testFilePath),
        ms: file.perfStats.end - file.perfStats.start,
      }))
      .filter((file) => Number.isFinite(file.ms) && file.ms > 0)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 10);
    if (files.length === 0) return;
    const lines = files.map((file) => `  ${(file.ms / 1000).toFixed(1).padStart(6)} s  ${file.path}`);
    process.stderr.write(`\nslowest test files:\n${lines.join('\n')}\n`);
  }
}

module.exports = SlowestFilesReporter;
