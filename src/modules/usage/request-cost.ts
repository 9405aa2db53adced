/**
 * The largest cost a request can have (API.md "Teams, prices and budgets"), reserved from the
 * budgets before the backend is called: an upper bound of its prompt tokens (contracts/cost.ts:
 * one token per UTF-8 byte of everything the backend turns into prompt — messages, tool
 * definitions, the response schema — plus the chat template's per-message tokens; an embedding's
 * token-id inputs count one each) at the input price, and all of its max_new_tokens at the
 * output price.
 */
import { largestCost, promptTokensAtMost } from '../../contracts/cost';
import { promptText } from '../../contracts/generation';
import type { ResolvedRequest } from '../generation/request-resolver';

export function largestRequestCost({ model, params, embedding }: ResolvedRequest): bigint {
  if (!model.pricing) return 0n;
  if (embedding) {
    const tokens = embedding.input.reduce<number>(
      (sum, input) => sum + (typeof input === 'string' ? Buffer.byteLength(input) + 16 : input.length),
      0,
    );
    return largestCost(tokens, 0, model.pricing);
  }
  let bytes = Buffer.byteLength(promptText(params));
  if (params.tools) bytes += Buffer.byteLength(JSON.stringify(params.tools));
  if (params.responseFormat) bytes += Buffer.byteLength(JSON.stringify(params.responseFormat));
  return largestCost(promptTokensAtMost(bytes, params.messages?.length ?? 1), params.maxNewTokens, model.pricing);
}
