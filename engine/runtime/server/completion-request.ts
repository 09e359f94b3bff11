// The bodies of POST /v1/completions and /v1/chat/completions (OpenAI's APIs, as vLLM serves
// them), checked field by field: every error names the field, the value and what is allowed.
// Fields this engine cannot honour (best_of, top log probabilities, tools, …) are refused,
// never silently ignored.

export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly type: 'invalid_request_error' | 'not_found_error' | 'server_error',
    readonly param: string | null,
    message: string,
  ) {
    super(message);
  }
}

export interface CompletionRequest {
  readonly model: string;
  /** The prompt as text (tokenized by the server), as token ids, or a chat (rendered by the tokenizer's chat template). */
  readonly prompt: { readonly text: string } | { readonly tokenIds: Int32Array } | { readonly messages: readonly ChatMessage[] };
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  readonly minP: number;
  /** Per-request sampling seed; null: derived from the server's seed and the request id. */
  readonly seed: number | null;
  readonly stream: boolean;
  /** OpenAI's `user`: the tenant the request is counted under (default "default"). */
  readonly user: string;
  /** vLLM's extensions: more tokens that end the generation, and whether the tokenizer's end of sequence does not. */
  readonly stopTokenIds: readonly number[];
  readonly ignoreEos: boolean;
  /** OpenAI's stop strings (up to 4): the output ends before the first one generated, which is not returned. */
  readonly stop: readonly string[];
  /** vLLM's priority: the scheduler's priority class (lower is served first; waiting requests age toward 0). */
  readonly priority: number;
  /** Choices to generate for the prompt (OpenAI's n): each its own sequence in the engine. */
  readonly n: number;
  /** Completions only: the prompt's text comes back before each choice's text. */
  readonly echo: boolean;
  /** Each generated token's log probability comes back (completions' logprobs 0, chat's logprobs true). */
  readonly logprobs: boolean;
}

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export type RequestKind = 'completion' | 'chat';

/** Fields accepted with their default value only (anything else is refused with a reason). */
const ONLY_DEFAULT: Readonly<Record<string, { readonly value: unknown; readonly why: string }>> = {
  best_of: { value: 1, why: 'choices are not ranked by log probability; use n' },
  suffix: { value: null, why: 'no insertion mode' },
  presence_penalty: { value: 0, why: 'no penalties in the sampler' },
  frequency_penalty: { value: 0, why: 'no penalties in the sampler' },
  logit_bias: { value: null, why: 'no logit bias in the sampler' },
  tools: { value: null, why: 'no tool calling' },
  tool_choice: { value: null, why: 'no tool calling' },
  response_format: { value: null, why: 'no constrained decoding' },
};

/** Why only the sampled token's log probability is returned (OpenAI's top alternatives are not). */
const NO_TOP = "the fused sampler returns the sampled token's log probability, not the most likely alternatives";

/** OpenAI's limit on n. */
export const MAX_CHOICES = 128;
const COMMON = ['model', 'n', 'logprobs', 'stop', 'priority', 'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'stream', 'user', 'stream_options', 'stop_token_ids', 'ignore_eos', ...Object.keys(ONLY_DEFAULT)];
const KNOWN: Readonly<Record<RequestKind, ReadonlySet<string>>> = {
  completion: new Set(['prompt', 'echo', ...COMMON]),
  chat: new Set(['messages', 'max_completion_tokens', 'top_logprobs', ...COMMON]),
};
const ROLES = new Set(['system', 'user', 'assistant']);

const bad = (param: string, message: string): RequestError => new RequestError(400, 'invalid_request_error', param, message);

function numberField(body: Record<string, unknown>, name: string, dflt: number, lo: number, hi: number, integer: boolean): number {
  const v = body[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < lo || v > hi) {
    throw bad(name, `${name} = ${JSON.stringify(v)}: must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}]`);
  }
  return v;
}

/** A true/false field: absent or null is false. */
function booleanField(body: Record<string, unknown>, name: string): boolean {
  const v = body[name];
  if (v !== undefined && v !== null && typeof v !== 'boolean') throw bad(name, `${name} = ${JSON.stringify(v)}: must be true or false`);
  return v === true;
}

/** A chat's messages: roles system, user and assistant with text content. */
function parseMessages(m: unknown): ChatMessage[] {
  if (!Array.isArray(m) || m.length === 0) throw bad('messages', 'messages must be a non-empty array of { role, content }');
  return m.map((x, i) => {
    const msg = x as Record<string, unknown> | null;
    if (typeof msg !== 'object' || msg === null) throw bad('messages', `messages[${i}] must be an object { role, content }`);
    if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) throw bad('messages', `messages[${i}].role = ${JSON.stringify(msg.role)}: allowed: ${[...ROLES].join(', ')}`);
    if (typeof msg.content !== 'string') throw bad('messages', `messages[${i}].content must be a string (no images or parts)`);
    return { role: msg.role as ChatMessage['role'], content: msg.content };
  });
}

