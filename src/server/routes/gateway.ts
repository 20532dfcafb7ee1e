import type { FastifyInstance, FastifyReply } from 'fastify';
import { chatCompletion } from '../../batch/output-line.js';
import {
  completionChunk,
  finishReasonToChat,
  reasoningOfAnswer,
  errorBody,
  openAiUsage,
  requestFromChatBody,
  toolCallsToChat,
  type ChatCompletionUsage,
} from '../../openai/wire.js';
import type { FanoutEngine } from '../../create-engine.js';
import { isTerminal } from '../../contracts/task-state.js';
import { addUsage, ZERO_USAGE, type TokenLogprob, type ToolCallDelta, type Usage } from '../../contracts/types.js';
import { ValidationError } from '../../contracts/errors.js';
import type { TaskHandle } from '../../core/engine-options.js';
import type { TaskStatus } from '../../core/task.js';
import { isEnd } from '../../core/events.js';
import { estimateInputTokens } from '../../limits/estimate.js';
import { send } from '../http-errors.js';
import { SHUTTING_DOWN } from '../shutting-down.js';
import type { QuotaDecision } from '../tenant-quota.js';
import type { ServerParts } from './parts.js';

/** The OpenAI-compatible gateway: /v1/models and /v1/chat/completions, plain or streamed, with each tenant's quota answered at once. */
export function registerGatewayRoutes(app: FastifyInstance, parts: ServerParts): void {
  const { engine, options, holdOpen, untilEnd, quota, ending } = parts;
  app.get('/v1/models', async () => ({
    object: 'list',
    data: (options.models ?? []).map((id) => ({ id, object: 'model', created: 0, owned_by: id.split(':')[0] })),
  }));

  app.post('/v1/chat/completions', async (request, reply) => {
    const { includeUsage, choices, ...task } = requestFromChatBody(request.body, {
      defaultProvider: options.defaultProvider,
    });
    if (choices > 1 && task.stream)
      return send(
        reply,
        new ValidationError('invalid_request', ['n: more than one choice is not streamed; ask without stream']),
      );
    holdOpen(request, reply);
    let settle: ((usage?: Usage) => void) | undefined;
    if (quota) {
      let decision: QuotaDecision;
      try {
        decision = await quota.admit(request.tenant, {
          inputTokens: estimateInputTokens(task) * choices,
          outputTokens: (task.maxTokens ?? 0) * choices,
        });
      } catch (error) {
        return send(reply, error);
      }
      if (!decision.allowed) {
        const kind = decision.dimension;
        return reply
          .code(429)
          .headers({
            'retry-after': String(Math.ceil(decision.retryAfterMs / 1000)),
            'retry-after-ms': String(decision.retryAfterMs),
            [`x-ratelimit-limit-${kind}`]: String(decision.limit),
            [`x-ratelimit-remaining-${kind}`]: String(decision.remaining),
            [`x-ratelimit-reset-${kind}`]: `${(decision.resetMs / 1000).toFixed(3)}s`,
          })
          .send(
            errorBody(
              'rate_limit_exceeded',
              `${kind} rate limit reached for tenant ${request.tenant}; try again in ${(decision.retryAfterMs / 1000).toFixed(3)}s`,
              kind,
            ),
          );
      }
      settle = decision.settle;
    }
    // Not kept in the store: the client waits on this connection, and after a restart nobody would.
    // n choices are n calls, each charged; none answered from another (no cache or single-flight among them).
    const submitted = choices === 1 ? task : { ...task, cache: false };
    const handles = Array.from({ length: choices }, () =>
      engine.submit(
        { ...submitted, tenant: request.tenant },
        { durable: false, tenantCharged: quota?.sharesEngineLimits === true },
      ),
    );
    const [handle] = handles as [TaskHandle, ...TaskHandle[]];
    // The tenant is charged what the calls really used, once they have ended; an answer from the cache costs no tokens.
    if (settle) void settleWhenEnded(handles, settle);
    if (!task.stream) {
      for (const each of handles)
        if ((await untilEnd(each)) === 'ending')
          return reply.code(503).header('retry-after', '5').send(errorBody(SHUTTING_DOWN.code, SHUTTING_DOWN.message));
      try {
        await Promise.all(handles.map((each) => each.result()));
      } catch (error) {
        for (const each of handles) each.cancel();
        return send(reply, error);
      }
      const [first, ...rest] = handles.map((each) => each.status());
      return reply.send(chatCompletion(first as TaskStatus, ...rest));
    }
    return streamCompletion(engine, handle.id, reply, { includeUsage, signal: ending.signal });
  });
}

