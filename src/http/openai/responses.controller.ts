/**
 * OpenAI's Responses API: POST /v1/responses (JSON, or the typed stream), GET and DELETE
 * /v1/responses/{id}. A response is a chat generation (responses-input.ts translates) served
 * by the same pipeline; with `store` (the default, while RESPONSES_STORE_DAYS > 0) it is kept
 * with its conversation for `previous_response_id`, for the key that created it only.
 */
import { Body, Controller, Delete, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { Answer } from '../../contracts/answer';
import { AppError, invalidRequest } from '../../contracts/app-error';
import type { ChatMessage } from '../../contracts/generation';
import { RequestResolver } from '../../modules/generation/request-resolver';
import { ResponseStore } from '../../modules/stored-responses/response-store';
import type { AppRequest } from '../core/app-request';
import { GenerationResponder } from '../responses/generation-responder';
import { ResponsesRequestDto } from './dto/responses-request.dto';
import { RESPONSES_FIELDS, responsesInput } from './responses-input';
import { type ResponseEcho, responsesAnswerFormat } from './responses-format';

function notFound(id: string, param: string | null = null): AppError {
  return new AppError('not_found', `no response with id "${id}"`, { param });
}

/** What the model said, as the conversation's next turn (what a continuation sends back). */
function assistantTurn(answer: Answer): ChatMessage {
  return {
    role: 'assistant',
    content: answer.output,
    ...(answer.toolCalls?.length ? { toolCalls: answer.toolCalls } : {}),
  };
}

/** The request fields a response object repeats, with OpenAI's defaults. */
function echoOf(dto: ResponsesRequestDto, store: boolean): ResponseEcho {
  return {
    instructions: dto.instructions ?? null,
    max_output_tokens: dto.max_output_tokens ?? null,
    metadata: dto.metadata ?? {},
    parallel_tool_calls: dto.parallel_tool_calls ?? true,
    previous_response_id: dto.previous_response_id ?? null,
    reasoning: { effort: dto.reasoning?.effort ?? null, summary: dto.reasoning?.summary ?? null },
    store,
    temperature: dto.temperature ?? 1,
    text: { format: { type: 'text' }, ...dto.text },
    tool_choice: dto.tool_choice ?? 'auto',
    tools: dto.tools ?? [],
    top_p: dto.top_p ?? 1,
    truncation: dto.truncation ?? 'disabled',
    user: dto.user ?? null,
  };
}

@Controller('v1/responses')
export class ResponsesController {
  constructor(
    private readonly resolver: RequestResolver,
    private readonly responder: GenerationResponder,
    private readonly store: ResponseStore,
  ) {}

  @Post()
  @HttpCode(200)
  async create(@Body() dto: ResponsesRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    const key = req.ctx.apiKey!;
    const history = await this.history(dto.previous_response_id, key.id);
    const { input, conversation } = responsesInput(dto, history);
    const request = this.resolver.resolve(input, key, RESPONSES_FIELDS);
    const store = dto.store !== false && this.store.enabled;
    const save = async (response: Record<string, unknown>, answer: Answer) => {
      try {
        await this.store.save(response.id as string, key.id, {
          response,
          conversation: [...conversation, assistantTurn(answer)],
        });
        return response;
      } catch {
        // The answer is served (and billed) anyway: it says it was not kept rather than failing.
        return { ...response, store: false };
      }
    };
    const format = responsesAnswerFormat(request.model.name, echoOf(dto, store), store ? save : undefined);
    return this.responder.serve(request, format, req, res);
  }

  @Get(':id')
  async retrieve(@Param('id') id: string, @Req() req: AppRequest): Promise<Record<string, unknown>> {
    const stored = await this.store.find(id, req.ctx.apiKey!.id);
    if (!stored) throw notFound(id);
    return stored.response;
  }

  @Delete(':id')
  @HttpCode(200)
  async remove(@Param('id') id: string, @Req() req: AppRequest): Promise<Record<string, unknown>> {
    if (!(await this.store.remove(id, req.ctx.apiKey!.id))) throw notFound(id);
    return { id, object: 'response.deleted', deleted: true };
  }

  /** The stored conversation `previous_response_id` continues (404 when the key has none by that id). */
  private async history(previous: string | null | undefined, keyId: string): Promise<ChatMessage[]> {
    if (!previous) return [];
    if (!this.store.enabled) {
      throw invalidRequest(
        'previous_response_id needs stored responses (RESPONSES_STORE_DAYS is 0)',
        'previous_response_id',
      );
    }
    const stored = await this.store.find(previous, keyId);
    if (!stored) throw notFound(previous, 'previous_response_id');
    return stored.conversation;
  }
}
