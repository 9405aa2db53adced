/**
 * Anthropic's Messages API: POST /v1/messages (JSON, or Anthropic's typed stream) and POST
 * /v1/messages/count_tokens, served by the chat pipeline (messages-input.ts translates).
 * `anthropic-version` and `anthropic-beta` are accepted whatever they say, and so is Claude
 * Code's `?beta=true`; `x-api-key` is our key header already. Errors, guards' included, leave in
 * Anthropic's shape (AnthropicExceptionFilter).
 */
import { Body, Controller, HttpCode, Post, Req, Res, UseFilters } from '@nestjs/common';
import type { Response } from 'express';
import { promptText } from '../../contracts/generation';
import { wordTokens } from '../../contracts/token-estimate';
import { RequestResolver } from '../../modules/generation/request-resolver';
import type { AppRequest } from '../core/app-request';
import { GenerationResponder } from '../responses/generation-responder';
import { AnthropicExceptionFilter } from './anthropic-errors';
import { messagesAnswerFormat } from './messages-format';
import { MESSAGES_FIELDS, messagesConversation, messagesInput } from './messages-input';
import { CountTokensRequestDto, MessagesRequestDto } from './messages.dto';

@Controller('v1/messages')
@UseFilters(AnthropicExceptionFilter)
export class MessagesController {
  constructor(
    private readonly resolver: RequestResolver,
    private readonly responder: GenerationResponder,
  ) {}

  @Post()
  @HttpCode(200)
  create(@Body() dto: MessagesRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    const request = this.resolver.resolve(messagesInput(dto), req.ctx.apiKey!, MESSAGES_FIELDS);
    return this.responder.serve(request, messagesAnswerFormat(), req, res);
  }

  /**
   * The gateway's own estimate of the prompt (the count it bills by when a backend reports
   * none), tool definitions included: remote backends offer no tokenizer of Anthropic's shape.
   */
  @Post('count_tokens')
  @HttpCode(200)
  countTokens(@Body() dto: CountTokensRequestDto, @Req() req: AppRequest): { input_tokens: number } {
    this.resolver.modelFor(dto.model, req.ctx.apiKey!, 'chat');
    const { messages, tools } = messagesConversation(dto);
    const toolText = (tools?.tools ?? []).map((tool) => JSON.stringify(tool)).join('\n');
    const text = promptText({
      prompt: '',
      messages,
      maxNewTokens: 0,
      temperature: 0,
      topP: 1,
      topK: 0,
      stop: [],
      seed: null,
    });
    return { input_tokens: wordTokens(`${text}\n${toolText}`) };
  }
}
