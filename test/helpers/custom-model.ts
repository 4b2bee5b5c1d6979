// Hand-made model folders: every tensor given explicitly, for tests whose expected output is worked
// out by hand (or for broken folders).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors, type SafetensorsWriteDType } from "../../src/formats/safetensors.js";
import { PHI2_CONFIG, type PhiConfig } from "../../src/model/config.js";
import { hfConfigJson } from "../../src/testing/make-test-model.js";

export interface CustomTensor {
  shape: number[];
  values: ArrayLike<number>;
}

/** Little-endian bytes of `values` as F32 (exact) or F16 / BF16 (values must be representable: truncation is not rounding). */
export function encode(values: ArrayLike<number>, dtype: SafetensorsWriteDType): Uint8Array {
  const n = values.length;
  if (dtype === "F32") return new Uint8Array(Float32Array.from(values).buffer);
  const out = new DataView(new ArrayBuffer(2 * n));
  const f = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < n; i++) {
    f.setFloat32(0, values[i], true);
    const bits = f.getUint32(0, true);
    if (dtype === "BF16") {
      if ((bits & 0xffff) !== 0) throw new Error(`encode: ${values[i]} is not exactly representable in bf16`);
      out.setUint16(2 * i, bits >>> 16, true);
    } else {
      out.setUint16(2 * i, f16Bits(values[i]), true);
    }
  }
  return new Uint8Array(out.buffer);
}

/** Exact f16 bits of a normal number representable in f16 (throws otherwise). */
function f16Bits(x: number): number {
  if (x === 0) return Object.is(x, -0) ? 0x8000 : 0;
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  const e = Math.floor(Math.log2(a));
  const man = a / 2 ** e - 1;
  const m = man * 1024;
  if (e < -14 || e > 15 || m !== Math.round(m)) throw new Error(`encode: ${x} is not exactly representable in f16 (normal range)`);
  return sign | ((e + 15) << 10) | m;
}

/** Writes model.safetensors with the given tensors (in the given order) and, unless config is null, config.json. */
export function writeCustomModel(
  dir: string,
  config: Partial<PhiConfig> | null,
  tensors: Record<string, CustomTensor>,
  dtype: SafetensorsWriteDType = "F32",
  file = "model.safetensors",
): void {
  writeSafetensors(
    join(dir, file),
    Object.entries(tensors).map(([name, t]) => {
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (size !== t.values.length) throw new Error(`writeCustomModel: ${name} has ${t.values.length} values for shape [${t.shape}]`);
      return { name, dtype, shape: t.shape, chunks: () => [encode(t.values, dtype)] };
    }),
  );
  if (config) writeFileSync(join(dir, "config.json"), JSON.stringify(hfConfigJson({ ...PHI2_CONFIG, ...config }, "float32"), null, 2));
}

/** Every tensor of a phi model with the given sizes, filled by `fill(name, shape)` (default zeros). */
export function phiTensors(
  c: Pick<PhiConfig, "hidden_size" | "intermediate_size" | "num_hidden_layers" | "num_attention_heads" | "num_key_value_heads" | "vocab_size"> &
    Partial<Pick<PhiConfig, "qk_layernorm">>,
  fill: (name: string, shape: number[]) => ArrayLike<number> | undefined = () => undefined,
): Record<string, CustomTensor> {
  const C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const hd = C / c.num_attention_heads, q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  const out: Record<string, CustomTensor> = {};
  const t = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    out[name] = { shape, values: fill(name, shape) ?? new Float32Array(size) };
  };
  t("model.embed_tokens.weight", [V, C]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    t(`${p}.input_layernorm.weight`, [C]); t(`${p}.input_layernorm.bias`, [C]);
    t(`${p}.self_attn.q_proj.weight`, [q, C]); t(`${p}.self_attn.q_proj.bias`, [q]);
    t(`${p}.self_attn.k_proj.weight`, [kv, C]); t(`${p}.self_attn.k_proj.bias`, [kv]);
    t(`${p}.self_attn.v_proj.weight`, [kv, C]); t(`${p}.self_attn.v_proj.bias`, [kv]);
    if (c.qk_layernorm) {
      t(`${p}.self_attn.q_layernorm.weight`, [hd]); t(`${p}.self_attn.q_layernorm.bias`, [hd]);
      t(`${p}.self_attn.k_layernorm.weight`, [hd]); t(`${p}.self_attn.k_layernorm.bias`, [hd]);
    }
    t(`${p}.self_attn.dense.weight`, [C, q]); t(`${p}.self_attn.dense.bias`, [C]);
    t(`${p}.mlp.fc1.weight`, [I, C]); t(`${p}.mlp.fc1.bias`, [I]);
    t(`${p}.mlp.fc2.weight`, [C, I]); t(`${p}.mlp.fc2.bias`, [C]);
  }
  t("model.final_layernorm.weight", [C]); t("model.final_layernorm.bias", [C]);
  t("lm_head.weight", [V, C]); t("lm_head.bias", [V]);
  return out;
}
