/**
 * Tokens/s of node-llama-cpp called directly (no gateway, no HTTP) on the tiny demo model:
 * the baseline to compare with tokens/s measured through the gateway.
 *
 *   node -r @swc-node/register bench/llama-cpp-direct.ts [--model path] [--tokens N] [--runs N]
 *
 * Without --model, the tiny model is written to a temporary directory first. Writes
 * bench/results/llama-cpp-direct.json (relative to the current directory) and prints it.
 * Settings mirror the provider: flash attention off, repeat penalty off, history cleared per run.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LlamaModel } from 'node-llama-cpp';
import { loadNodeLlamaCpp } from '../src/modules/providers/llama-cpp/load-node-llama-cpp';
import { writeTinyModel } from '../src/modules/gguf/tiny-model';

interface Options {
  model: string | null;
  tokens: number;
  runs: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { model: null, tokens: 256, runs: 3 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const v = argv[++i];
    if (flag === '--model') o.model = v;
    else if (flag === '--tokens') o.tokens = Number(v);
    else if (flag === '--runs') o.runs = Number(v);
    else throw new Error(`unknown argument ${flag}`);
  }
  return o;
}

const ms = (since: number): number => Math.round((performance.now() - since) * 10) / 10;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const tmp = opts.model ? null : mkdtempSync(join(tmpdir(), 'llama-bench-'));
  try {
    let t = performance.now();
    const modelPath = opts.model ?? writeTinyModel(join(tmp!, 'tiny.gguf')).path;
    const writeMs = opts.model ? null : ms(t);

    t = performance.now();
    const nlc = await loadNodeLlamaCpp();
    const importMs = ms(t);
    t = performance.now();
    const llama = await nlc.getLlama({ gpu: false, build: 'never', maxThreads: 0 });
    const getLlamaMs = ms(t);
    t = performance.now();
    const model: LlamaModel = await llama.loadModel({ modelPath, gpuLayers: 0 });
    const loadModelMs = ms(t);
    const trainContextSize = model.trainContextSize;
    const contextSize = Math.min(2048, trainContextSize);

    /** Aggregate generation tokens/s with `sequences` concurrent generations of opts.tokens each. */
    async function decode(threads: number, sequences: number): Promise<Record<string, number>> {
      const t0 = performance.now();
      const ctx = await model.createContext({ contextSize, sequences, threads, flashAttention: false });
      const createContextMs = ms(t0);
      const slots = Array.from({ length: sequences }, () => {
        const sequence = ctx.getSequence();
        return { sequence, completion: new nlc.LlamaCompletion({ contextSequence: sequence }) };
      });
      const rates: number[] = [];
      const perSequence: number[] = [];
      for (let run = 0; run < opts.runs; run++) {
        const start = performance.now();
        const counts = await Promise.all(
          slots.map(async ({ sequence, completion }, i) => {
            await sequence.clearHistory();
            const before = sequence.tokenMeter.getState();
            await completion.generateCompletionWithMeta('Once upon a time', {
              maxTokens: opts.tokens,
              temperature: 0.8,
              topK: 40,
              topP: 0.95,
              seed: run * 100 + i,
              repeatPenalty: false,
            });
            return sequence.tokenMeter.diff(before).usedOutputTokens;
          }),
        );
        const seconds = (performance.now() - start) / 1000;
        const total = counts.reduce((a, b) => a + b, 0);
        rates.push(total / seconds);
        perSequence.push(total / sequences / seconds);
      }
      await ctx.dispose();
      return {
        threads,
        sequences,
        createContextMs,
        tokensPerSecond: Math.round(median(rates)),
        tokensPerSecondPerSequence: Math.round(median(perSequence)),
      };
    }

    /** Prompt processing: a long prompt, one generated token. */
    async function promptEval(threads: number, promptTokens: number): Promise<Record<string, number>> {
      const ctx = await model.createContext({ contextSize, sequences: 1, threads, flashAttention: false });
      const sequence = ctx.getSequence();
      const completion = new nlc.LlamaCompletion({ contextSequence: sequence });
      const prompt = 'the quick brown fox jumps over the lazy dog '
        .repeat(Math.ceil(promptTokens / 44))
        .slice(0, promptTokens - 1);
      const rates: number[] = [];
      for (let run = 0; run < opts.runs; run++) {
        await sequence.clearHistory();
        const before = sequence.tokenMeter.getState();
        const start = performance.now();
        await completion.generateCompletionWithMeta(prompt, { maxTokens: 1, temperature: 0, repeatPenalty: false });
        const used = sequence.tokenMeter.diff(before);
        rates.push((used.usedInputTokens + used.usedOutputTokens) / ((performance.now() - start) / 1000));
      }
      await ctx.dispose();
      return { threads, promptTokens, tokensPerSecond: Math.round(median(rates)) };
    }

    const generation = [];
    for (const [threads, sequences] of [
      [1, 1],
      [2, 1],
      [1, 2],
      [1, 4],
    ]) {
      generation.push(await decode(threads, sequences));
    }
    const prompt = [await promptEval(1, 1000)];

    await model.dispose();
    await llama.dispose();

    const result = {
      benchmark: 'llama-cpp-direct',
      date: new Date().toISOString(),
      node: process.version,
      nodeLlamaCpp: (await nlc.getModuleVersion?.()) ?? null,
      cpu: cpus()[0]?.model ?? null,
      cores: cpus().length,
      model: { path: opts.model ? resolve(modelPath) : '(tiny model, temporary)', trainContextSize },
      settings: {
        contextSize,
        generatedTokens: opts.tokens,
        runs: opts.runs,
        flashAttention: false,
        note: 'median of runs',
      },
      startup: { writeTinyModelMs: writeMs, importMs, getLlamaMs, loadModelMs },
      generation,
      prompt,
    };
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/llama-cpp-direct.json', JSON.stringify(result, null, 2) + '\n');
    console.log(JSON.stringify(result, null, 2));
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
