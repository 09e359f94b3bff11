// What the server needs of a tokenizer: text to ids for prompts, ids to text for outputs (as they
// are generated), and the token that ends a generation. Two kinds: a Hugging Face tokenizer.json
// (hf-tokenizer.ts) and a byte-level fallback for models without one (byte-tokenizer.ts).

import type { ChatMessage } from './completion-request.js';

export interface TextTokenizer {
  /** For /v1/models and the start-up line. */
  readonly name: string;
  /** Tokens that end a generation unless the request asks otherwise (end of sequence). */
  readonly eosTokenIds: readonly number[];
  /** Ids run up to this (exclusive): the model's vocabulary must cover them. */
  readonly idLimit: number;
  /** A prompt's ids, with the special tokens the tokenizer adds (a Llama tokenizer's BOS). */
  encode(text: string): Int32Array;
  /**
   * One request's detokenizer: called with each batch of new output ids, it returns the text they
   * complete; with `final` it flushes what was held back (a character whose bytes have not all
   * come). The prompt's ids give context, so a leading space of the first word survives.
   */
  streamDecoder(promptIds: Int32Array): (newIds: readonly number[], final: boolean) => string;
  /**
   * A chat's prompt ids through the tokenizer's chat template, ending where the assistant's reply
   * starts; absent when the tokenizer has no template. Throws (with the template's message) on a
   * chat the template refuses.
   */
  readonly applyChatTemplate?: (messages: readonly ChatMessage[]) => Int32Array;
}
