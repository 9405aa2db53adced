/** POST /v1/generate's answer: our own JSON body; SSE deltas `{id, model, delta}`, then the body with `done: true`. */
import type { Answer } from '../../contracts/answer';
import type { AnswerFormat, StreamState } from '../responses/answer-format';
import { generateResponse, generationId } from './generate-response';

function generateBody(answer: Answer, state: StreamState) {
  const result = { output: answer.output, finishReason: answer.finishReason, usage: answer.usage };
  return generateResponse(state.id, answer.model, result, answer.cached);
}

/** POST /v1/generate: our own JSON body; SSE deltas `{id, model, delta}`, then the body with `done: true`. */
export const GENERATE_FORMAT: AnswerFormat = {
  newId: generationId,
  body: generateBody,
  delta: (text, model, state) => [{ id: state.id, model, delta: text }],
  end: (answer, state) => [{ ...generateBody(answer, state), done: true }],
};
