/**
 * Token counts the gateway makes itself, where a backend reports none (API.md "Quotas": never
 * zero for a non-empty prompt or output). The gateway has no tokenizer for remote models, so it
 * counts from below, never above what was really used:
 * - a text's tokens: its whitespace-separated words (tokenizers split text at word boundaries,
 *   so a text has at least one token per word), at least 1 for a text that is not empty;
 * - a stream's completion tokens: its non-empty delta chunks (engines send one token per chunk,
 *   sometimes more, never less), at most max_new_tokens.
 * The embedded engine counts with the model's own tokenizer and never needs these.
 */
import type { TokenUsage } from './generation';

/** The tokens of a text a backend did not count (see the file comment). */
export function wordTokens(text: string): number {
  const words = text.match(/\S+/g)?.length ?? 0;
  return text.length > 0 ? Math.max(1, words) : 0;
}

/** The usage of a generation cut after `deltas` chunks of output (0: before any). */
export function cutStreamUsage(prompt: string, deltas: number, maxNewTokens: number): TokenUsage {
  return { promptTokens: wordTokens(prompt), completionTokens: Math.min(deltas, maxNewTokens) };
}

/**
 * A backend's usage report with what it left out counted here: a count it did not send (null or
 * undefined), or a zero for a prompt or an output that is not empty, is replaced by the estimate.
 * `output.deltas`: the stream's non-empty chunks (streams count those rather than words).
 */
export function completeUsage(
  reported: {
    promptTokens?: number | null;
    completionTokens?: number | null;
    cachedPromptTokens?: number | null;
  } | null,
  prompt: string,
  output: { text: string; deltas?: number },
): TokenUsage {
  const promptTokens = reported?.promptTokens ? reported.promptTokens : wordTokens(prompt);
  const counted = output.deltas ?? wordTokens(output.text);
  const completionTokens = reported?.completionTokens ? reported.completionTokens : counted;
  const cached = reported?.cachedPromptTokens;
  // Cached tokens are a share of the reported prompt: without that report they mean nothing.
  if (cached == null || !reported?.promptTokens) return { promptTokens, completionTokens };
  return { promptTokens, completionTokens, cachedPromptTokens: Math.min(cached, promptTokens) };
}

/** Counts a backend reported: null where it sent none. */
export interface ReportedUsage {
  promptTokens: number | null;
  completionTokens: number | null;
  cachedPromptTokens?: number | null;
}
