// Text in and out of token ids without a vocabulary file: each UTF-8 byte is one token. With a
// 256-token vocabulary (the `tiny` model) byte b is id b; with a Llama vocabulary (32,000 ids) it
// is Llama's byte-fallback piece <0xBB>, id 3 + b, which the model accepts but which does not
// merge bytes into words as its real tokenizer would. Clients that need exact control send token
// ids (`prompt: [ids]`) and read `token_ids` back.

import type { TextTokenizer } from './text-tokenizer.js';

/** Llama's byte-fallback pieces <0x00>..<0xFF> are ids 3..258 (after <unk>, <s>, </s>). */
const LLAMA_BYTE_OFFSET = 3;

export class ByteTokenizer implements TextTokenizer {
  /** Bytes have no end-of-sequence: generation runs to max_tokens (or the request's stop_token_ids). */
  readonly eosTokenIds: readonly number[] = [];
  readonly byteOffset: number;

  /** Whether a vocabulary of `vocabSize` ids has byte ids this tokenizer can use. */
  static fits(vocabSize: number): boolean {
    return vocabSize === 256 || vocabSize >= LLAMA_BYTE_OFFSET + 256;
  }

  constructor(readonly vocabSize: number) {
    if (vocabSize === 256) this.byteOffset = 0;
    else if (vocabSize >= LLAMA_BYTE_OFFSET + 256) this.byteOffset = LLAMA_BYTE_OFFSET;
    else throw new Error(`byte tokenizer: vocabulary of ${vocabSize} ids holds neither 256 byte ids nor Llama's byte pieces (ids 3-258)`);
  }

  get idLimit(): number {
    return this.byteOffset + 256;
  }

  get name(): string {
    return this.byteOffset === 0 ? 'bytes (id = byte)' : 'bytes (Llama byte-fallback pieces, id = 3 + byte)';
  }

  encode(text: string): Int32Array {
    const bytes = new TextEncoder().encode(text);
    const ids = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) ids[i] = bytes[i] + this.byteOffset;
    return ids;
  }

  /**
   * A decoder for one request's output: feed tokens as they come, get the text they complete
   * (a character split over several byte tokens appears once whole). Ids that are not bytes
   * decode as U+FFFD.
   */
  streamDecoder(_promptIds?: Int32Array): (ids: readonly number[], final: boolean) => string {
    const utf8 = new TextDecoder('utf-8', { fatal: false });
    return (ids, final) => {
      const bytes: number[] = [];
      let text = '';
      for (const id of ids) {
        const b = id - this.byteOffset;
        if (b >= 0 && b < 256) {
          bytes.push(b);
          continue;
        }
        text += utf8.decode(Uint8Array.from(bytes), { stream: true });
        bytes.length = 0;
        text += '\uFFFD';
      }
      return text + utf8.decode(Uint8Array.from(bytes), { stream: !final });
    };
  }
}
