// Turns a stream of token ids into printable text, one push per token.
//
// Byte-level BPE tokens are bytes, not characters: an emoji or a CJK character is often split over
// two or three tokens, and decoding each token alone yields U+FFFD garbage. So, as HF's TextStreamer
// and text-generation-inference do, we decode a short window of ids and print only the part of the
// text that grew since the previous decode of the same window start. When the window's text ends in
// U+FFFD the last character is incomplete: nothing is printed until the next byte arrives. Decoding
// whole windows (not single tokens) also keeps every space: nothing is trimmed at token boundaries.

export interface Detokenizer {
  decode(ids: readonly number[]): string;
}

/** A UTF-8 character has at most 4 bytes and a byte-level token at least 1: past 4 held tokens a
 * trailing U+FFFD is real (the model produced invalid UTF-8) and is printed rather than held forever. */
const MAX_HELD_TOKENS = 4;
const REPLACEMENT = "\uFFFD";

export class StreamDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the window we decode; text before it has been printed and is forgotten. */
  private prefixOffset = 0;
  /** Ids before this index have been printed. */
  private readOffset = 0;

  constructor(private readonly tokenizer: Detokenizer) {}

  /** Adds one token; returns the text that is now safe to print ("" while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const window = this.ids.slice(this.prefixOffset);
    const printed = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.decode(window);
    const held = this.ids.length - this.readOffset;
    const complete = !text.endsWith(REPLACEMENT);
    if (text.length > printed.length && (complete || held >= MAX_HELD_TOKENS)) {
      // After printing invalid bytes, start the next window fresh so later bytes cannot re-decode
      // (and change) text already printed.
      this.prefixOffset = complete ? this.readOffset : this.ids.length;
      this.readOffset = this.ids.length;
      this.compact();
      return text.slice(printed.length);
    }
    return "";
  }

  /** Text still held at the end of the stream (an incomplete character prints as U+FFFD). */
  flush(): string {
    if (this.readOffset >= this.ids.length) return "";
    const printed = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    this.compact();
    return text.slice(printed.length);
  }

  /** Drops ids before the window so a long generation does not keep (or re-slice) all of them. */
  private compact(): void {
    if (this.prefixOffset > 0) {
      this.ids.splice(0, this.prefixOffset);
      this.readOffset -= this.prefixOffset;
      this.prefixOffset = 0;
    }
  }
}
