/** OpenAI request bodies → the gateway's GenerationInput (the same pipeline as /v1/generate). */
import { invalidRequest } from '../../contracts/app-error';
import { samplingInput } from '../generate/sampling-fields.dto';
import { extraSamplingInput } from './dto/openai-fields';
import type { FieldNames, GenerationInput } from '../../modules/generation/request-resolver';
import type { ChatMessage, ResponseFormat, ToolChoice, ToolDefinition, ToolsParams } from '../../contracts/generation';
import type { ResponseFormatDto, ToolChoiceValue } from './dto/chat-tools.dto';
import type { ChatMessageDto, ChatRequestDto } from './dto/chat-request.dto';
import type { CompletionRequestDto } from './dto/completion-request.dto';

export const COMPLETION_FIELDS: FieldNames = { prompt: 'prompt', maxNewTokens: 'max_tokens' };

export function completionInput(dto: CompletionRequestDto): GenerationInput {
  return { ...samplingInput(dto), prompt: dto.prompt, maxNewTokens: dto.max_tokens, extra: extraSamplingInput(dto) };
}

/**
 * Text parts are joined with newlines; `developer` is OpenAI's newer name for `system`. Tool
 * calls belong to assistant messages and `tool_call_id` to tool messages only.
 */
function toChatMessage(message: ChatMessageDto, index: number): ChatMessage {
  const at = `messages.${index}`;
  const { content } = message;
  const text =
    content === null || content === undefined
      ? ''
      : typeof content === 'string'
        ? content
        : content.map((part) => part.text).join('\n');
  const role = message.role === 'developer' ? 'system' : message.role;
  const calls = message.tool_calls ?? null;
  if (calls !== null && role !== 'assistant')
    throw invalidRequest('only assistant messages carry tool_calls', `${at}.tool_calls`);
  if (role === 'tool') {
    if (!message.tool_call_id)
      throw invalidRequest('a tool message needs the tool_call_id it answers', `${at}.tool_call_id`);
    return { role, content: text, toolCallId: message.tool_call_id };
  }
  if (message.tool_call_id) throw invalidRequest('only tool messages carry tool_call_id', `${at}.tool_call_id`);
  if (calls !== null && calls.length > 0) {
    const toolCalls = calls.map((call) => ({
      id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
    }));
    return { role: 'assistant', content: text, toolCalls };
  }
  return { role, content: text };
}

function toolChoiceOf(value: ToolChoiceValue | null | undefined): ToolChoice {
  if (value === null || value === undefined) return 'auto';
  return typeof value === 'string' ? value : { name: value.function.name };
}

/**
 * Tools offered in any API's shape, once translated: undefined when there are none (then only
 * `none` or `auto` may be chosen); names must be unique and a forced tool must be among them.
 * `nameAt(i)` is the request field of tool i's name, `choiceAt` that of the choice.
 */
export function toolsParams(
  tools: ToolDefinition[],
  choice: ToolChoice,
  parallel: boolean,
  nameAt: (index: number) => string,
  choiceAt = 'tool_choice',
): ToolsParams | undefined {
  if (tools.length === 0) {
    if (choice !== 'none' && choice !== 'auto') throw invalidRequest('tool_choice needs tools', choiceAt);
    return undefined;
  }
  const names = new Set<string>();
  for (const [i, tool] of tools.entries()) {
    if (names.has(tool.name)) throw invalidRequest(`duplicate function name "${tool.name}"`, nameAt(i));
    names.add(tool.name);
  }
  if (typeof choice === 'object' && !names.has(choice.name)) {
    throw invalidRequest(`tool_choice names no tool of this request ("${choice.name}")`, choiceAt);
  }
  return { tools, choice, parallel };
}

/** The request's tools, or undefined when it offers none. */
function toolsOf(dto: ChatRequestDto): ToolsParams | undefined {
  const tools = (dto.tools ?? []).map(({ function: fn }) => ({
    name: fn.name,
    ...(fn.description ? { description: fn.description } : {}),
    ...(fn.parameters ? { parameters: fn.parameters } : {}),
    ...(fn.strict != null ? { strict: fn.strict } : {}),
  }));
  return toolsParams(
    tools,
    toolChoiceOf(dto.tool_choice),
    dto.parallel_tool_calls ?? true,
    (i) => `tools.${i}.function.name`,
  );
}

/** `text` (the default) is no constraint at all, so it is dropped. */
function responseFormatOf(dto: ResponseFormatDto | null | undefined): ResponseFormat | undefined {
  if (!dto || dto.type === 'text') {
    if (dto?.json_schema)
      throw invalidRequest('json_schema goes with type "json_schema"', 'response_format.json_schema');
    return undefined;
  }
  if (dto.type === 'json_object') {
    if (dto.json_schema)
      throw invalidRequest('json_schema goes with type "json_schema"', 'response_format.json_schema');
    return { type: 'json_object' };
  }
  const spec = dto.json_schema;
  if (!spec)
    throw invalidRequest('response_format of type "json_schema" needs json_schema', 'response_format.json_schema');
  // A json_schema without a schema constrains no more than json_object (OpenAI allows it).
  if (!spec.schema) return { type: 'json_object' };
  return { type: 'json_schema', name: spec.name, schema: spec.schema, strict: spec.strict ?? false };
}

export function chatInput(dto: ChatRequestDto): { input: GenerationInput; fields: FieldNames } {
  const usesNewName = dto.max_completion_tokens !== undefined && dto.max_completion_tokens !== null;
  const tools = toolsOf(dto);
  const responseFormat = responseFormatOf(dto.response_format);
  return {
    input: {
      ...samplingInput(dto),
      prompt: '',
      messages: dto.messages.map(toChatMessage),
      maxNewTokens: usesNewName ? dto.max_completion_tokens : dto.max_tokens,
      ...(tools ? { tools } : {}),
      ...(responseFormat ? { responseFormat } : {}),
      extra: extraSamplingInput(dto),
    },
    fields: { prompt: 'messages', maxNewTokens: usesNewName ? 'max_completion_tokens' : 'max_tokens' },
  };
}
