/**
 * OpenAI Responses requests → the gateway's chat GenerationInput, so a response is served by
 * the same pipeline as a chat completion (and shares its cache entries and bills).
 *
 * - `instructions` become the first system message (never carried over from a previous
 *   response, as OpenAI documents); the stored conversation of `previous_response_id` follows,
 *   then this request's input: so the history is part of the cache key like any message.
 * - Input items: messages (`input_text` / `output_text` parts; `developer` is `system`),
 *   `function_call` (consecutive calls join one assistant turn, as chat expects them) and
 *   `function_call_output` (a tool message); `reasoning` items that agents send back are
 *   dropped (no backend takes encrypted reasoning). Images, files and audio are a 400.
 * - Tools: function tools only; hosted tools (web or file search, computer use, MCP, code
 *   interpreter, image generation, shells) are a 400 naming the tool.
 * - `text.format` json_schema / json_object become the chat response format.
 */
import { invalidRequest } from '../../contracts/app-error';
import type { ChatMessage, ResponseFormat, ToolChoice, ToolDefinition, ToolsParams } from '../../contracts/generation';
import type { FieldNames, GenerationInput } from '../../modules/generation/request-resolver';
import {
  arrayAt,
  isObject,
  type JsonObject,
  objectAt,
  onlyKeys,
  optionalStringAt,
  stringAt,
} from '../core/json-fields';
import { MAX_CONTENT_PARTS, REASONING_EFFORTS } from './dto/chat-request.dto';
import { FUNCTION_NAME } from './dto/chat-tools.dto';
import type { ResponsesRequestDto } from './dto/responses-request.dto';
import { toolsParams } from './openai-input';

export const RESPONSES_FIELDS: FieldNames = { prompt: 'input', maxNewTokens: 'max_output_tokens' };

const ROLES: Record<string, ChatMessage['role']> = {
  user: 'user',
  assistant: 'assistant',
  system: 'system',
  developer: 'system',
};

const TEXT_PARTS = ['input_text', 'output_text', 'text'];

function partsText(content: unknown, at: string): string {
  if (typeof content === 'string') return content;
  const parts = arrayAt(content, at, MAX_CONTENT_PARTS);
  return parts
    .map((raw, i) => {
      const part = objectAt(raw, `${at}.${i}`);
      if (part.type === 'refusal') return stringAt(part, 'refusal', `${at}.${i}`);
      if (!TEXT_PARTS.includes(part.type as string)) {
        throw invalidRequest(`"${String(part.type)}" content is not supported here: only text`, `${at}.${i}.type`);
      }
      // `parsed`: what the SDK's parse helpers add to output they hand back as input.
      onlyKeys(part, ['type', 'text', 'annotations', 'logprobs', 'parsed'], `${at}.${i}`);
      return stringAt(part, 'text', `${at}.${i}`);
    })
    .join('\n');
}

/** Appends one input item to the conversation. */
function addItem(messages: ChatMessage[], raw: unknown, index: number): void {
  const at = `input.${index}`;
  const item = objectAt(raw, at);
  const type = item.type ?? 'message';
  if (type === 'message') {
    onlyKeys(item, ['type', 'role', 'content', 'id', 'status'], at);
    const role = ROLES[item.role as string];
    if (!role) throw invalidRequest('role must be user, assistant, system or developer', `${at}.role`);
    messages.push({ role, content: partsText(item.content, `${at}.content`) });
    return;
  }
  if (type === 'function_call') {
    onlyKeys(item, ['type', 'call_id', 'name', 'arguments', 'id', 'status', 'parsed_arguments'], at);
    const call = {
      id: stringAt(item, 'call_id', at, { max: 256 }),
      name: stringAt(item, 'name', at, { max: 128 }),
      arguments: stringAt(item, 'arguments', at),
    };
    const last = messages.at(-1);
    // Calls made in one turn (and the text before them) are one assistant message in chat.
    if (last?.role === 'assistant') last.toolCalls = [...(last.toolCalls ?? []), call];
    else messages.push({ role: 'assistant', content: '', toolCalls: [call] });
    return;
  }
  if (type === 'function_call_output') {
    onlyKeys(item, ['type', 'call_id', 'output', 'id', 'status'], at);
    const output = item.output;
    messages.push({
      role: 'tool',
      toolCallId: stringAt(item, 'call_id', at, { max: 256 }),
      content: typeof output === 'string' ? output : partsText(output, `${at}.output`),
    });
    return;
  }
  if (type === 'reasoning') return;
  throw invalidRequest(`input items of type "${String(type)}" are not supported`, `${at}.type`);
}

function inputMessages(input: ResponsesRequestDto['input']): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  const messages: ChatMessage[] = [];
  input.forEach((item, i) => addItem(messages, item, i));
  return messages;
}

