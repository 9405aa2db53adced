/**
 * Anthropic Messages requests → the gateway's chat GenerationInput, so a message is served by
 * the same pipeline as a chat completion (and shares its cache entries and bills).
 *
 * - `system` (a string or text blocks) becomes the first system message.
 * - A user turn's `tool_result` blocks become tool messages (first, as chat backends expect
 *   them right after the calls), its text blocks one user message; an assistant turn's text
 *   blocks its content and its `tool_use` blocks its tool calls (input → JSON text).
 * - `thinking` and `redacted_thinking` blocks that agents send back are dropped: the backends
 *   keep no reasoning state and take no Anthropic signatures.
 * - `image` and `document` blocks are a 400: no configured backend takes them on this route.
 * - Tools: custom tools (`name`, `description`, `input_schema`) become function tools; a typed
 *   Anthropic-hosted tool (web search, bash, text editor, computer use, code execution) is a
 *   400 naming it. `tool_choice` `auto` / `any` / `tool` / `none` map to chat's auto /
 *   required / that function / none; `disable_parallel_tool_use` to parallel_tool_calls false.
 * - `cache_control` anywhere is accepted and changes nothing (backends cache prefixes on their
 *   own and report the hits).
 */
import { invalidRequest } from '../../contracts/app-error';
import type { ChatMessage, ToolCall, ToolChoice, ToolDefinition, ToolsParams } from '../../contracts/generation';
import type { GenerationInput } from '../../modules/generation/request-resolver';
import { MAX_CONTENT_PARTS } from '../openai/dto/chat-request.dto';
import { toolsParams } from '../openai/openai-input';
import { arrayAt, type JsonObject, objectAt, onlyKeys, optionalStringAt, stringAt } from '../core/json-fields';
import type { CountTokensRequestDto, MessagesRequestDto } from './messages.dto';

/** Anthropic's rule for tool names. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/** Text blocks joined as one text (a system prompt, or a turn's text). */
function textOf(blocks: string[]): string {
  return blocks.join('\n\n');
}

/** A `tool_result` block's content: a string, or text blocks. */
function toolResultText(block: JsonObject, at: string): string {
  const { content } = block;
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  const parts = arrayAt(content, `${at}.content`, MAX_CONTENT_PARTS);
  return textOf(parts.map((part, i) => textBlock(objectAt(part, `${at}.content.${i}`), `${at}.content.${i}`)));
}

function textBlock(block: JsonObject, at: string): string {
  if (block.type !== 'text') {
    const what = typeof block.type === 'string' ? `"${block.type}" blocks are` : 'this block is';
    throw invalidRequest(`${what} not supported here: only text`, `${at}.type`);
  }
  onlyKeys(block, ['type', 'text', 'cache_control', 'citations'], at);
  return stringAt(block, 'text', at);
}

const UNSUPPORTED_BLOCKS: Record<string, string> = {
  image: 'image content is not supported: no configured backend takes images on this route',
  document: 'document content is not supported by this gateway',
  search_result: 'search_result content is not supported by this gateway',
};

function messageOf(raw: unknown, index: number): ChatMessage[] {
  const at = `messages.${index}`;
  const message = objectAt(raw, at);
  onlyKeys(message, ['role', 'content'], at);
  const { role, content } = message;
  if (role !== 'user' && role !== 'assistant') throw invalidRequest('role must be user or assistant', `${at}.role`);
  if (typeof content === 'string') return [{ role, content }];
  const blocks = arrayAt(content, `${at}.content`, MAX_CONTENT_PARTS);
  const texts: string[] = [];
  const calls: ToolCall[] = [];
  const results: ChatMessage[] = [];
  for (const [i, rawBlock] of blocks.entries()) {
    const blockAt = `${at}.content.${i}`;
    const block = objectAt(rawBlock, blockAt);
    const type = block.type;
    if (typeof type === 'string' && UNSUPPORTED_BLOCKS[type])
      throw invalidRequest(UNSUPPORTED_BLOCKS[type], `${blockAt}.type`);
    if (type === 'thinking' || type === 'redacted_thinking') continue;
    if (type === 'tool_use' && role === 'assistant') {
      onlyKeys(block, ['type', 'id', 'name', 'input', 'cache_control'], blockAt);
      calls.push({
        id: stringAt(block, 'id', blockAt, { max: 256 }),
        name: stringAt(block, 'name', blockAt, { max: 128 }),
        arguments: JSON.stringify(objectAt(block.input, `${blockAt}.input`)),
      });
    } else if (type === 'tool_result' && role === 'user') {
      onlyKeys(block, ['type', 'tool_use_id', 'content', 'is_error', 'cache_control'], blockAt);
      const text = toolResultText(block, blockAt);
      results.push({
        role: 'tool',
        toolCallId: stringAt(block, 'tool_use_id', blockAt, { max: 256 }),
        content: block.is_error === true ? `Error: ${text}` : text,
      });
    } else {
      texts.push(textBlock(block, blockAt));
    }
  }
  if (role === 'assistant') {
    return [{ role, content: textOf(texts), ...(calls.length > 0 ? { toolCalls: calls } : {}) }];
  }
  return texts.length > 0 ? [...results, { role, content: textOf(texts) }] : results;
}

function systemOf(system: CountTokensRequestDto['system']): ChatMessage[] {
  if (system === undefined || system === null) return [];
  const text = typeof system === 'string' ? system : textOf(system.map((block, i) => textBlock(block, `system.${i}`)));
  return text === '' ? [] : [{ role: 'system', content: text }];
}

