// `stratos serve`: the real engine behind an OpenAI-compatible HTTP API. The model, KV cache and
// scheduler are built exactly as `stratos engine bench` builds them (same flags, same config
// file), then engine/runtime/server runs them for as long as the process lives.
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { createScheduler } from '../../engine/policy/index.js';
import { modelConfig, MODEL_CONFIG_NAMES } from '../../engine/runtime/model-config.js';
import { EngineServer } from '../../engine/runtime/server/engine-server.js';
import { HfTokenizer } from '../../engine/runtime/server/hf-tokenizer.js';
import type { SimConfig } from '../../sim/config.js';
import { buildLlamaRunner } from './engine.js';
import { rawSimConfig, type SimulateArgs } from './simulate.js';
import { isUserError } from '../user-error.js';

interface ServeArgs extends SimulateArgs {
  backend?: string;
  checkpoint?: string;
  dtype?: string;
  host?: string;
  port?: number;
  'served-model-name'?: string;
  'kv-blocks'?: number;
  'max-model-len'?: number;
  adapters?: string;
  tokenizer?: string;
  'api-key'?: string;
  'cuda-graphs'?: boolean;
  'fuse-decode'?: boolean;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve the real engine over an OpenAI-compatible HTTP API',
  builder: (y: Argv) =>
    (y as Argv<ServeArgs>)
      .option('backend', { type: 'string', default: 'cpu', describe: 'cpu (native CPU reference ops) | gpu (CUDA kernels)' })
      .option('model', { type: 'string', describe: `built-in shape with seeded random weights: ${MODEL_CONFIG_NAMES.join(', ')} (default tiny)` })
      .option('checkpoint', { type: 'string', describe: 'Hugging Face Llama folder (config.json + safetensors) instead of random weights' })
      .option('tokenizer', { type: 'string', describe: 'a Hugging Face tokenizer: a folder with tokenizer.json (and tokenizer_config.json) or the file (default: the checkpoint\'s, else bytes)' })
      .option('served-model-name', { type: 'string', describe: 'the name clients pass as `model` (default: --model, or the checkpoint folder\'s name)' })
      .option('dtype', { type: 'string', describe: 'bf16 | f32 (f32 on the cpu backend only; default bf16 on gpu, f32 on cpu)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on (0.0.0.0 for every interface)' })
      .option('api-key', { type: 'string', describe: 'require Authorization: Bearer KEY on /v1/ routes (default: $STRATOS_API_KEY; none: open)' })
      .option('port', { type: 'number', default: 8000, describe: 'port to listen on (0: any free port, printed at start)' })
      .option('config', { type: 'string', describe: 'a simulate config file (JSON or YAML): its scheduler, kv and lora keys apply; flags override it' })
      .option('policy', { type: 'string', describe: 'static | continuous | chunked (default continuous)' })
      .option('page-size', { type: 'number', describe: 'KV page size in tokens (default 16)' })
      .option('allocator', { type: 'string', describe: 'paged | contiguous (default paged)' })
      .option('kv-blocks', { type: 'number', describe: 'KV cache blocks (default: from free GPU memory; 1024 on cpu)' })
      .option('max-num-seqs', { type: 'number', describe: 'most sequences in a step (default 256)' })
      .option('max-num-batched-tokens', { type: 'number', describe: 'most tokens in a step (default 8192)' })
      .option('max-model-len', { type: 'number', describe: 'longest prompt + max_tokens a request may ask for (default 4096)' })
      .option('sampling', { type: 'string', describe: 'gpu (fused sampling on the device, default) | cpu (logits copied to the host)' })
      .option('adapters', { type: 'string', describe: 'LoRA: PEFT folders as DIR/TENANT/ADAPTER, each served as model TENANT/ADAPTER' })
      .option('seed', { type: 'number', describe: 'seeds random weights and the sampling of requests without a seed (default 1)' })
      .option('cuda-graphs', { type: 'boolean', default: false, describe: 'gpu: replay decode-only steps from CUDA graphs' })
      .option('fuse-decode', { type: 'boolean', default: false, describe: 'gpu: batch-1 decode through the fused one-row kernels' })
      .example('stratos serve --backend cpu --model tiny --port 8000', 'a tiny random model on the CPU, for trying the API')
      .example('stratos serve --backend gpu --model llama2-7b --cuda-graphs', '7B with random weights on the GPU')
      .example('stratos serve --backend gpu --checkpoint ~/Llama-2-7b-chat-hf', 'a Hugging Face checkpoint with its tokenizer and chat template')
      .example(
        `curl -s localhost:8000/v1/completions -H 'Content-Type: application/json' -d '{"model": "tiny", "prompt": "Hello", "max_tokens": 8}'`,
        'a completion (add "stream": true for server-sent events)',
      )
      .epilogue(
        [
          'Routes: POST /v1/completions (OpenAI completions: prompt as text or token ids; max_tokens, temperature, top_p, top_k, min_p, seed, stop, priority (lower is served first), stream, user, n (choices, each its own sequence; with a seed, choice i draws with seed + i), echo, logprobs 0 (each generated token\'s log probability; chat: logprobs true)); POST /v1/chat/completions (messages with roles system, user and assistant, rendered by the tokenizer\'s chat template; the same sampling fields); GET /v1/models, /health, /metrics (Prometheus text: requests by status, queue, KV blocks, tokens, TTFT / ITL / E2E histograms).',
          'Text goes through the checkpoint\'s tokenizer.json (or --tokenizer), which also sets the end of sequence; without one, byte by byte (UTF-8 bytes as the vocabulary\'s byte ids, no merges). Responses carry token_ids; vLLM\'s stop_token_ids and ignore_eos are accepted. Chat needs a chat template (chat_template in tokenizer_config.json, or chat_template.jinja).',
          'Refused with a 400 naming the field: best_of, top log probabilities (logprobs > 0, top_logprobs), penalties, tools. A client that disconnects frees its places in the batch and its KV blocks.',
        ].join('\n\n'),
      ),
  handler: async (args) => {
    const fail = (message: string): void => {
      process.stderr.write(`stratos serve: ${message}\n`);
      process.exitCode = 2;
    };
    const backend = args.backend ?? 'cpu';
    if (backend !== 'cpu' && backend !== 'gpu') return fail(`backend = ${backend}: allowed: cpu, gpu`);
    const model = args.model ?? 'tiny';
    const dtype = (args.dtype ?? (backend === 'gpu' ? 'bf16' : 'f32')) as 'bf16' | 'f32';
    if (dtype !== 'bf16' && dtype !== 'f32') return fail(`dtype = ${args.dtype}: allowed: bf16, f32`);
    if (!Number.isInteger(args.port) || args.port! < 0 || args.port! > 65535) return fail(`port = ${args.port}: must be an integer in [0, 65535]`);
    const { parseSimConfig } = await import('../../sim/config.js');
    const { schedulerConfig } = await import('../../sim/simulation.js');
    let config: SimConfig;
    try {
      if (args.checkpoint === undefined) modelConfig(model);
      const raw = rawSimConfig({ ...args, model: undefined });
      if (args['max-model-len'] !== undefined) raw.scheduler = { ...((raw.scheduler as object | undefined) ?? {}), maxSeqLenTokens: args['max-model-len'] };
      config = parseSimConfig(raw, args.config ?? 'flags');
    } catch (e) {
      return fail((e as Error).message);
    }
    try {
      const apiKey = args['api-key'] ?? process.env.STRATOS_API_KEY;
      if (apiKey === undefined && args.host !== '127.0.0.1' && args.host !== 'localhost') process.stderr.write(`stratos serve: listening on ${args.host} without --api-key: anyone who reaches it can use it\n`);
      // Before the model, which may take minutes to load: a bad tokenizer path fails at once.
      const tokenizerPath = args.tokenizer ?? (args.checkpoint !== undefined && existsSync(join(args.checkpoint, 'tokenizer.json')) ? args.checkpoint : undefined);
      const tokenizer = tokenizerPath !== undefined ? new HfTokenizer(tokenizerPath) : undefined;
      process.stderr.write(`stratos serve: loading ${args.checkpoint ?? `${model} (random weights, seed ${config.seed})`} on ${backend}…\n`);
      const built = await buildLlamaRunner(config, {
        backend, model, dtype,
        ...(args.checkpoint !== undefined ? { checkpoint: args.checkpoint } : {}),
        ...(args['kv-blocks'] !== undefined ? { numBlocks: args['kv-blocks'] } : {}),
        ...(args.adapters !== undefined ? { adaptersDir: args.adapters } : {}),
        ...(args['cuda-graphs'] === true ? { cudaGraphs: true } : {}),
        ...(args['fuse-decode'] === true ? { fuseDecode: true } : {}),
      });
      const adapters = ((built.loraInfo?.adapters as { name: string; tenant: string }[] | undefined) ?? []).map((a) => ({ name: a.name, tenant: a.tenant }));
      const modelName = args['served-model-name'] ?? (args.checkpoint !== undefined ? basename(args.checkpoint.replace(/\/+$/, '')) : model);
      const server = new EngineServer({
        scheduler: createScheduler(schedulerConfig(config, built.numBlocks)),
        runner: built.runner,
        modelName,
        adapters,
        maxContextTokens: config.scheduler.maxSeqLenTokens,
        seed: config.seed,
        ...(tokenizer !== undefined ? { tokenizer } : {}),
        ...(apiKey !== undefined && apiKey !== '' ? { apiKey } : {}),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const address = await server.listen(args.port ?? 8000, args.host ?? '127.0.0.1');
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      process.stdout.write(
        `stratos serve: ${modelName} on ${backend} (${built.weightsSource}; ${built.numBlocks} KV blocks of ${config.kv.pageSizeTokens} tokens; ` +
          `policy ${config.policy}; tokenizer ${server.tokenizer?.name ?? 'none (token ids only)'}${adapters.length > 0 ? `; ${adapters.length} adapters` : ''})\n` +
          `listening on http://${host}:${address.port}  (POST /v1/completions /v1/chat/completions, GET /v1/models /health /metrics; Ctrl-C stops)\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          process.stderr.write(`stratos serve: ${signal}, closing\n`);
          server.close().then(resolve, (e: unknown) => {
            process.stderr.write(`stratos serve: ${(e as Error).message}\n`);
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    } catch (e) {
      if (isUserError(e) || (e as NodeJS.ErrnoException).code === 'EADDRINUSE') return fail((e as Error).message);
      throw e;
    }
  },
};
