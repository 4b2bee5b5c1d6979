// One tensor-parallel partition of Phi-2, living in its own WebAssembly memory inside a worker:
// its heads' q/k/v rows and dense columns, its share of fc1 rows / fc2 columns and lm_head rows,
// its heads' KV cache, and activation buffers for up to maxTokens tokens per forward pass.
// Reads like modeling_phi.py's PhiDecoderLayer, one partition's share of it.
import { headDim, rotaryDim, type PhiConfig } from "./config.js";
import type { PartitionPlan, Range } from "./plan.js";
import type { LayerWeights, PhiWeights, WeightSlice } from "./weights.js";
import { FileReader, readColumns, readConverted, readRows, readVectorF32 } from "./weight-io.js";
import { computeDType, computeSliceDType, isWritable, type LoadQuant } from "./dtype.js";
import type { DType } from "../formats/tensor.js";
import { rowBytes } from "../formats/ggml-quants.js";
import { attentionF16ScratchBytes, createKernelMemory, instantiateKernels, type Kernels } from "../kernels/wasm.js";
import { linearScratchBytes, linearKernel, toKernelLayout, type LinearFn } from "./linear.js";

export interface PartitionSizes {
  config: PhiConfig;
  plan: PartitionPlan;
  slots: number;
  contextLength: number;
  /** Most tokens in one forward pass (the batch's rows). */
  maxTokens: number;
  /** Quantize float weights at load. */
  quant?: LoadQuant;
  /** The KV cache's element type (default f16). */
  kvType?: KvCacheType;
}

/**
 * Element type of the KV cache. f16 (llama.cpp's default) halves its memory (Phi-2: 0.67 instead of
 * 1.34 GB per 2048-token slot) and the bytes each decode step reads from it; f32 keeps keys and values
 * exactly as computed.
 */
export type KvCacheType = "f16" | "f32";
export const KV_CACHE_TYPES: readonly KvCacheType[] = ["f16", "f32"];

/** Bytes of one cached key or value element. */
export function kvElementBytes(kvType: KvCacheType = "f16"): number {
  return kvType === "f16" ? 2 : 4;
}

/** A matrix in wasm memory: pointer, dtype and the (N, K) it multiplies as. */
interface Matrix { ptr: number; dtype: DType; rows: number; cols: number }

interface LayerPtrs {
  ln_w: number; ln_b: number;
  q: Matrix; q_b: number; k: Matrix; k_b: number; v: Matrix; v_b: number;
  q_ln_w: number; q_ln_b: number; k_ln_w: number; k_ln_b: number;
  dense: Matrix; dense_b: number;
  fc1: Matrix; fc1_b: number;
  fc2: Matrix; fc2_b: number;
}

/** A batch as the worker sees it: tokens' positions and which slot/rows each sequence uses. */
export interface BatchItem { slot: number; row: number; len: number; startPos: number }

const ALIGN = 64;

/**
 * Byte layout of a partition's memory. Computing it without allocating lets the planner size
 * partitions before any worker starts.
 */
export class PartitionLayout {
  top: number;
  constructor(base: number) { this.top = base; }
  alloc(bytes: number): number {
    const p = Math.ceil(this.top / ALIGN) * ALIGN;
    this.top = p + bytes;
    return p;
  }
}

function matrixBytes(dtype: DType, rows: number, cols: number): number {
  return rows * rowBytes(dtype, cols);
}

