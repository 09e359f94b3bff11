// Llama 2's tokenizer as a Hugging Face tokenizer.json, written from the vocabulary and merges
// that llama-tokenizer-js ships (a dev dependency, extracted from Meta's tokenizer), in the layout
// of the Hub's meta-llama/Llama-2-7b-hf tokenizer.json: SentencePiece BPE with byte fallback,
// "▁" for spaces, BOS added. No network: tests of the server's tokenizer run on it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LlamaTokenizer } from 'llama-tokenizer-js';

/** `chatTemplate`: a Jinja chat template for tokenizer_config.json (the test's own, Llama-2-chat style). */
export function writeLlama2Tokenizer(dir: string, chatTemplate?: string): void {
  const source = new LlamaTokenizer();
  const vocab: Record<string, number> = {};
  source.vocabById.forEach((piece, id) => {
    vocab[piece] = id;
  });
  const merges = [...source.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
  const config = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', legacy: false, model_max_length: 4096, tokenizer_class: 'LlamaTokenizer', ...(chatTemplate !== undefined ? { chat_template: chatTemplate } : {}) };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
}

/** Token ids Meta's tokenizer gives (from llama-tokenizer-js's own test suite), BOS first. */
export const LLAMA2_CASES: readonly (readonly [string, readonly number[]])[] = [
  ['grabbed', [1, 2646, 1327, 287]],
  [' grabbed', [1, 29871, 2646, 1327, 287]],
  ['           grabbed', [1, 9651, 2646, 1327, 287]],
  ['\n', [1, 29871, 13]],
  [' \n', [1, 259, 13]],
  ['\ttabs\t\t\t\tout here', [1, 29871, 12, 21175, 12, 12, 12, 12, 449, 1244]],
  ['ax\n####\nboo', [1, 4853, 13, 4136, 13, 833, 29877]],
  ['镇', [1, 29871, 30411]],
  ['🦙', [1, 29871, 243, 162, 169, 156]],
  ['🦙Ꙋ', [1, 29871, 243, 162, 169, 156, 237, 156, 141]],
  ['Ꙋ🦙', [1, 29871, 237, 156, 141, 243, 162, 169, 156]],
];

/** A chat template in the Llama-2-chat style: [INST] turns, an optional system block, roles must alternate. */
export const TEST_CHAT_TEMPLATE =
  "{% if messages[0].role == 'system' %}{% set sys = messages[0].content %}{% set turns = messages[1:] %}{% else %}{% set sys = '' %}{% set turns = messages %}{% endif %}" +
  "{% for m in turns %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate user/assistant') }}{% endif %}" +
  "{% if m.role == 'user' %}{{ bos_token + '[INST] ' + (sys + '\\n\\n' if loop.first and sys else '') + m.content + ' [/INST]' }}{% else %}{{ ' ' + m.content + ' ' + eos_token }}{% endif %}{% endfor %}";
