// `stratos serve`: the real engine behind an OpenAI-compatible HTTP API (POST /v1/completions,
// streamed or not; GET /v1/models, /health, /metrics). One engine loop runs for the server's
// life on an online request source; HTTP input, output and client disconnects are handled
// between its steps (Engine.yieldEachStep), so a step never sees the scheduler change under it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Scheduler, SeqState } from '../../policy/index.js';
import { RealClock, type Clock } from '../clock.js';
import { Engine, type EngineObserver, type EngineRequest, type EngineStepRecord } from '../engine.js';
import { EngineError } from '../errors.js';
import type { ModelRunner } from '../runner.js';
import { ByteTokenizer } from './byte-tokenizer.js';
import type { TextTokenizer } from './text-tokenizer.js';
import { parseCompletionRequest, RequestError, type CompletionRequest, type RequestKind } from './completion-request.js';
import { OnlineSource } from './online-source.js';
import { StopStringText } from './stop-strings.js';
import { ServerMetrics } from './server-metrics.js';

export interface ServedAdapter {
  /** The name clients pass as `model` to run on this adapter. */
  readonly name: string;
  /** The tenant it is registered for: its requests are counted under it. */
  readonly tenant: string;
}

export interface EngineServerOptions {
  readonly scheduler: Scheduler;
  readonly runner: ModelRunner;
  /** The base model's name in /v1/models and in `model`. */
  readonly modelName: string;
  readonly adapters: readonly ServedAdapter[];
  /** Prompt + max_tokens may not exceed this (the scheduler's max sequence length). */
  readonly maxContextTokens: number;
  /** Seeds the sampling of requests that bring no seed of their own. */
  readonly seed: number;
  /** Text in and out; default: bytes as the vocabulary's byte ids, when it has them. */
  readonly tokenizer?: TextTokenizer;
  readonly clock?: Clock;
  /** When set, /v1/ routes need `Authorization: Bearer <apiKey>` (401 otherwise); /health and /metrics stay open. */
  readonly apiKey?: string;
  /** Request bodies above this are refused (413). Default 16 MiB. */
  readonly maxBodyBytes?: number;
  /** One line per request as it ends (the CLI prints them). */
  readonly log?: (line: string) => void;
}

/** One HTTP request: its n choices run as n sequences in the engine, and it is answered when all have ended. */
interface Pending {
  /** The response id (the first choice's engine id). */
  readonly id: number;
  readonly kind: RequestKind;
  readonly request: CompletionRequest;
  readonly res: ServerResponse;
  readonly created: number;
  readonly promptTokens: number;
  /** With echo: the prompt's text, put before each choice's text. */
  readonly echoText: string;
  readonly arrivalUs: number;
  readonly choices: Choice[];
}

/** One choice: one engine sequence. */
interface Choice {
  readonly index: number;
  readonly engineId: number;
  readonly tokens: number[];
  /**
   * With logprobs only, per token: its text as the detokenizer gave it ('' while a character's bytes
   * are incomplete), where that text starts in the choice's output, and its log probability.
   */
  readonly pieces: string[];
  readonly pieceOffsets: number[];
  readonly logprobs: number[];
  readonly decode: (ids: readonly number[], final: boolean) => string;
  /** The output text, cut at the first stop string. */
  readonly out: StopStringText;
  lastTokenUs: number;
  finishReason: string | null;
}

const JSON_TYPE = 'application/json';

export class EngineServer {
  readonly metrics = new ServerMetrics();
  /** Null: no tokenizer given and no byte ids in the vocabulary (prompts must be token ids; responses carry no text). */
  readonly tokenizer: TextTokenizer | null;
  private readonly engine: Engine;
  private readonly source = new OnlineSource();
  /** Choices of requests whose response is still open, by engine id: they leave when the response is answered, fails or its client goes away. */
  private readonly pending = new Map<number, { readonly p: Pending; readonly choice: Choice }>();
  private readonly clock: Clock;
  private readonly http: Server;
  private nextId = 0;
  private runPromise: Promise<void> | null = null;
  private failure: Error | null = null;
  private closing = false;