/** Lays out (and, given a memory and reader, loads) everything a partition holds. */
function layout(s: PartitionSizes, weights: PhiWeights, L: PartitionLayout) {
  const c = s.config;
  const C = c.hidden_size, hd = headDim(c);
  const hp = s.plan.heads.end - s.plan.heads.start;
  const kvp = s.plan.kvHeads.end - s.plan.kvHeads.start;
  const ip = s.plan.inter.end - s.plan.inter.start;
  const vp = s.plan.vocab.end - s.plan.vocab.start;
  const T = s.maxTokens;
  const f32 = (n: number) => L.alloc(4 * n);
  const mat = (w: WeightSlice, rows: number, cols: number): Matrix => {
    const dtype = computeDType(w.ref.dtype, w.cols, s.quant);
    return { ptr: L.alloc(matrixBytes(dtype, rows, cols)), dtype, rows, cols };
  };
  /** A column-split matrix: this partition's columns [c0, c1). */
  const colMat = (w: WeightSlice, rows: number, c0: number, c1: number): Matrix => {
    const dtype = computeSliceDType(w.ref.dtype, w.cols, c0, c1, s.quant);
    return { ptr: L.alloc(matrixBytes(dtype, rows, c1 - c0)), dtype, rows, cols: c1 - c0 };
  };

  const layers: LayerPtrs[] = weights.layers.map((lw: LayerWeights) => ({
    ln_w: f32(C), ln_b: f32(C),
    q: mat(lw.q_w, hp * hd, C), q_b: f32(hp * hd),
    k: mat(lw.k_w, kvp * hd, C), k_b: f32(kvp * hd),
    v: mat(lw.v_w, kvp * hd, C), v_b: f32(kvp * hd),
    q_ln_w: c.qk_layernorm ? f32(hd) : 0, q_ln_b: c.qk_layernorm ? f32(hd) : 0,
    k_ln_w: c.qk_layernorm ? f32(hd) : 0, k_ln_b: c.qk_layernorm ? f32(hd) : 0,
    dense: colMat(lw.dense_w, C, s.plan.heads.start * hd, s.plan.heads.end * hd), dense_b: f32(C),
    fc1: mat(lw.fc1_w, ip, C), fc1_b: f32(ip),
    fc2: colMat(lw.fc2_w, C, s.plan.inter.start, s.plan.inter.end), fc2_b: f32(C),
  }));
  const final_ln_w = f32(C), final_ln_b = f32(C);
  const lm = mat(weights.lm_head_w, vp, C);
  const lm_b = f32(vp);

  // Activations, (T, ·) row-major.
  const maxK = Math.max(C, ip, hp * hd);
  const act = {
    x: f32(T * C),            // residual stream (T, C), identical in every partition
    h: f32(T * C),            // normed input (T, C)
    q: f32(T * hp * hd),      // (T, hp*hd)
    k: f32(T * kvp * hd),     // (T, kvp*hd)
    v: f32(T * kvp * hd),
    att: f32(T * hp * hd),    // attention output before dense (T, hp*hd)
    ff: f32(T * ip),          // fc1 / gelu output (T, ip)
    partial: f32(T * C),      // this partition's dense + fc2 partial sum (T, C)
    incoming: f32(T * C),     // another partition's partial, copied in for the reduction
    logits: f32(T * vp),      // (rows, vp)
    positions: L.alloc(4 * T),
    attnScratch: L.alloc(s.kvType === "f32" ? 4 * (s.contextLength + 16) : attentionF16ScratchBytes(s.contextLength - 1, hd)),
    linearScratch: L.alloc(linearScratchBytes(T, maxK)),
  };
  // KV cache: (layers, slots, ctx, kvp*hd) for k and for v.
  const kvStride = s.contextLength * kvp * hd * kvElementBytes(s.kvType); // bytes of one (layer, slot) cache
  const kCache = L.alloc(c.num_hidden_layers * s.slots * kvStride);
  const vCache = L.alloc(c.num_hidden_layers * s.slots * kvStride);
  return { layers, final_ln_w, final_ln_b, lm, lm_b, act, kCache, vCache, kvStride, hp, kvp, ip, vp };
}

export function partitionBytes(s: PartitionSizes, weights: PhiWeights, reserved = 65536): number {
  const L = new PartitionLayout(reserved);
  layout(s, weights, L);
  return L.top;
}

export class Partition {
  readonly memory: WebAssembly.Memory;
  private readonly k: Kernels;
  private readonly m: ReturnType<typeof layout>;
  private readonly lin: Record<string, LinearFn> = {};
  private f32!: Float32Array;
  private u8!: Uint8Array;
  private i32!: Int32Array;

  constructor(readonly sizes: PartitionSizes, private readonly weights: PhiWeights) {
    // Instantiate on the smallest memory to learn where the kernels' static data ends, then grow to
    // the layout (wasm memories grow in place: no copy).
    this.memory = createKernelMemory(0);
    this.k = instantiateKernels(this.memory);
    const L = new PartitionLayout(this.k.reservedBytes);
    this.m = layout(sizes, weights, L);
    const pages = Math.ceil(L.top / 65536);
    const have = this.memory.buffer.byteLength / 65536;
    if (pages > have) this.memory.grow(pages - have);
    this.views();
  }

