// A Hugging Face tokenizer (tokenizer.json, and tokenizer_config.json when present) through
// @huggingface/tokenizers, the Hub's own JavaScript implementation: every tokenizer.json variant
// (SentencePiece BPE with byte fallback as in Llama 2, byte-level BPE as in Llama 3, …) without a
// tokenizer of our own to keep in step with them.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { EngineError } from '../errors.js';
import type { ChatMessage } from './completion-request.js';
import type { TextTokenizer } from './text-tokenizer.js';

/** Prompt ids before the first output id that the detokenizer decodes with it (vLLM keeps 5 too). */
const CONTEXT_IDS = 5;

export class HfTokenizer implements TextTokenizer {
  readonly name: string;
  readonly eosTokenIds: readonly number[];
  readonly idLimit: number;
  readonly applyChatTemplate?: (messages: readonly ChatMessage[]) => Int32Array;
  private readonly tokenizer: Tokenizer;

  /** `path`: a folder holding tokenizer.json (a checkpoint's) or the tokenizer.json file itself. */
  constructor(path: string) {
    const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
    if (!existsSync(file)) throw new EngineError('tokenizer', `${file}: no such file (a tokenizer is a folder with tokenizer.json, or the file itself)`);
    const configFile = join(file, '..', 'tokenizer_config.json');
    let json: Record<string, unknown>;
    let config: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      config = existsSync(configFile) ? (JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>) : {};
      this.tokenizer = new Tokenizer(json, config);
    } catch (e) {
      throw new EngineError('tokenizer', `${file}: not a tokenizer the Hugging Face tokenizers library reads: ${(e as Error).message}`);
    }
    const vocab = (json.model as { vocab?: Record<string, number> | [string, number][] } | undefined)?.vocab;
    // A loop, not Math.max(...ids): a vocabulary of 128K ids (Llama 3) overflows a call's arguments.
    let maxId = 0;
    if (Array.isArray(vocab)) maxId = Math.max(maxId, vocab.length - 1);
    else if (vocab !== undefined) for (const id of Object.values(vocab)) if (id > maxId) maxId = id;
    for (const t of (json.added_tokens as { id: number }[] | undefined) ?? []) if (t.id > maxId) maxId = t.id;
    this.idLimit = maxId + 1;
    const eos = tokenName(config.eos_token);
    const eosId = eos !== null ? this.tokenizer.token_to_id(eos) : undefined;
    this.eosTokenIds = eosId !== undefined ? [eosId] : [];
    const template = chatTemplateOf(config, join(file, '..', 'chat_template.jinja'));
    if (template !== null) {
      let compiled: Template;
      try {
        compiled = new Template(template);
      } catch (e) {
        throw new EngineError('tokenizer', `${configFile}: its chat template does not parse: ${(e as Error).message}`);
      }
      const specials = { bos_token: tokenName(config.bos_token) ?? '', eos_token: eos ?? '' };
      // The rendered text holds the special tokens itself (a template writes bos_token): encode
      // it without adding them again, as transformers' apply_chat_template does.
      this.applyChatTemplate = (messages) => {
        const text = compiled.render({ messages, add_generation_prompt: true, ...specials });
        return Int32Array.from(this.tokenizer.encode(text, { add_special_tokens: false }).ids);
      };
    }
    this.name = `${file} (${(json.model as { type?: string } | undefined)?.type ?? 'unknown model'}, ${this.idLimit} ids${eos !== null ? `, eos ${eos}` : ''}${template !== null ? ', chat template' : ''})`;
  }

  encode(text: string): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text).ids);
  }

  /** The text of `ids` as the tokenizer decodes it, special tokens skipped. */
  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: true });
  }

  streamDecoder(promptIds: Int32Array): (newIds: readonly number[], final: boolean) => string {
    // vLLM's incremental detokenization: decode a window from prefixOffset, emit what it adds past
    // the window up to readOffset, unless it ends in an incomplete character (U+FFFD).
    const ids = Array.from(promptIds.subarray(Math.max(0, promptIds.length - CONTEXT_IDS)));
    let prefixOffset = 0;
    let readOffset = ids.length;
    return (newIds, final) => {
      for (const id of newIds) ids.push(id);
      const prefixText = this.decode(ids.slice(prefixOffset, readOffset));
      const text = this.decode(ids.slice(prefixOffset));
      if (text.length <= prefixText.length || (!final && text.endsWith('\uFFFD'))) return '';
      prefixOffset = readOffset;
      readOffset = ids.length;
      return text.startsWith(prefixText) ? text.slice(prefixText.length) : text;
    };
  }
}

/** A special token as tokenizer_config.json writes it: a string or { content }. */
function tokenName(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return null;
}

/**
 * The chat template: tokenizer_config.json's chat_template (a string, or named templates of which
 * "default" is used), else a chat_template.jinja file beside it (the Hub's newer layout); null if none.
 */
function chatTemplateOf(config: Record<string, unknown>, jinjaFile: string): string | null {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = (t as { name?: unknown; template?: unknown }[]).find((x) => x.name === 'default');
    if (named !== undefined && typeof named.template === 'string') return named.template;
  }
  return existsSync(jinjaFile) ? readFileSync(jinjaFile, 'utf8') : null;
}