function toolOf(raw: JsonObject, index: number): ToolDefinition {
  const at = `tools.${index}`;
  if (raw.type !== 'function') {
    const name = typeof raw.name === 'string' ? `"${raw.name}" ` : '';
    throw invalidRequest(
      `tool ${name}of type "${String(raw.type)}" is not supported: the gateway runs no hosted tools, only function tools`,
      `${at}.type`,
    );
  }
  onlyKeys(raw, ['type', 'name', 'description', 'parameters', 'strict'], at);
  const name = stringAt(raw, 'name', at);
  if (!FUNCTION_NAME.test(name))
    throw invalidRequest('function name must be 1-64 letters, digits, _ or -', `${at}.name`);
  const description = optionalStringAt(raw, 'description', at);
  return {
    name,
    ...(description ? { description } : {}),
    ...(raw.parameters != null ? { parameters: objectAt(raw.parameters, `${at}.parameters`) } : {}),
    ...(typeof raw.strict === 'boolean' ? { strict: raw.strict } : {}),
  };
}

function toolChoiceOf(value: ResponsesRequestDto['tool_choice']): ToolChoice {
  if (value === undefined || value === null) return 'auto';
  if (value === 'auto' || value === 'none' || value === 'required') return value;
  if (isObject(value) && value.type === 'function') {
    onlyKeys(value, ['type', 'name'], 'tool_choice');
    return { name: stringAt(value, 'name', 'tool_choice') };
  }
  throw invalidRequest('tool_choice must be none, auto, required or {"type": "function", "name"}', 'tool_choice');
}

function toolsOf(dto: ResponsesRequestDto): ToolsParams | undefined {
  const tools = (dto.tools ?? []).map(toolOf);
  return toolsParams(tools, toolChoiceOf(dto.tool_choice), dto.parallel_tool_calls ?? true, (i) => `tools.${i}.name`);
}

function formatOf(text: ResponsesRequestDto['text']): ResponseFormat | undefined {
  if (text === undefined || text === null) return undefined;
  onlyKeys(text, ['format', 'verbosity'], 'text');
  if (text.format === undefined || text.format === null) return undefined;
  const format = objectAt(text.format, 'text.format');
  if (format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type !== 'json_schema') {
    throw invalidRequest('text.format.type must be text, json_object or json_schema', 'text.format.type');
  }
  onlyKeys(format, ['type', 'name', 'schema', 'strict', 'description'], 'text.format');
  return {
    type: 'json_schema',
    name: stringAt(format, 'name', 'text.format', { max: 64 }),
    schema: objectAt(format.schema, 'text.format.schema'),
    strict: format.strict === true,
  };
}

export interface ResponsesRequest {
  input: GenerationInput;
  /** The conversation without `instructions` (what a stored response keeps for continuing). */
  conversation: ChatMessage[];
}

/** `history`: the stored conversation of `previous_response_id` (empty without one). */
export function responsesInput(dto: ResponsesRequestDto, history: ChatMessage[]): ResponsesRequest {
  const conversation = [...history, ...inputMessages(dto.input)];
  if (!conversation.some((message) => message.role !== 'system')) {
    throw invalidRequest('input must carry some content', 'input');
  }
  const instructions: ChatMessage[] = dto.instructions ? [{ role: 'system', content: dto.instructions }] : [];
  const tools = toolsOf(dto);
  const responseFormat = formatOf(dto.text);
  const effort = reasoningEffortOf(dto.reasoning);
  return {
    conversation,
    input: {
      model: dto.model,
      prompt: '',
      messages: [...instructions, ...conversation],
      maxNewTokens: dto.max_output_tokens,
      lowerMaxNewTokens: true,
      temperature: dto.temperature,
      topP: dto.top_p,
      stream: dto.stream,
      ...(tools ? { tools } : {}),
      ...(responseFormat ? { responseFormat } : {}),
      ...(effort ? { extra: { reasoningEffort: effort } } : {}),
    },
  };
}

/** `reasoning.effort` (Codex sends it): reasoning_effort for backends that take it; `summary` is accepted. */
function reasoningEffortOf(reasoning: ResponsesRequestDto['reasoning']): string | undefined {
  if (reasoning === undefined || reasoning === null) return undefined;
  onlyKeys(reasoning, ['effort', 'summary', 'generate_summary'], 'reasoning');
  const effort = reasoning.effort;
  if (effort === undefined || effort === null) return undefined;
  if (!(REASONING_EFFORTS as readonly unknown[]).includes(effort)) {
    throw invalidRequest(`reasoning.effort must be one of ${REASONING_EFFORTS.join(', ')}`, 'reasoning.effort');
  }
  return effort as string;
}
