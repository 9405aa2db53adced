/**
 * vLLM's OpenAI-compatible server: the wire format of openai.provider.ts with vLLM's dialect.
 *
 * - `top_k`: always sent; disabled top-k (our 0) is sent as -1. vLLM before 0.8 accepted only
 *   -1 or >= 1 ("top_k must be -1 (disable), or at least 1"); newer versions prefer 0 but
 *   "quietly accept -1 as disabled". -1 is the one value that disables it on both.
 * - Readiness: `GET /health` (200 with an empty body once the engine is up).
 * - Streams are strict: vLLM always sends the usage chunk (we ask with
 *   `stream_options.include_usage`) and `data: [DONE]`; a stream missing either ended early.
 */
import type { ModelConfig } from '../../contracts/model-config';
import { OpenAiCompletionsProvider } from './openai.provider';
import type { CompletionsDialect } from './openai-wire';

export const VLLM_DIALECT: CompletionsDialect = {
  kind: 'vllm',
  readyPath: '/health',
  topK: (topK) => (topK > 0 ? topK : -1),
  strictStream: true,
};

export class VllmProvider extends OpenAiCompletionsProvider {
  constructor(model: ModelConfig, baseUrl: string) {
    super(model, baseUrl, VLLM_DIALECT);
  }
}
