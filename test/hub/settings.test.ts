// Where the cache and the token come from, in huggingface_hub's order; GGUF quant labels; spec parsing.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { hubCacheDir, hubSettings } from "../../src/hub/settings.js";
import { ggufQuantLabel, looksLikeHubId, parseModelSpec, pickGguf } from "../../src/hub/select.js";

test("cache folder: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME/huggingface/hub, then ~/.cache", () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: "/a", HF_HOME: "/b" }), "/a");
  assert.equal(hubCacheDir({ HF_HOME: "/b", XDG_CACHE_HOME: "/c" }), "/b/hub");
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: "/c" }), "/c/huggingface/hub");
  assert.equal(hubCacheDir({}), join(homedir(), ".cache", "huggingface", "hub"));
});

test("endpoint, token and offline flag", () => {
  const home = mkdtempSync(join(tmpdir(), "phi2-hf-home-"));
  writeFileSync(join(home, "token"), "hf_saved\n");
  assert.equal(hubSettings({ env: { HF_HOME: home } }).token, "hf_saved", "token file written by `huggingface-cli login`");
  assert.equal(hubSettings({ env: { HF_HOME: home, HF_TOKEN: "hf_env" } }).token, "hf_env");
  assert.equal(hubSettings({ env: {} }).endpoint, "https://huggingface.co");
  assert.equal(hubSettings({ env: { HF_ENDPOINT: "https://hf-mirror.com/" } }).endpoint, "https://hf-mirror.com");
  assert.equal(hubSettings({ hubUrl: "http://127.0.0.1:1", env: { HF_ENDPOINT: "https://x" } }).endpoint, "http://127.0.0.1:1");
  assert.throws(() => hubSettings({ hubUrl: "huggingface.co", env: {} }), /--hub-url/);
  for (const v of ["1", "true", "YES", "on"]) assert.equal(hubSettings({ env: { HF_HUB_OFFLINE: v } }).offline, true, v);
  for (const v of ["0", "", "false"]) assert.equal(hubSettings({ env: { HF_HUB_OFFLINE: v } }).offline, false, v);
});

test("as huggingface_hub's constants.py: TRANSFORMERS_OFFLINE, and an empty HF_TOKEN falls through", () => {
  const home = mkdtempSync(join(tmpdir(), "phi2-hf-home-"));
  assert.equal(hubSettings({ env: { HF_HOME: home, TRANSFORMERS_OFFLINE: "1" } }).offline, true);
  assert.equal(hubSettings({ env: { HF_HOME: home, HF_HUB_OFFLINE: "", TRANSFORMERS_OFFLINE: "1" } }).offline, true);
  assert.equal(hubSettings({ env: { HF_HOME: home, HF_HUB_OFFLINE: "0", TRANSFORMERS_OFFLINE: "1" } }).offline, false, "a set HF_HUB_OFFLINE wins");
  assert.equal(hubSettings({ env: { HF_HOME: home, HF_TOKEN: "", HUGGING_FACE_HUB_TOKEN: "hf_old" } }).token, "hf_old");
});

test("GGUF quant labels as TheBloke and llama.cpp name their files", () => {
  assert.equal(ggufQuantLabel("phi-2.Q4_K_M.gguf"), "Q4_K_M");
  assert.equal(ggufQuantLabel("phi-2.Q8_0.gguf"), "Q8_0");
  assert.equal(ggufQuantLabel("ggml-model-f16.gguf"), "F16");
  assert.equal(ggufQuantLabel("phi-2-IQ2_XXS.gguf"), "IQ2_XXS");
  assert.equal(ggufQuantLabel("sub/phi-2.Q5_K_S-00001-of-00002.gguf"), "Q5_K_S");
  assert.equal(ggufQuantLabel("model.safetensors"), undefined);
  const files = ["phi-2.Q4_K.gguf", "phi-2.Q4_K_M.gguf", "x.Q6_K-00002-of-00002.gguf", "x.Q6_K-00001-of-00002.gguf"];
  assert.deepEqual(pickGguf("r", files, "Q4_K"), { files: ["phi-2.Q4_K.gguf"], entry: "phi-2.Q4_K.gguf" }, "Q4_K is not Q4_K_M");
  assert.deepEqual(pickGguf("r", files, "q6_k").files, ["x.Q6_K-00001-of-00002.gguf", "x.Q6_K-00002-of-00002.gguf"]);
  assert.equal(pickGguf("r", files, "phi-2.Q4_K_M.gguf").entry, "phi-2.Q4_K_M.gguf", "an exact file name works too");
});

test("model specs", () => {
  assert.deepEqual(parseModelSpec("microsoft/phi-2"), { repo: "microsoft/phi-2" });
  assert.deepEqual(parseModelSpec("TheBloke/phi-2-GGUF:Q4_K_M"), { repo: "TheBloke/phi-2-GGUF", quant: "Q4_K_M" });
  for (const bad of ["phi-2", "/abs/path", "a/b/c", "../x/y", "a--b/c", ""]) assert.equal(looksLikeHubId(bad), false, bad);
});

test("GGUF picks as llama.cpp's -hf: Q4_K_M by default among several, else the first file, projectors never, name tails as labels", () => {
  const files = ["phi-2.Q2_K.gguf", "phi-2.Q4_K_M.gguf", "phi-2.Q8_0.gguf", "README.md"];
  assert.equal(pickGguf("r", files, undefined).entry, "phi-2.Q4_K_M.gguf");
  // no Q4_K_M: the first file by name, as llama.cpp's -hf falls back, said in a note; a split file whole
  const noDefault = pickGguf("r", ["mmproj-a-f16.gguf", "a.Q8_0.gguf", "a.Q2_K-00002-of-00002.gguf", "a.Q2_K-00001-of-00002.gguf"], undefined);
  assert.deepEqual(noDefault.files, ["a.Q2_K-00001-of-00002.gguf", "a.Q2_K-00002-of-00002.gguf"]);
  assert.equal(noDefault.entry, "a.Q2_K-00001-of-00002.gguf");
  assert.match(noDefault.note ?? "", /^r has no Q4_K_M; using Q2_K \(a\.Q2_K-00001-of-00002\.gguf\), its first GGUF file, as llama\.cpp's -hf does; choose another as r:QUANT \(available: Q2_K, Q8_0\)$/);
  assert.equal(pickGguf("r", files, undefined).note, undefined, "no note when Q4_K_M is there");
  const vision = ["phi-3-vision-f16.gguf", "mmproj-model-f16.gguf"];
  assert.deepEqual(pickGguf("r", vision, "F16"), { files: ["phi-3-vision-f16.gguf"], entry: "phi-3-vision-f16.gguf" });
  assert.deepEqual(pickGguf("r", vision, undefined).files, ["phi-3-vision-f16.gguf"]);
  const unsloth = ["phi-2-UD-Q4_K_XL.gguf", "phi-2-Q4_K_M.gguf"];
  assert.equal(pickGguf("r", unsloth, "UD-Q4_K_XL").entry, "phi-2-UD-Q4_K_XL.gguf");
  assert.equal(pickGguf("r", unsloth, "q4_k_xl").entry, "phi-2-UD-Q4_K_XL.gguf");
  assert.throws(() => pickGguf("r", unsloth, "K_XL"), /no GGUF file for quantization "K_XL"/);
});
