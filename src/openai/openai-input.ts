/** OpenAI request bodies → the gateway's GenerationInput (the same pipeline as /v1/generate). */
import { samplingInput } from '../generation/dto/sampling-fields.dto';
import type { FieldNames, GenerationInput } from '../generation/generation.service';
import type { ChatMessage } from '../domain/generation';
import type { ChatMessageDto, ChatRequestDto } from './dto/chat-request.dto';
import type { CompletionRequestDto } from './dto/completion-request.dto';

export const COMPLETION_FIELDS: FieldNames = { prompt: 'prompt', maxNewTokens: 'max_tokens' };

export function completionInput(dto: CompletionRequestDto): GenerationInput {
  return { ...samplingInput(dto), prompt: dto.prompt, maxNewTokens: dto.max_tokens };
}

/** Text parts are joined with newlines; `developer` is OpenAI's newer name for `system`. */
function toChatMessage(message: ChatMessageDto): ChatMessage {
  const content =
    typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join('\n');
  return { role: message.role === 'developer' ? 'system' : message.role, content };
}

export function chatInput(dto: ChatRequestDto): { input: GenerationInput; fields: FieldNames } {
  const usesNewName = dto.max_completion_tokens !== undefined && dto.max_completion_tokens !== null;
  return {
    input: {
      ...samplingInput(dto),
      prompt: '',
      messages: dto.messages.map(toChatMessage),
      maxNewTokens: usesNewName ? dto.max_completion_tokens : dto.max_tokens,
    },
    fields: { prompt: 'messages', maxNewTokens: usesNewName ? 'max_completion_tokens' : 'max_tokens' },
  };
}
