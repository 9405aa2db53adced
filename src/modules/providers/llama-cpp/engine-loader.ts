/**
 * Loads one GGUF model into the embedded engine: the tiny demo model written first when the file
 * is missing and `generate_if_missing` is set (gguf/tiny-model.ts); the file validated before
 * llama.cpp sees it (some malformed models abort the process); the model, one context with
 * `sequences` sequences (the pool), the chat template, the grammar cache and the embedding engine.
 */
import { existsSync } from 'node:fs';
import type { Llama, LlamaContext, LlamaModel, Token } from 'node-llama-cpp';
import type { LlamaCppConfig } from '../../../contracts/model-config';
import { readGgufHeader } from '../../gguf/gguf-reader';
import { writeTinyModel } from '../../gguf/tiny-model';
import { type ChatRenderer, functionCalling, loadChatTemplate } from './chat-rendering';
import { EmbeddingEngine } from './embedding-engine';
import { GrammarCache } from './grammar-cache';
import { loadNodeLlamaCpp, type NodeLlamaCpp } from './load-node-llama-cpp';
import type { Slot } from './sequence-pool';
import { acquireLlama } from './shared-llama';

/** A loaded model and what requests need of it. */
export interface LoadedEngine {
  nlc: NodeLlamaCpp;
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  /** The BOS token the engine prepends, or null. */
  bosToken: Token | null;
  chat: ChatRenderer;
  grammars: GrammarCache;
  embeddings: EmbeddingEngine;
}

export interface LlamaCppProviderInfo {
  modelPath: string;
  /** True when init() wrote the tiny demo model because the file was missing. */
  generatedModel: boolean;
  trainedContextLength: number;
  /** The context window per sequence actually created (≤ trained context). */
  contextSize: number;
  sequences: number;
  threads: number;
  maxQueue: number;
  loadMs: number;
  /** The chat template in use: the GGUF's own, or the plain documented one. */
  chatTemplate: 'gguf' | 'plain';
  /** Why the GGUF's chat template could not be used (null when it is used or there is none). */
  chatTemplateError: string | null;
  /** Whether the chat template does function calling (tools are offered to the model). */
  functionCalling: boolean;
}

/** What a load created so far, for the caller to dispose if it fails or is abandoned midway. */
export interface EngineParts {
  releaseLlama?: () => Promise<void>;
  model?: LlamaModel;
  context?: LlamaContext;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Loads the model of `cfg`. `parts` collects what was created (disposeParts() frees it);
 * `checkOpen` throws when the provider closed meanwhile; `usable` tells the embedding engine
 * whether the provider is still serving.
 */
export async function loadEngine(
  cfg: LlamaCppConfig,
  parts: EngineParts,
  checkOpen: () => void,
  usable: () => boolean,
): Promise<{ engine: LoadedEngine; slots: Slot[]; info: LlamaCppProviderInfo }> {
  const started = Date.now();
  const { modelPath } = cfg;
  let generatedModel = false;
  if (cfg.generateIfMissing && !existsSync(modelPath)) {
    try {
      writeTinyModel(modelPath);
    } catch (err) {
      throw new Error(`cannot write the tiny demo model to ${modelPath}: ${errorMessage(err)}`, { cause: err });
    }
    generatedModel = true;
  }
  // Validate before llama.cpp sees the file: some malformed models abort the process.
  const header = await readGgufHeader(modelPath);

  const nlc = await loadNodeLlamaCpp();
  const handle = acquireLlama();
  parts.releaseLlama = handle.release;
  const llama = await handle.llama;
  checkOpen();
  const model = (parts.model = await llama.loadModel({ modelPath, gpuLayers: 0 }));
  checkOpen();

  const trained = Math.min(header.trainedContextLength, model.trainContextSize);
  const threads = Math.max(1, Math.floor(cfg.threads || 1));
  const sequences = Math.max(1, Math.floor(cfg.sequences || 1));
  const context = (parts.context = await model.createContext({
    contextSize: Math.max(16, Math.min(cfg.contextSize, trained)),
    sequences,
    threads,
    // With flash attention, results depend on how sequences share a batch and the KV cache
    // (measured: ~3% of concurrent requests diverged from their sequential result, even
    // greedy ones); without it they are identical (0 of 480), and the tiny model is faster.
    flashAttention: false,
  }));
  checkOpen();

  const slots = Array.from({ length: sequences }, () => {
    const sequence = context.getSequence();
    return { sequence, completion: new nlc.LlamaCompletion({ contextSequence: sequence }) };
  });
  const bosToken = beginningToken(model);
  const chat = loadChatTemplate(nlc, header);
  const embeddings = new EmbeddingEngine(
    model,
    { contextSize: context.contextSize, threads, vocabularySize: header.vocabularySize, addsBos: bosToken !== null },
    usable,
  );
  const engine = {
    nlc,
    llama,
    model,
    context,
    bosToken,
    chat: chat.renderer,
    grammars: new GrammarCache(llama),
    embeddings,
  };
  const info = {
    modelPath,
    generatedModel,
    trainedContextLength: header.trainedContextLength,
    contextSize: context.contextSize,
    sequences,
    threads,
    maxQueue: Math.max(0, cfg.maxQueue),
    loadMs: Date.now() - started,
    chatTemplate: chat.renderer.kind,
    chatTemplateError: chat.error,
    functionCalling: functionCalling(chat.renderer),
  };
  return { engine, slots, info };
}

/** Frees what a load created, the shared backend last. */
export async function disposeParts(parts: EngineParts, engine: LoadedEngine | null): Promise<void> {
  await engine?.embeddings.dispose();
  engine?.grammars.clear();
  try {
    await parts.context?.dispose();
    await parts.model?.dispose();
  } finally {
    await parts.releaseLlama?.();
  }
}

/** Mirrors node-llama-cpp's resolveBeginningTokenToPrepend (what LlamaCompletion prepends). */
function beginningToken(model: LlamaModel): Token | null {
  const type = String(model.vocabularyType);
  if (type === 'rwkv' || type === 'ugm') return null;
  if (type === 'wpm') return model.tokens.bos;
  return model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
}
