/**
 * Ollama's wire format (ollama.provider.ts has the whole description): what differs between
 * `/api/generate` and `/api/chat`, our messages with their tool calls and results, tools and
 * structured outputs in Ollama's shapes.
 */
import { chatMessagesOf } from '../../contracts/generation';
import type { ChatMessage, GenerationParams } from '../../contracts/generation';
import { isRecord, unparseable } from './upstream-body';
import type { JsonRecord } from './upstream-body';

/** What differs between `/api/generate` and `/api/chat`. */
export interface OllamaEndpoint {
  path: '/api/generate' | '/api/chat';
  /** The text of a line (undefined when the line has none); throws on a malformed one. */
  text(line: JsonRecord): string | undefined;
}

export const GENERATE_ENDPOINT: OllamaEndpoint = {
  path: '/api/generate',
  text: (line) => {
    if (line.response !== undefined && typeof line.response !== 'string') throw unparseable();
    return line.response;
  },
};

export const CHAT_ENDPOINT: OllamaEndpoint = {
  path: '/api/chat',
  text: (line) => {
    if (line.message === undefined) return undefined;
    if (!isRecord(line.message)) throw unparseable();
    const { content } = line.message;
    if (content !== undefined && typeof content !== 'string') throw unparseable();
    return content;
  },
};

/** A call's arguments as the JSON object Ollama wants. */
export function argumentsObject(text: string): unknown {
  try {
    const value = JSON.parse(text) as unknown;
    return isRecord(value) ? value : {};
  } catch {
    return {};
  }
}

/** Our messages in Ollama's chat shape (see the file comment). */
export function wireMessages(messages: ChatMessage[]): JsonRecord[] {
  const names = new Map<string, string>();
  return messages.map((message) => {
    if (message.role === 'tool') {
      const name = names.get(message.toolCallId ?? '');
      return { role: 'tool', content: message.content, ...(name ? { tool_name: name } : {}) };
    }
    if (message.toolCalls?.length) {
      for (const call of message.toolCalls) names.set(call.id, call.name);
      return {
        role: 'assistant',
        content: message.content,
        tool_calls: message.toolCalls.map((call) => ({
          function: { name: call.name, arguments: argumentsObject(call.arguments) },
        })),
      };
    }
    return { role: message.role, content: message.content };
  });
}

/** `tools` and `format`, when the request has them (see the file comment). */
export function structureFields(params: GenerationParams): JsonRecord {
  const fields: JsonRecord = {};
  if (params.tools && params.tools.choice !== 'none') {
    const { tools, choice } = params.tools;
    const sent = typeof choice === 'object' ? tools.filter((tool) => tool.name === choice.name) : tools;
    fields.tools = sent.map(({ name, description, parameters }) => ({
      type: 'function',
      function: {
        name,
        ...(description ? { description } : {}),
        parameters: parameters ?? { type: 'object', properties: {} },
      },
    }));
  }
  const format = params.responseFormat;
  if (format) fields.format = format.type === 'json_schema' ? format.schema : 'json';
  return fields;
}

export function endpointFor(params: GenerationParams): OllamaEndpoint {
  return chatMessagesOf(params) ? CHAT_ENDPOINT : GENERATE_ENDPOINT;
}
