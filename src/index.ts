// The public library API: the only door the CLI, the server and the web playground use.
export type { PhiConfig } from "./model/config.js";
export type { Engine, ForwardItem } from "./model/engine.js";
export type {
  SamplingOptions, GenerationOptions, FinishReason, GeneratedPiece, StepResult, TokenLogprob,
} from "./generation/types.js";
export { loadModel, type LoadOptions, type LoadedModel } from "./model/load.js";
// Generation as a state machine a caller steps (the server's scheduler steps many in one batch) and
// phi-2's chat rendering.
export { GenerationSequence, type SequenceOptions, type SequenceTokenizer } from "./generation/sequence.js";
export { renderChat, DEFAULT_CHAT_NAMES, type ChatNames, type FormattedPrompt } from "./generation/formats.js";
