/**
 * The OpenAI answer of /v1/embeddings for the generation pipeline:
 * `{object: "list", data: [{object: "embedding", index, embedding}], model, usage: {prompt_tokens,
 * total_tokens}}`, plus our `cached`. With `encoding_format: "base64"` each embedding is the
 * base64 of its little-endian float32 array (what OpenAI sends and the SDKs decode). Embeddings
 * are never streamed.
 */
import { randomBytes } from 'node:crypto';
import type { AnswerFormat } from '../responses/answer-format';

export type EncodingFormat = 'float' | 'base64';

export function base64Floats(vector: number[]): string {
  const buffer = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => buffer.writeFloatLE(x, i * 4));
  return buffer.toString('base64');
}

export function embeddingAnswerFormat(encoding: EncodingFormat): AnswerFormat {
  const never = (): never => {
    throw new Error('embeddings are not streamed');
  };
  return {
    newId: () => `emb-${randomBytes(12).toString('base64url')}`,
    body: (answer) => ({
      object: 'list',
      data: (answer.embeddings ?? []).map((vector, index) => ({
        object: 'embedding',
        index,
        embedding: encoding === 'base64' ? base64Floats(vector) : vector,
      })),
      model: answer.model,
      usage: { prompt_tokens: answer.usage.promptTokens, total_tokens: answer.usage.promptTokens },
      cached: answer.cached,
    }),
    delta: never,
    end: never,
  };
}
