// The public library API: the only door the CLI, the server and the web playground use.
export { Phi2, type Phi2LoadOptions, type Phi2GenerateOptions, type Phi2ChatOptions, type Phi2ChatResult } from "./phi2.js";
export type { PhiConfig } from "./model/config.js";
export type { Engine, ForwardItem } from "./model/engine.js";
export type {
  SamplingOptions, GenerationOptions, FinishReason, GeneratedPiece, StepResult, TokenLogprob,
} from "./generation/types.js";
export { loadModel, loadTokenizer, type LoadOptions, type LoadedModel } from "./model/load.js";
export { KV_CACHE_TYPES, type KvCacheType } from "./model/partition.js";
export { Phi2Tokenizer } from "./tokenizer/tokenizer.js";
export { StreamDetokenizer } from "./tokenizer/stream.js";
export { generate, generateText, type GenerateOptions, type GenerationResult, type GenerationTimings } from "./generation/generate.js";
export { formatPrompt, defaultStops, PROMPT_FORMATS, type PromptFormat } from "./generation/formats.js";
// Model download from the Hugging Face hub (cache shared with huggingface_hub).
export { resolveModel, pullModel, type HubOptions, type ResolvedModel } from "./hub/resolve.js";
export { DEFAULT_MODEL_ID, looksLikeHubId } from "./hub/select.js";
export { HubError, type HubErrorKind } from "./hub/errors.js";
export { hubCacheDir } from "./hub/settings.js";
export { stderrProgress, formatBytes, type DownloadProgress, type ProgressListener } from "./hub/progress.js";
// The web playground's static files (src/web), served by `phi2 serve` at /.
export { webRoot, readPlaygroundAsset, PLAYGROUND_ASSETS, type PlaygroundAsset } from "./web-root.js";
// Generation as a state machine a caller steps (the server's scheduler steps many in one batch) and
// phi-2's chat rendering.
export { GenerationSequence, type SequenceOptions, type SequenceTokenizer } from "./generation/sequence.js";
export { renderChat, DEFAULT_CHAT_NAMES, type ChatNames, type ChatMessage, type FormattedPrompt } from "./generation/formats.js";
// GGUF conversion (phi2 quantize).
export { quantizeModel, QUANTIZE_TYPES, type QuantizeType, type QuantizeOptions, type QuantizeResult } from "./formats/gguf-quantize.js";
