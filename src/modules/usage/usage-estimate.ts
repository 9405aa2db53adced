/**
 * Token usage of a generation cut before its end. Providers report usage only with their final
 * chunk, which a cut generation never reaches, so it is estimated conservatively (never above
 * what was really produced):
 * - completion tokens: the non-empty delta chunks received from the backend (engines send
 *   one token per chunk, sometimes more, never less), at most max_new_tokens;
 * - prompt tokens: the prompt's whitespace-separated words (tokenizers split text at word
 *   boundaries, so a prompt has at least one token per word).
 */
import type { TokenUsage } from '../../contracts/generation';

export function cutStreamUsage(prompt: string, deltas: number, maxNewTokens: number): TokenUsage {
  return { promptTokens: prompt.match(/\S+/g)?.length ?? 0, completionTokens: Math.min(deltas, maxNewTokens) };
}
