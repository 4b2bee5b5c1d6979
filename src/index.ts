// The public library API: the only door the CLI, the server and the web playground use.
export type { PhiConfig } from "./model/config.js";
export type { Engine, ForwardItem } from "./model/engine.js";
export type {
  SamplingOptions, GenerationOptions, FinishReason, GeneratedPiece, StepResult, TokenLogprob,
} from "./generation/types.js";
export { loadModel, type LoadOptions, type LoadedModel } from "./model/load.js";