/** A piece of a tool call as OpenAI streams it: index, then id, type and name once, then pieces of the arguments. */
function toolCallChunk(piece: ToolCallDelta): Record<string, unknown> {
  const fn: Record<string, string> = {};
  if (piece.name !== undefined) fn.name = piece.name;
  if (piece.arguments !== undefined) fn.arguments = piece.arguments;
  return {
    index: piece.index,
    ...(piece.id !== undefined ? { id: piece.id, type: 'function' } : {}),
    ...(piece.name !== undefined || piece.arguments !== undefined ? { function: fn } : {}),
  };
}

/** Charges the tenant what the calls used, once every one has ended. */
async function settleWhenEnded(handles: readonly TaskHandle[], settle: (usage?: Usage) => void): Promise<void> {
  let usage: Usage = ZERO_USAGE;
  for (const handle of handles) {
    const used = await handle.result().then(
      (result) => (result.cache ? ZERO_USAGE : result.usage),
      () => handle.status().usage ?? ZERO_USAGE,
    );
    usage = addUsage(usage, used);
  }
  settle(usage);
}

/**
 * Streams a task's deltas as OpenAI `chat.completion.chunk` events. A failed
 * attempt before the first delta is retried unseen; once text has gone out,
 * a failure ends the stream with an error event (the text cannot be taken back).
 */
async function streamCompletion(
  engine: FanoutEngine,
  id: string,
  reply: FastifyReply,
  options: { includeUsage: boolean; signal: AbortSignal },
): Promise<void> {
  const { includeUsage, signal } = options;
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const created = Math.floor(engine.clock.now() / 1000);
  const model = engine.status(id)?.model ?? '';
  const stream = { id, created, model };
  const chunk = (
    delta: Record<string, unknown>,
    finish: string | null,
    usage?: ChatCompletionUsage,
    logprobs?: TokenLogprob[],
  ): string => completionChunk(stream, delta, finish, usage, logprobs);
  // The client went away before the end: stop paying for an answer nobody reads.
  out.on('close', () => {
    if (!out.writableEnded) engine.cancel(id);
  });
  let sent = false;
  let toolsSent = false;
  let reasoningSent = false;
  const events = engine.events({
    taskIds: [id],
    until: isEnd,
    signal,
  });
  const current = engine.status(id);
  if (current && isTerminal(current.state)) await events.return?.();
  out.write(chunk({ role: 'assistant', content: '' }, null));
  for await (const event of events) {
    if (event.type === 'task-delta' && event.toolCall) {
      sent = true;
      toolsSent = true;
      out.write(chunk({ tool_calls: [toolCallChunk(event.toolCall)] }, null));
    } else if (event.type === 'task-delta' && event.reasoning) {
      reasoningSent = true;
      out.write(chunk({ reasoning_content: event.reasoning }, null));
    } else if (event.type === 'task-delta' && (event.delta || event.logprobs)) {
      sent = true;
      out.write(chunk({ content: event.delta }, null, undefined, event.logprobs));
    } else if (event.type === 'attempt-failed' && sent) {
      engine.cancel(id);
    }
  }
  const status = engine.status(id);
  if (status?.state === 'completed' && status.result) {
    const { text, toolCalls, refusal, reasoning } = status.result;
    // Reasoning not told as it came is told whole; its blocks, with their signatures, always at the end.
    if (reasoning?.length) {
      const { reasoning_content, thinking_blocks } = reasoningOfAnswer(reasoning);
      out.write(chunk(reasoningSent ? { thinking_blocks } : { reasoning_content, thinking_blocks }, null));
    }
    if (!sent && text) out.write(chunk({ content: text }, null, undefined, status.result.logprobs));
    if (refusal) out.write(chunk({ refusal }, null));
    // Tool calls not told as they came (an answer from the cache, a provider that does not stream them) are told whole.
    if (toolCalls?.length && !toolsSent)
      out.write(
        chunk({ tool_calls: toolCalls.map((call, index) => ({ index, ...toolCallsToChat([call])[0] })) }, null),
      );
    out.write(chunk({}, finishReasonToChat(status.result.finishReason)));
    if (includeUsage) out.write(chunk({}, null, openAiUsage(status.result.usage)));
  } else {
    const error =
      signal.aborted && status && !isTerminal(status.state)
        ? SHUTTING_DOWN
        : (status?.error ?? { code: 'cancelled', message: 'the stream was cut short after text had been sent' });
    out.write(`data: ${JSON.stringify(errorBody(error.code, error.message))}\n\n`);
  }
  out.end('data: [DONE]\n\n');
}
