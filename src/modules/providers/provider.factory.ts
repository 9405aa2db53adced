/**
 * Builds the provider for one upstream of a model. Remote kinds (vllm, ollama, openai) need an
 * upstream base URL; in-process kinds (llama-cpp, mock) are called with `upstream: null`.
 */
import type { ModelConfig } from '../../contracts/model-config';
import { createLlamaCppProvider } from './llama-cpp/llama-cpp.provider';
import { MockProvider } from './mock.provider';
import { OllamaProvider } from './ollama.provider';
import { OpenAiProvider } from './openai.provider';
import type { LlmProvider, ProviderFactory } from './provider.types';
import { VllmProvider } from './vllm.provider';

function baseUrlOf(model: ModelConfig, upstream: { baseUrl: string } | null): string {
  if (!upstream) {
    throw new Error(`model "${model.name}" (provider ${model.provider}) needs an upstream base URL`);
  }
  return upstream.baseUrl;
}

export const createProvider: ProviderFactory = (model, upstream): LlmProvider => {
  switch (model.provider) {
    case 'vllm':
      return new VllmProvider(model, baseUrlOf(model, upstream));
    case 'ollama':
      return new OllamaProvider(model, baseUrlOf(model, upstream));
    case 'openai':
      return new OpenAiProvider(model, baseUrlOf(model, upstream));
    case 'llama-cpp':
      return createLlamaCppProvider(model);
    case 'mock':
      return new MockProvider(model);
    default: {
      const unknown: never = model.provider;
      throw new Error(`unknown provider "${String(unknown)}"`);
    }
  }
};