  constructor(readonly options: EngineServerOptions) {
    this.clock = options.clock ?? new RealClock();
    this.tokenizer = options.tokenizer ?? (ByteTokenizer.fits(options.runner.vocabSize) ? new ByteTokenizer(options.runner.vocabSize) : null);
    if (this.tokenizer !== null && this.tokenizer.idLimit > options.runner.vocabSize) {
      throw new EngineError('tokenizer', `tokenizer ${this.tokenizer.name} has ids up to ${this.tokenizer.idLimit - 1}, beyond the model's vocabulary of ${options.runner.vocabSize}`);
    }
    const observer: EngineObserver = {
      onAdmit: (request, _seq, _nowUs, rejectReason) => this.onAdmit(request, rejectReason),
      onToken: (seqId, token, index, nowUs, logprob) => this.onToken(seqId, token, index, nowUs, logprob),
      onEnd: (seq, nowUs) => this.onEnd(seq, nowUs),
      onStep: (record) => this.onStep(record),
    };
    this.engine = new Engine({
      scheduler: options.scheduler, runner: options.runner, clock: this.clock, seed: options.seed,
      maxSteps: Number.MAX_SAFE_INTEGER, observer, yieldEachStep: true, keepOutputs: false,
    });
    this.http = createServer((req, res) => {
      this.route(req, res).catch((e: unknown) => this.sendError(res, e instanceof RequestError ? e : new RequestError(500, 'server_error', null, (e as Error).message)));
    });
  }

