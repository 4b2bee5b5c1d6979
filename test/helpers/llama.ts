// llama.cpp (through node-llama-cpp's prebuilt CPU binaries) as an independent oracle for the parity
// tests: greedy continuations, next-token probabilities and tokenization of the very GGUF files our
// engine loads. Never downloads or builds anything: a missing prebuilt binary is an error.
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";

let llamaPromise: Promise<Llama> | undefined;

/** The process-wide llama.cpp backend: CPU only, prebuilt binary only, quiet. */
export function cpuLlama(): Promise<Llama> {
  // Read by node-llama-cpp's install/build paths; set before its module is first loaded.
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
  llamaPromise ??= import("node-llama-cpp").then(({ getLlama, LlamaLogLevel }) =>
    getLlama({
      gpu: false,
      build: "never",
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.error,
    }),
  );
  return llamaPromise;
}

export interface LlamaCppOptions {
  threads: number;
  /** Tokens the context holds (also the batch size, so a prompt is one batch). */
  contextSize: number;
  /**
   * KV-cache precision. llama.cpp's default (and ours) is "f16"; "f32" (llama.cpp's -ctk/-ctv f32)
   * removes the rounding of keys and values on both sides when ours runs kvType "f32" too, so the
   * comparison measures the implementations. Default "f32".
   */
  kvCache?: "f16" | "f32";
  /**
   * llama.cpp's flash-attention kernel. Default false: measured on the f16 test models, it moves
   * llama.cpp's logits further from a float64 forward pass than the plain attention path does.
   */
  flashAttention?: boolean;
}

export interface GreedyResult {
  tokens: number[];
  /** Per step: log p(top-1) - log p(top-2) = the top-1 logit's lead, as llama.cpp computed it. */
  margins: number[];
}

/** One GGUF file loaded in llama.cpp with a one-sequence context. */
export class LlamaCppModel {
  private constructor(
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
  ) {}

  static async open(file: string, options: LlamaCppOptions): Promise<LlamaCppModel> {
    const llama = await cpuLlama();
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: true });
    const context = await model.createContext({
      contextSize: options.contextSize,
      batchSize: options.contextSize,
      threads: { ideal: options.threads, min: options.threads },
      sequences: 1,
      flashAttention: options.flashAttention ?? false,
      // node-llama-cpp marks these options experimental (some cache types are unstable on some
      // backends); F32 and F16 are llama.cpp's plain cache types, and every test here runs them on the CPU.
      experimentalKvCacheKeyType: options.kvCache === "f16" ? "F16" : "F32",
      experimentalKvCacheValueType: options.kvCache === "f16" ? "F16" : "F32",
    });
    return new LlamaCppModel(model, context, context.getSequence());
  }

  /** llama.cpp's tokenization (no BOS: common_tokenize with add_special = false). */
  tokenize(text: string, parseSpecial: boolean): number[] {
    return this.model.tokenize(text, parseSpecial);
  }

  detokenize(ids: readonly number[]): string {
    return this.model.detokenize(ids as Token[], true);
  }

  /**
   * llama.cpp's own greedy decoding (its greedy sampler, temperature 0) of `count` tokens after
   * `prompt`, evaluated from an empty KV cache, with each step's top-1 lead. `neverIds` get
   * llama.cpp's "never" bias (our sampler never picks phi-2's padding rows 50295..51199; llama.cpp's
   * greedy sampler would).
   */
  async greedy(prompt: readonly number[], count: number, neverIds: readonly number[] = []): Promise<GreedyResult> {
    const { TokenBias } = await import("node-llama-cpp");
    await this.sequence.clearHistory();
    const tokenBias = new TokenBias(this.model.tokenizer);
    if (neverIds.length > 0) tokenBias.set(neverIds as Token[], "never");
    const tokens: number[] = [];
    const margins: number[] = [];
    const steps = this.sequence.evaluateWithMetadata(prompt as Token[], { probabilities: true }, { temperature: 0, tokenBias });
    for await (const { token, probabilities } of steps) {
      const [first, second] = probabilities.values(); // sorted by probability, highest first
      tokens.push(token);
      margins.push(Math.log(first!) - Math.log(second!));
      if (tokens.length >= count) break;
    }
    return { tokens, margins };
  }

  /**
   * softmax(logits) over the whole vocabulary after prompt[0..p] for each p in `positions`, from one
   * evaluation of the prompt. The greedy sampler leaves the logits untouched, so node-llama-cpp's
   * probabilities are exactly the softmax of llama.cpp's raw logits (addon: AddonContext SampleToken).
   */
  async nextTokenProbabilities(prompt: readonly number[], positions: readonly number[]): Promise<Float64Array[]> {
    await this.sequence.clearHistory();
    const wanted = new Set(positions);
    const input = prompt.map((t, i) =>
      wanted.has(i)
        ? ([t as Token, { generateNext: { probabilities: true, options: { temperature: 0 } } }] as const)
        : (t as Token),
    );
    const results = await this.sequence.controlledEvaluate(input as never);
    return positions.map((p) => {
      const probs = results[p]?.next.probabilities;
      if (!probs) throw new Error(`llama.cpp returned no probabilities for position ${p}`);
      // The map holds every candidate = the whole vocabulary (no sampler before greedy removes any).
      const out = new Float64Array(probs.size);
      for (const [id, pr] of probs) {
        if (id >= out.length) throw new Error(`llama.cpp returned token id ${id} outside its ${out.length} candidates`);
        out[id] = pr;
      }
      return out;
    });
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