  private views(): void {
    this.f32 = new Float32Array(this.memory.buffer);
    this.u8 = new Uint8Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  private linear(out: number, x: number, w: Matrix, bias: number, T: number, accumulate: boolean): void {
    let fn = this.lin[w.dtype];
    if (!fn) fn = this.lin[w.dtype] = linearKernel(this.k, w.dtype);
    fn(out, x, w.ptr, bias, T, w.cols, w.rows, accumulate ? 1 : 0, this.m.act.linearScratch);
  }

  /** Reads this partition's share of every weight from the files into place. */
  load(io: FileReader, onProgress?: () => void): void {
    const { plan, config } = this.sizes;
    const hd = headDim(config);
    const f32 = this.f32;
    const vec = (s: WeightSlice, at: number, e0 = 0, e1 = s.rows) => readVectorF32(io, s, e0, e1, f32, at / 4);
    const q: Range = { start: plan.heads.start * hd, end: plan.heads.end * hd };
    const kv: Range = { start: plan.kvHeads.start * hd, end: plan.kvHeads.end * hd };
    const { inter, vocab } = plan;
    const rows = (w: WeightSlice, m: Matrix, r: Range) => this.loadMatrix(io, w, m, r, { start: 0, end: w.cols });
    const cols = (w: WeightSlice, m: Matrix, c: Range) => this.loadMatrix(io, w, m, { start: 0, end: w.rows }, c);
    this.weights.layers.forEach((w, l) => {
      const p = this.m.layers[l]!;
      vec(w.ln_w, p.ln_w); vec(w.ln_b, p.ln_b);
      rows(w.q_w, p.q, q); vec(w.q_b, p.q_b, q.start, q.end);
      rows(w.k_w, p.k, kv); vec(w.k_b, p.k_b, kv.start, kv.end);
      rows(w.v_w, p.v, kv); vec(w.v_b, p.v_b, kv.start, kv.end);
      if (config.qk_layernorm) {
        vec(w.q_ln_w!, p.q_ln_w); vec(w.q_ln_b!, p.q_ln_b);
        vec(w.k_ln_w!, p.k_ln_w); vec(w.k_ln_b!, p.k_ln_b);
      }
      cols(w.dense_w, p.dense, q); vec(w.dense_b, p.dense_b);
      rows(w.fc1_w, p.fc1, inter); vec(w.fc1_b, p.fc1_b, inter.start, inter.end);
      cols(w.fc2_w, p.fc2, inter); vec(w.fc2_b, p.fc2_b);
      onProgress?.();
    });
    vec(this.weights.final_ln_w, this.m.final_ln_w); vec(this.weights.final_ln_b, this.m.final_ln_b);
    rows(this.weights.lm_head_w, this.m.lm, vocab);
    vec(this.weights.lm_head_b, this.m.lm_b, vocab.start, vocab.end);
    onProgress?.();
  }

  /** Rows r × columns c of a weight into its matrix, re-encoding when the held type differs. */
  private loadMatrix(io: FileReader, w: WeightSlice, m: Matrix, r: Range, c: Range): void {
    if (m.dtype !== w.ref.dtype) {
      if (!isWritable(m.dtype)) throw new Error(`cannot convert ${w.ref.name} to ${m.dtype}`);
      readConverted(io, w, r.start, r.end, c.start, c.end, m.dtype, this.u8, m.ptr);
    } else if (c.start === 0 && c.end === w.cols) {
      readRows(io, w, r.start, r.end, this.u8, m.ptr);
    } else {
      readColumns(io, w, c.start, c.end, this.u8, m.ptr);
    }
    toKernelLayout(this.k, m.dtype, m.ptr, m.rows, m.cols, this.m.act.linearScratch);
  }

  /** Starts a forward pass: the embedded tokens (T, C) become the residual stream. */
  begin(input: Float32Array, positions: Int32Array, T: number): void {
    const C = this.sizes.config.hidden_size;
    this.f32.set(input.subarray(0, T * C), this.m.act.x / 4);
    this.i32.set(positions.subarray(0, T), this.m.act.positions / 4);
  }

  /**
   * Layer l's share: h = LN(x); attention over this partition's heads; MLP over its units;
   * returns the partial (T, C) = dense_p(attn_p) + fc2_p(gelu(fc1_p(h))) as a view of memory.
   */
  layer(l: number, T: number, items: BatchItem[]): Float32Array {
    const c = this.sizes.config, C = c.hidden_size, hd = headDim(c);
    const { act } = this.m;
    const p = this.m.layers[l]!;
    const k = this.k;
    const { hp, kvp, ip } = this.m;
    k.layernorm(act.h, act.x, p.ln_w, p.ln_b, T, C, c.layer_norm_eps);

    this.linear(act.q, act.h, p.q, p.q_b, T, false);
    this.linear(act.k, act.h, p.k, p.k_b, T, false);
    this.linear(act.v, act.h, p.v, p.v_b, T, false);
    if (c.qk_layernorm) {
      k.layernorm(act.q, act.q, p.q_ln_w, p.q_ln_b, T * hp, hd, c.layer_norm_eps);
      k.layernorm(act.k, act.k, p.k_ln_w, p.k_ln_b, T * kvp, hd, c.layer_norm_eps);
    }
    const rd = rotaryDim(c);
    k.rope(act.q, T, hp * hd, hp, hd, rd, act.positions, c.rope_theta);
    k.rope(act.k, T, kvp * hd, kvp, hd, rd, act.positions, c.rope_theta);

    // Append this step's keys/values to each sequence's cache, then attend (causal, scores in f32).
    const kvValues = kvp * hd;           // per position
    const kvRow = kvValues * 4;          // bytes per position in act.k / act.v
    const f16 = this.sizes.kvType !== "f32";
    const cacheRow = kvValues * kvElementBytes(this.sizes.kvType);
    const scale = 1 / Math.sqrt(hd);
    for (const it of items) {
      const kBase = this.m.kCache + (l * this.sizes.slots + it.slot) * this.m.kvStride;
      const vBase = this.m.vCache + (l * this.sizes.slots + it.slot) * this.m.kvStride;
      const kSrc = act.k + it.row * kvRow, vSrc = act.v + it.row * kvRow;
      const kDst = kBase + it.startPos * cacheRow, vDst = vBase + it.startPos * cacheRow;
      if (f16) {
        k.convert_f32_to_f16(kDst, kSrc, it.len * kvValues);
        k.convert_f32_to_f16(vDst, vSrc, it.len * kvValues);
      } else {
        this.u8.copyWithin(kDst, kSrc, kSrc + it.len * kvRow);
        this.u8.copyWithin(vDst, vSrc, vSrc + it.len * kvRow);
      }
      (f16 ? k.attention_f16 : k.attention)(
        act.att + it.row * hp * hd * 4, act.q + it.row * hp * hd * 4, it.len, act.positions + it.row * 4,
        kBase, vBase, hp, kvp, hd, scale, act.attnScratch,
      );
    }
    this.linear(act.partial, act.att, p.dense, 0, T, false);

    this.linear(act.ff, act.h, p.fc1, p.fc1_b, T, false);
    k.gelu_new(act.ff, T * ip);
    this.linear(act.partial, act.ff, p.fc2, 0, T, true);
    return this.f32.subarray(act.partial / 4, act.partial / 4 + T * C);
  }

  /** x += Σ partials (in partition order, so every partition's x stays bit-identical) + biases. */
  reduce(l: number, T: number, partials: Float32Array[]): void {
    const C = this.sizes.config.hidden_size;
    const { act } = this.m;
    const p = this.m.layers[l]!;
    for (const part of partials) {
      this.f32.set(part.subarray(0, T * C), act.incoming / 4);
      this.k.add(act.x, act.incoming, T * C);
    }
    this.k.add_bias(act.x, p.dense_b, T, C);
    this.k.add_bias(act.x, p.fc2_b, T, C);
  }

  /**
   * Final LayerNorm + this partition's lm_head rows for the given residual rows.
   * Returns (rows.length, vp) logits as a view of memory.
   */
  logits(rows: number[]): Float32Array {
    const c = this.sizes.config, C = c.hidden_size;
    const { act, vp } = this.m;
    const R = rows.length;
    rows.forEach((r, i) => this.f32.copyWithin(act.h / 4 + i * C, act.x / 4 + r * C, act.x / 4 + (r + 1) * C));
    this.k.layernorm(act.h, act.h, this.m.final_ln_w, this.m.final_ln_b, R, C, c.layer_norm_eps);
    this.linear(act.logits, act.h, this.m.lm, this.m.lm_b, R, false);
    return this.f32.subarray(act.logits / 4, act.logits / 4 + R * vp);
  }
}