  /** Starts the engine loop and listens; resolves with the bound address (port 0 picks a free port). */
  async listen(port: number, host: string): Promise<AddressInfo> {
    if (this.runPromise !== null) throw new Error('engine server: listen called twice');
    this.runPromise = this.engine.run(this.source).then(
      () => undefined,
      (e: unknown) => {
        // The loop failed (a runner error): fail every open request and report unhealthy from now on.
        this.failure = e as Error;
        for (const { p } of [...this.pending.values()]) this.finishWithError(p, new RequestError(500, 'server_error', null, `engine failed: ${this.failure.message}`));
      },
    );
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => resolve());
    });
    return this.http.address() as AddressInfo;
  }

  /** Stops listening, ends open requests (503), lets the engine loop return and closes the runner. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Answer what is in flight first, then stop listening: close() waits for the connections
    // still busy (those answers) and drops idle keep-alive ones.
    for (const { p } of [...this.pending.values()]) {
      if (this.cancel(p) === 0) continue;
      this.finishWithError(p, new RequestError(503, 'server_error', null, 'the server is shutting down'));
    }
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    this.source.close();
    await this.runPromise;
    await closed;
    this.options.runner.close();
  }

  // ---- HTTP --------------------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const routes: Record<string, string> = { '/health': 'GET', '/metrics': 'GET', '/v1/models': 'GET', '/v1/completions': 'POST', '/v1/chat/completions': 'POST' };
    const method = routes[path];
    if (method === undefined) throw new RequestError(404, 'not_found_error', null, `no route ${req.method} ${path}; routes: ${Object.entries(routes).map(([p, m]) => `${m} ${p}`).join(', ')}`);
    if (req.method !== method) {
      res.setHeader('Allow', method);
      throw new RequestError(405, 'invalid_request_error', null, `${path} takes ${method}, not ${req.method}`);
    }
    if (this.options.apiKey !== undefined && path.startsWith('/v1/') && req.headers.authorization !== `Bearer ${this.options.apiKey}`) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new RequestError(401, 'invalid_request_error', null, req.headers.authorization === undefined ? 'this server needs an API key: Authorization: Bearer <key>' : 'the API key does not match');
    }
    if (path === '/health') {
      const ok = this.failure === null && !this.closing;
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : `unhealthy: ${this.failure?.message ?? 'shutting down'}\n`);
    } else if (path === '/metrics') {
      const s = this.options.scheduler;
      const text = this.metrics.text({ running: s.numRunning(), waiting: s.numWaiting() + this.source.size, kvBlocksUsed: s.allocator.numBlocksUsed(), kvBlocksTotal: s.allocator.numBlocksTotal });
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
    } else if (path === '/v1/models') {
      const created = Math.floor(Date.now() / 1000);
      const base = { id: this.options.modelName, object: 'model', created, owned_by: 'stratos', max_model_len: this.options.maxContextTokens, tokenizer: this.tokenizer?.name ?? 'none (token ids only)' };
      const adapters = this.options.adapters.map((a) => ({ id: a.name, object: 'model', created, owned_by: a.tenant, parent: this.options.modelName }));
      this.sendJson(res, 200, { object: 'list', data: [base, ...adapters] });
    } else {
      await this.complete(req, res, path === '/v1/chat/completions' ? 'chat' : 'completion');
    }
  }

  private async complete(req: IncomingMessage, res: ServerResponse, kind: RequestKind): Promise<void> {
    if (this.failure !== null || this.closing) throw new RequestError(503, 'server_error', null, this.failure !== null ? `engine failed: ${this.failure.message}` : 'the server is shutting down');
    const body = await this.readJson(req);
    const vocabSize = this.options.runner.vocabSize;
    const request = parseCompletionRequest(body, vocabSize, this.options.maxContextTokens, kind);
    let adapter: string | null = null;
    let tenant = request.user;
    if (request.model !== this.options.modelName) {
      const a = this.options.adapters.find((x) => x.name === request.model);
      if (a === undefined) throw new RequestError(404, 'not_found_error', 'model', `model ${request.model} is not served here; served: ${[this.options.modelName, ...this.options.adapters.map((x) => x.name)].join(', ')}`);
      adapter = a.name;
      tenant = a.tenant;
    }
    if (request.stop.length > 0 && this.tokenizer === null) throw new RequestError(400, 'invalid_request_error', 'stop', 'stop strings need a tokenizer (this server has none): use stop_token_ids');
    const promptIds = this.promptIds(request);
    // A chat without max_tokens may fill what the context leaves.
    const maxTokens = request.maxTokens > 0 ? request.maxTokens : this.options.maxContextTokens - promptIds.length;
    const total = promptIds.length + maxTokens;
    if (total > this.options.maxContextTokens || maxTokens < 1) {
      throw new RequestError(400, 'invalid_request_error', 'max_tokens', `prompt (${promptIds.length} tokens) + max_tokens (${Math.max(1, maxTokens)}) = ${promptIds.length + Math.max(1, maxTokens)} exceeds this model's context of ${this.options.maxContextTokens} tokens`);
    }
    let echoText = '';
    if (request.echo) {
      if (this.tokenizer === null) throw new RequestError(400, 'invalid_request_error', 'echo', 'echo needs a tokenizer to turn the prompt into text (this server has none)');
      echoText = 'text' in request.prompt ? request.prompt.text : this.tokenizer.streamDecoder(new Int32Array(0))(Array.from(promptIds), true);
    }
    const arrivalUs = this.clock.nowUs();
    const id = this.nextId;
    const p: Pending = { id, kind, request, res, created: Math.floor(Date.now() / 1000), promptTokens: promptIds.length, echoText, arrivalUs, choices: [] };
    for (let index = 0; index < request.n; index++) {
      const choice: Choice = { index, engineId: this.nextId++, tokens: [], pieces: [], pieceOffsets: [], logprobs: [], decode: this.tokenizer?.streamDecoder(promptIds) ?? (() => ''), out: new StopStringText(request.stop), lastTokenUs: arrivalUs, finishReason: null };
      p.choices.push(choice);
      this.pending.set(choice.engineId, { p, choice });
    }
    res.on('close', () => {
      // The client went away before the response ended: free the request's places in the engine.
      const cancelled = this.cancel(p);
      if (cancelled === 0) return;
      for (let i = 0; i < cancelled; i++) this.metrics.countEnd('aborted', 'client_disconnected');
      this.options.log?.(`request ${id}: client disconnected after ${completionTokensOf(p)} tokens`);
    });
    if (request.stream) res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    const stopTokenIds = [...request.stopTokenIds, ...(request.ignoreEos ? [] : (this.tokenizer?.eosTokenIds ?? []))];
    const sampling = { temperature: request.temperature, topK: request.topK, topP: request.topP, minP: request.minP, logprobs: request.logprobs };
    for (const choice of p.choices) {
      // A given seed gives choice i the seed + i: each choice its own draw, the whole response repeatable.
      const seed = request.seed !== null ? request.seed + choice.index : this.options.seed * 1_000_003 + choice.engineId;
      const engineRequest: EngineRequest = {
        id: choice.engineId, tenant, adapter, priorityClass: request.priority, arrivalUs, promptTokens: promptIds.length, maxOutputTokens: maxTokens, promptTokenIds: promptIds,
        stopTokenIds, sampling: { ...sampling, seed },
      };
      this.source.push(engineRequest);
    }
  }

  /** Whether p's response is still to be sent (some choice of it is still in the engine or its source). */
  private isOpen(p: Pending): boolean {
    return p.choices.some((c) => this.pending.has(c.engineId));
  }

  /** The request's prompt as token ids: given, tokenized, or a chat rendered by the tokenizer's template. */
  private promptIds(request: CompletionRequest): Int32Array {
    const prompt = request.prompt;
    if ('tokenIds' in prompt) return prompt.tokenIds;
    const tokenizer = this.tokenizer;
    if ('text' in prompt) {
      if (tokenizer === null) throw new RequestError(400, 'invalid_request_error', 'prompt', `this server has no tokenizer (the model's ${this.options.runner.vocabSize} ids hold no byte ids; start it with --tokenizer): send the prompt as token ids`);
      return tokenizer.encode(prompt.text);
    }
    if (tokenizer?.applyChatTemplate === undefined) {
      throw new RequestError(400, 'invalid_request_error', 'messages', `this server's tokenizer (${tokenizer?.name ?? 'none'}) has no chat template: start it with a checkpoint or --tokenizer whose tokenizer_config.json has chat_template, or use POST /v1/completions`);
    }
    try {
      return tokenizer.applyChatTemplate(prompt.messages);
    } catch (e) {
      throw new RequestError(400, 'invalid_request_error', 'messages', `the chat template refuses these messages: ${(e as Error).message}`);
    }
  }

  private readJson(req: IncomingMessage): Promise<unknown> {
    const limit = this.options.maxBodyBytes ?? 16 << 20;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          reject(new RequestError(413, 'invalid_request_error', 'body', `request body over ${limit} bytes`));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.on('error', reject);
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve(JSON.parse(text));
        } catch (e) {
          reject(new RequestError(400, 'invalid_request_error', 'body', `the body is not JSON: ${(e as Error).message}`));
        }
      });
    });
  }

  private sendJson(res: ServerResponse, status: number, value: unknown): void {
    res.writeHead(status, { 'Content-Type': JSON_TYPE }).end(JSON.stringify(value) + '\n');
  }

  private sendError(res: ServerResponse, e: RequestError): void {
    const error = { error: { message: e.message, type: e.type, param: e.param, code: null } };
    if (res.headersSent) {
      // A stream already started: the error is its last event.
      if (!res.writableEnded) res.end(`data: ${JSON.stringify(error)}\n\ndata: [DONE]\n\n`);
      return;
    }
    this.sendJson(res, e.status, error);
  }

  // ---- engine events -----------------------------------------------------------------------

  private onAdmit(request: EngineRequest, rejectReason: string | null): void {
    const entry = this.pending.get(request.id);
    if (rejectReason === null) {
      this.metrics.promptTokens += request.promptTokens;
      return;
    }
    this.metrics.countEnd('rejected', rejectReason);
    if (entry === undefined) return;
    // One choice refused: the response cannot be whole, so the others leave the engine too.
    this.cancel(entry.p);
    this.finishWithError(entry.p, new RequestError(400, 'invalid_request_error', null, `the scheduler rejected the request: ${rejectReason}`));
  }

  /** Returns true when the token completes a stop string: the engine ends the request with it. */
  private onToken(seqId: number, token: number, index: number, nowUs: number, logprob: number): boolean {
    const entry = this.pending.get(seqId);
    if (entry === undefined) return false;
    const { p, choice } = entry;
    choice.tokens.push(token);
    this.metrics.generationTokens++;
    if (index === 0) this.metrics.ttft.observe((nowUs - p.arrivalUs) / 1e6);
    else this.metrics.itl.observe((nowUs - choice.lastTokenUs) / 1e6);
    choice.lastTokenUs = nowUs;
    const piece = choice.decode([token], false);
    if (p.request.logprobs) {
      const last = choice.pieces.length - 1;
      choice.pieceOffsets.push(last < 0 ? 0 : choice.pieceOffsets[last] + choice.pieces[last].length);
      choice.pieces.push(piece);
      choice.logprobs.push(logprob);
    }
    const stopped = choice.out.append(piece);
    if (p.request.stream) p.res.write(`data: ${JSON.stringify(this.chunk(p, choice, choice.out.sendable(false), [token], null))}\n\n`);
    return stopped;
  }

  private onEnd(seq: SeqState, nowUs: number): void {
    const entry = this.pending.get(seq.spec.id);
    if (entry === undefined || seq.status !== 'finished') return;
    const { p, choice } = entry;
    // What the detokenizer held back (an incomplete character) belongs to the last token's text.
    const tail = choice.decode([], true);
    if (tail !== '' && choice.pieces.length > 0) choice.pieces[choice.pieces.length - 1] += tail;
    choice.out.append(tail);
    const finishReason = seq.reason === 'stop' || choice.out.stopped ? 'stop' : 'length';
    choice.finishReason = finishReason;
    this.metrics.e2e.observe((nowUs - p.arrivalUs) / 1e6);
    this.metrics.countEnd('completed', choice.out.stopped ? 'stop_string' : finishReason);
    this.pending.delete(choice.engineId);
    // Every choice leaves pending at its end (or all at once, on an error or a disconnect): none left, all ended.
    const done = !this.isOpen(p);
    const completionTokens = completionTokensOf(p);
    const usage = { prompt_tokens: p.promptTokens, completion_tokens: completionTokens, total_tokens: p.promptTokens + completionTokens };
    if (p.request.stream) {
      const last = this.chunk(p, choice, choice.out.sendable(true), [], finishReason);
      // One choice: its last chunk carries the usage. Several: each ends with its own last chunk, and
      // the usage follows the last of them in a chunk without choices (as OpenAI streams it).
      if (p.request.n === 1) p.res.end(`data: ${JSON.stringify({ ...last, usage })}\n\ndata: [DONE]\n\n`);
      else {
        p.res.write(`data: ${JSON.stringify(last)}\n\n`);
        if (done) p.res.end(`data: ${JSON.stringify({ ...responseHead(p, p.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'), choices: [], usage })}\n\ndata: [DONE]\n\n`);
      }
    } else if (done) {
      const choices = p.choices.map((c) => {
        const text = p.echoText + c.out.result();
        return choiceOf(c, p.kind === 'chat' ? { message: { role: 'assistant', content: text } } : { text }, c.tokens, c.finishReason, logprobsOf(p, c, 0, c.tokens.length));
      });
      this.sendJson(p.res, 200, { ...responseHead(p, p.kind === 'chat' ? 'chat.completion' : 'text_completion'), choices, usage });
    }
    if (done) this.options.log?.(`request ${p.id}: ${p.promptTokens} + ${completionTokens} tokens${p.request.n > 1 ? ` in ${p.request.n} choices` : ''} in ${((nowUs - p.arrivalUs) / 1000).toFixed(1)} ms (${p.choices.map((c) => c.finishReason).join(', ')})`);
  }

  private onStep(record: EngineStepRecord): void {
    this.metrics.steps++;
    const wallUs = record.endUs - record.startUs;
    this.metrics.stepSeconds += wallUs / 1e6;
    if (record.gpuUs !== null) this.metrics.hostSeconds += Math.max(0, wallUs - record.gpuUs) / 1e6;
  }

  private chunk(p: Pending, choice: Choice, text: string, tokenIds: number[], finishReason: string | null): Record<string, unknown> {
    const first = choice.tokens.length === tokenIds.length && tokenIds.length > 0;
    // The chunk's tokens are the choice's last ones.
    const logprobs = tokenIds.length > 0 ? logprobsOf(p, choice, choice.tokens.length - tokenIds.length, choice.tokens.length) : null;
    if (p.kind === 'completion') {
      // With echo, a choice's first chunk starts with the prompt's text.
      return { ...responseHead(p, 'text_completion'), choices: [choiceOf(choice, { text: first ? p.echoText + text : text }, tokenIds, finishReason, logprobs)] };
    }
    // The first delta names the role, as OpenAI's stream does.
    const delta = first ? { role: 'assistant', content: text } : finishReason !== null && text === '' ? {} : { content: text };
    return { ...responseHead(p, 'chat.completion.chunk'), choices: [choiceOf(choice, { delta }, tokenIds, finishReason, logprobs)] };
  }

  /** Takes a request's open choices out of the engine (still queued, or admitted: Engine.abort) and out of pending; returns how many it took. */
  private cancel(p: Pending): number {
    let cancelled = 0;
    for (const c of p.choices) {
      if (!this.pending.delete(c.engineId)) continue;
      if (!this.source.cancel(c.engineId)) this.engine.abort(c.engineId);
      cancelled++;
    }
    return cancelled;
  }

  private finishWithError(p: Pending, e: RequestError): void {
    for (const c of p.choices) this.pending.delete(c.engineId);
    if (!p.res.writableEnded) this.sendError(p.res, e);
  }
}

