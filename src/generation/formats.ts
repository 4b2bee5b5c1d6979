// Prompt formats from the phi-2 model card, with the stop strings that end an answer. Phi-2 is a base
// model: after answering it happily writes the next "Instruct:" or the next "Alice:" turn itself, so
// stopping there is what makes it usable.
//
//   qa:   "Instruct: <prompt>\nOutput:"
//   chat: "Alice: <msg>\nBob:"            (names configurable; the model's turn ends at "\nAlice:")
//   code: the prompt as is (a signature + docstring); the model completes the body.
//   raw:  the prompt as is, no stops beyond EOS.

export type PromptFormat = "raw" | "qa" | "chat" | "code";

export const PROMPT_FORMATS: readonly PromptFormat[] = ["raw", "qa", "chat", "code"];

export interface ChatNames {
  /** Name of the human turns (default "Alice", as in the model card). */
  user: string;
  /** Name of the model's turns (default "Bob"). */
  assistant: string;
}

export const DEFAULT_CHAT_NAMES: ChatNames = { user: "Alice", assistant: "Bob" };

/** The EOS token's text: phi-2 sometimes writes it as plain text instead of emitting the token. */
export const EOS_TEXT = "<|endoftext|>";

/**
 * Code stops: the ones used to evaluate code models on HumanEval since Codex (Chen et al. 2021,
 * "Evaluating Large Language Models Trained on Code": "\nclass", "\ndef", "\n#", "\nif", "\nprint"),
 * plus "\n@" (a decorator) as bigcode-evaluation-harness and transformers' codeparrot example add.
 * The code format completes a function body (the model card's example), and a finished body is
 * followed by code back at column 0 that starts with one of these; without them phi-2 goes on writing
 * more functions, tests and prints.
 */
export const CODE_STOPS: readonly string[] = ["\nclass", "\ndef", "\n#", "\n@", "\nif", "\nprint"];

export interface FormattedPrompt {
  prompt: string;
  /** Default stop strings of the format (callers may add their own). */
  stop: string[];
}

export function isPromptFormat(value: string): value is PromptFormat {
  return (PROMPT_FORMATS as readonly string[]).includes(value);
}

/** Default stop strings of a format. */
export function defaultStops(format: PromptFormat, names: ChatNames = DEFAULT_CHAT_NAMES): string[] {
  switch (format) {
    case "raw":
      return [];
    case "qa":
      return ["\nInstruct:", "\nOutput:", EOS_TEXT];
    case "chat":
      return [`\n${names.user}:`, EOS_TEXT];
    case "code":
      return [...CODE_STOPS, EOS_TEXT];
  }
}

/** Wraps a single prompt in a format. */
export function formatPrompt(format: PromptFormat, prompt: string, names: ChatNames = DEFAULT_CHAT_NAMES): FormattedPrompt {
  switch (format) {
    case "raw":
    case "code":
      return { prompt, stop: defaultStops(format, names) };
    case "qa":
      return { prompt: `Instruct: ${prompt.trim()}\nOutput:`, stop: defaultStops(format, names) };
    case "chat":
      return renderChat([{ role: "user", content: prompt }], names);
    default:
      // reachable from JavaScript callers, which the type does not bind
      throw new RangeError(`format must be one of ${PROMPT_FORMATS.join(", ")}, got ${JSON.stringify(format)}`);
  }
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/**
 * A conversation as phi-2 chat text: system messages as plain lines (a preamble), user turns as
 * "Alice: ...", assistant turns as "Bob: ...", one per line, ending with "Bob:" for the model to fill.
 */
export function renderChat(messages: readonly ChatMessage[], names: ChatNames = DEFAULT_CHAT_NAMES): FormattedPrompt {
  if (messages.length === 0) throw new Error("renderChat: messages must not be empty");
  const lines = messages.map((m, i) => {
    const content = typeof m.content === "string" ? m.content.trim() : undefined;
    if (content === undefined) throw new Error(`renderChat: messages[${i}].content must be a string`);
    switch (m.role) {
      case "system":
        return content;
      case "user":
        return `${names.user}: ${content}`;
      case "assistant":
        return `${names.assistant}: ${content}`;
      default:
        throw new Error(`renderChat: messages[${i}].role must be "system", "user" or "assistant", got ${JSON.stringify(m.role)}`);
    }
  });
  lines.push(`${names.assistant}:`);
  return { prompt: lines.join("\n"), stop: defaultStops("chat", names) };
}
