// Turns a stream of token ids into printable text, one push per token.
//
// Byte-level BPE tokens are bytes, not characters: an emoji or a CJK character is often split over
// two or three tokens, and decoding each token alone yields U+FFFD garbage. So, as HF's TextStreamer
// and text-generation-inference do, we decode a short window of ids and print only the part of the
// text that grew since the previous decode of the same window start. When the window's text ends in
// U+FFFD the last character is incomplete: the text before it prints, its bytes wait for the next
// token. (Tokens often end one character and start the next, so a run of tokens can leave an
// incomplete character at every step.) Decoding whole windows (not single tokens) also keeps every
// space: nothing is trimmed at token boundaries.

export interface Detokenizer {
  decode(ids: readonly number[]): string;
}

/**
 * A UTF-8 character has at most 4 bytes and a byte-level token at least 1: a character still incomplete
 * after this many tokens that added nothing printable is not coming (the model produced invalid UTF-8),
 * so its U+FFFD is printed rather than held forever. A token that completes one character and starts
 * the next does not count: the completed part prints at once, only the new tail is held.
 */
const MAX_STALLED_TOKENS = 4;
const REPLACEMENT = 0xfffd;

export class StreamDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the window we decode; text before it has been printed and is forgotten. */
  private prefixOffset = 0;
  /** The window's tokens before this index decode to complete characters, all printed. */
  private readOffset = 0;
  /** Characters printed beyond decode(ids[prefixOffset, readOffset)): complete ones of the held tokens. */
  private ahead = 0;
  /** Tokens in a row that left the text ending in an incomplete character and printed nothing. */
  private stalled = 0;

  constructor(private readonly tokenizer: Detokenizer) {}

  /** Adds one token; returns the text that is now safe to print ("" while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const printed = this.printedLength();
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    // the complete part: all but a trailing run of U+FFFD (an incomplete character, or invalid bytes
    // before one, which print once something valid follows them)
    let safe = text.length;
    while (safe > printed && text.charCodeAt(safe - 1) === REPLACEMENT) safe--;
    if (safe === text.length) {
      // The window ends on a whole character: the next window starts at the tokens just printed.
      this.advance(this.readOffset);
      return text.slice(printed);
    }
    if (safe > printed) {
      this.stalled = 0;
      this.ahead += safe - printed;
      return text.slice(printed, safe);
    }
    if (++this.stalled < MAX_STALLED_TOKENS) return "";
    // Invalid bytes: print them, and start the next window after them so that later bytes cannot
    // re-decode (and change) text already printed.
    this.advance(this.ids.length);
    return text.slice(printed);
  }

  /** Text still held at the end of the stream (an incomplete character prints as U+FFFD). */
  flush(): string {
    if (this.readOffset >= this.ids.length) return "";
    const printed = this.printedLength();
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.advance(this.ids.length);
    return text.slice(printed);
  }

  /** Length of the window's text printed so far. */
  private printedLength(): number {
    return this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset)).length + this.ahead;
  }

  /** Everything pushed is printed; the next window starts at `prefix`. */
  private advance(prefix: number): void {
    this.prefixOffset = prefix;
    this.readOffset = this.ids.length;
    this.ahead = 0;
    this.stalled = 0;
    this.compact();
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