/** The fields of OpenAI's response or stream chunk of request p besides its choices. */
function responseHead(p: Pending, object: string): Record<string, unknown> {
  return { id: `${p.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${p.id}`, object, created: p.created, model: p.request.model };
}

/** Tokens generated so far over all of p's choices. */
function completionTokensOf(p: Pending): number {
  return p.choices.reduce((a, c) => a + c.tokens.length, 0);
}

/** One choice of a response or chunk (`content`: text, message or delta). */
function choiceOf(c: Choice, content: Record<string, unknown>, tokenIds: number[], finishReason: string | null, logprobs: Record<string, unknown> | null): Record<string, unknown> {
  return { index: c.index, ...content, token_ids: tokenIds, logprobs, finish_reason: finishReason };
}

/**
 * OpenAI's logprobs of choice c's tokens [from, to), null unless asked for: completions' parallel lists
 * (text_offset counts from the start of the returned text, echo included), chat's content entries. No
 * top alternatives (the sampler keeps the sampled token's alone). A runner without them gives null values.
 */
function logprobsOf(p: Pending, c: Choice, from: number, to: number): Record<string, unknown> | null {
  if (!p.request.logprobs) return null;
  const pieces = c.pieces.slice(from, to);
  const values = c.logprobs.slice(from, to).map((x) => (Number.isFinite(x) ? x : null));
  if (p.kind === 'chat') {
    return { content: pieces.map((token, k) => ({ token, logprob: values[k], bytes: Array.from(Buffer.from(token, 'utf8')), top_logprobs: [] })) };
  }
  const textOffset = c.pieceOffsets.slice(from, to).map((at) => p.echoText.length + at);
  return { tokens: pieces, token_logprobs: values, top_logprobs: null, text_offset: textOffset };
}