function toolOf(raw: JsonObject, index: number): ToolDefinition {
  const at = `tools.${index}`;
  if (raw.type !== undefined && raw.type !== null && raw.type !== 'custom') {
    const name = typeof raw.name === 'string' ? raw.name : String(raw.type);
    throw invalidRequest(
      `tool "${name}" (${String(raw.type)}) is hosted by Anthropic: this gateway runs no tools`,
      `${at}.type`,
    );
  }
  onlyKeys(raw, ['type', 'name', 'description', 'input_schema', 'cache_control'], at);
  const name = stringAt(raw, 'name', at);
  if (!TOOL_NAME.test(name)) throw invalidRequest('tool name must be 1-128 letters, digits, _ or -', `${at}.name`);
  const description = optionalStringAt(raw, 'description', at);
  return {
    name,
    ...(description ? { description } : {}),
    parameters: objectAt(raw.input_schema, `${at}.input_schema`),
  };
}

function toolChoiceOf(raw: JsonObject | null | undefined): { choice: ToolChoice; parallel: boolean } {
  if (raw === undefined || raw === null) return { choice: 'auto', parallel: true };
  onlyKeys(raw, ['type', 'name', 'disable_parallel_tool_use'], 'tool_choice');
  const parallel = raw.disable_parallel_tool_use !== true;
  switch (raw.type) {
    case 'auto':
      return { choice: 'auto', parallel };
    case 'any':
      return { choice: 'required', parallel };
    case 'none':
      return { choice: 'none', parallel };
    case 'tool':
      return { choice: { name: stringAt(raw, 'name', 'tool_choice') }, parallel };
    default:
      throw invalidRequest('tool_choice.type must be auto, any, tool or none', 'tool_choice.type');
  }
}

function toolsOf(dto: CountTokensRequestDto): ToolsParams | undefined {
  const { choice, parallel } = toolChoiceOf(dto.tool_choice);
  return toolsParams((dto.tools ?? []).map(toolOf), choice, parallel, (i) => `tools.${i}.name`);
}

/** The conversation of a request (what count_tokens counts and a message request sends). */
export function messagesConversation(dto: CountTokensRequestDto): { messages: ChatMessage[]; tools?: ToolsParams } {
  const messages = [...systemOf(dto.system), ...dto.messages.flatMap(messageOf)];
  if (!messages.some((message) => message.role !== 'system')) {
    throw invalidRequest('messages must carry some content', 'messages');
  }
  const tools = toolsOf(dto);
  return { messages, ...(tools ? { tools } : {}) };
}

/** Anthropic's efforts above `high` are `high` for backends that know three levels. */
const EFFORTS: Record<string, string> = { low: 'low', medium: 'medium', high: 'high', xhigh: 'high', max: 'high' };

/** `output_config`: the reasoning effort and the JSON schema the answer must follow. */
function outputConfigOf(
  config: MessagesRequestDto['output_config'],
): Pick<GenerationInput, 'extra' | 'responseFormat'> {
  if (config === undefined || config === null) return {};
  onlyKeys(config, ['effort', 'format'], 'output_config');
  const out: Pick<GenerationInput, 'extra' | 'responseFormat'> = {};
  if (config.effort !== undefined && config.effort !== null) {
    const effort = EFFORTS[config.effort as string];
    if (!effort)
      throw invalidRequest('output_config.effort must be low, medium, high, xhigh or max', 'output_config.effort');
    out.extra = { reasoningEffort: effort };
  }
  if (config.format !== undefined && config.format !== null) {
    const format = objectAt(config.format, 'output_config.format');
    onlyKeys(format, ['type', 'schema'], 'output_config.format');
    if (format.type !== 'json_schema')
      throw invalidRequest('output_config.format.type must be json_schema', 'output_config.format.type');
    out.responseFormat = {
      type: 'json_schema',
      name: 'output',
      schema: objectAt(format.schema, 'output_config.format.schema'),
      strict: true,
    };
  }
  return out;
}

/** `thinking`: enabled or disabled (the chat template's switch); adaptive or absent: the model's default. */
function thinkingOf(thinking: MessagesRequestDto['thinking']): boolean | undefined {
  if (thinking === undefined || thinking === null) return undefined;
  if (thinking.type === 'enabled') return true;
  if (thinking.type === 'disabled') return false;
  if (thinking.type === 'adaptive') return undefined;
  throw invalidRequest('thinking.type must be enabled, disabled or adaptive', 'thinking.type');
}

export function messagesInput(dto: MessagesRequestDto): GenerationInput {
  const { messages, tools } = messagesConversation(dto);
  const output = outputConfigOf(dto.output_config);
  const thinking = thinkingOf(dto.thinking);
  const extra = { ...output.extra, ...(thinking === undefined ? {} : { thinking }) };
  return {
    ...output,
    extra,
    model: dto.model,
    prompt: '',
    messages,
    maxNewTokens: dto.max_tokens,
    lowerMaxNewTokens: true,
    temperature: dto.temperature,
    topP: dto.top_p,
    topK: dto.top_k,
    stop: dto.stop_sequences,
    stream: dto.stream,
    ...(tools ? { tools } : {}),
  };
}

export const MESSAGES_FIELDS = { prompt: 'messages', maxNewTokens: 'max_tokens' };