/** Parses and checks a completions (or, with kind 'chat', a chat completions) body against the model's vocabulary and context length. */
export function parseCompletionRequest(raw: unknown, vocabSize: number, maxContextTokens: number, kind: RequestKind = 'completion'): CompletionRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('body', 'the body must be a JSON object');
  const body = raw as Record<string, unknown>;
  const known = KNOWN[kind];
  for (const key of Object.keys(body)) {
    if (!known.has(key)) throw bad(key, `unknown field ${key}; accepted: ${[...known].join(', ')}`);
  }
  for (const [key, { value, why }] of Object.entries(ONLY_DEFAULT)) {
    const v = body[key];
    if (v !== undefined && v !== null && JSON.stringify(v) !== JSON.stringify(value)) {
      throw bad(key, `${key} = ${JSON.stringify(v)}: not supported (${why}); leave it out`);
    }
  }
  if (typeof body.model !== 'string' || body.model === '') throw bad('model', 'model is required: a name from GET /v1/models');
  const p = body.prompt;
  let prompt: CompletionRequest['prompt'];
  if (kind === 'chat') {
    prompt = { messages: parseMessages(body.messages) };
  } else if (typeof p === 'string') {
    if (p === '') throw bad('prompt', 'prompt is empty');
    prompt = { text: p };
  } else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'number')) {
    const badId = p.findIndex((x) => !Number.isInteger(x) || x < 0 || x >= vocabSize);
    if (badId >= 0) throw bad('prompt', `prompt[${badId}] = ${p[badId]}: token ids must be integers in [0, ${vocabSize})`);
    prompt = { tokenIds: Int32Array.from(p as number[]) };
  } else if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) {
    // A batch of one prompt, as OpenAI clients often send it.
    return parseCompletionRequest({ ...body, prompt: p[0] }, vocabSize, maxContextTokens, kind);
  } else {
    throw bad('prompt', 'prompt must be a non-empty string or a non-empty array of token ids (one prompt per request)');
  }
  // Chat: max_completion_tokens is OpenAI's newer name; without either the generation may fill the context.
  if (body.max_tokens !== undefined && body.max_completion_tokens !== undefined) throw bad('max_tokens', 'give max_tokens or max_completion_tokens, not both');
  const maxTokens = kind === 'chat' ? numberField(body, body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens', 0, 1, maxContextTokens, true) : numberField(body, 'max_tokens', 16, 1, maxContextTokens, true);
  const temperature = numberField(body, 'temperature', 1, 0, 2, false);
  const topP = numberField(body, 'top_p', 1, Number.MIN_VALUE, 1, false);
  const topK = numberField(body, 'top_k', 0, -1, vocabSize, true);
  const minP = numberField(body, 'min_p', 0, 0, 1, false);
  const seedValue = body.seed;
  if (seedValue !== undefined && seedValue !== null && !(typeof seedValue === 'number' && Number.isSafeInteger(seedValue) && seedValue >= 0)) {
    throw bad('seed', `seed = ${JSON.stringify(seedValue)}: must be a non-negative integer`);
  }
  const stream = booleanField(body, 'stream');
  if (body.user !== undefined && typeof body.user !== 'string') throw bad('user', `user = ${JSON.stringify(body.user)}: must be a string`);
  const stops = body.stop_token_ids ?? [];
  if (!Array.isArray(stops) || stops.some((x) => !Number.isInteger(x) || (x as number) < 0 || (x as number) >= vocabSize)) {
    throw bad('stop_token_ids', `stop_token_ids = ${JSON.stringify(body.stop_token_ids)}: must be an array of token ids in [0, ${vocabSize})`);
  }
  const priority = numberField(body, 'priority', 0, 0, 1000, true);
  const stopValue = body.stop ?? [];
  const stop = typeof stopValue === 'string' ? [stopValue] : stopValue;
  if (!Array.isArray(stop) || stop.length > 4 || stop.some((x) => typeof x !== 'string' || x === '')) {
    throw bad('stop', `stop = ${JSON.stringify(body.stop)}: must be a non-empty string or up to 4 of them`);
  }
  const ignoreEos = booleanField(body, 'ignore_eos');
  const n = numberField(body, 'n', 1, 1, MAX_CHOICES, true);
  const echo = booleanField(body, 'echo');
  return {
    ...parseLogprobs(body, kind),
    model: body.model,
    prompt,
    // 0 for a chat without a limit: the server gives it what the context leaves.
    maxTokens,
    temperature,
    topP,
    // vLLM's convention: -1 (or 0) disables top-k.
    topK: topK < 0 ? 0 : topK,
    minP,
    seed: typeof seedValue === 'number' ? seedValue : null,
    stream,
    user: typeof body.user === 'string' && body.user !== '' ? body.user : 'default',
    stopTokenIds: stops as number[],
    ignoreEos,
    stop: stop as string[],
    priority,
    n,
    echo,
  };
}

/** Completions: logprobs is how many alternatives per token (0: the sampled token's alone). Chat: logprobs true, top_logprobs the alternatives. */
function parseLogprobs(body: Record<string, unknown>, kind: RequestKind): { logprobs: boolean } {
  if (kind === 'completion') {
    // -1: left out.
    const alternatives = numberField(body, 'logprobs', -1, 0, 5, true);
    if (alternatives > 0) throw bad('logprobs', `logprobs = ${alternatives}: not supported (${NO_TOP}); logprobs 0 returns each generated token's`);
    return { logprobs: alternatives === 0 };
  }
  const logprobs = booleanField(body, 'logprobs');
  const top = numberField(body, 'top_logprobs', 0, 0, 20, true);
  if (top > 0) throw bad('top_logprobs', `top_logprobs = ${top}: not supported (${NO_TOP}); leave it out`);
  return { logprobs };
}
