/**
 * Incremental detokenization with prefix and read offsets, as TGI does: a token's text is the difference
 * between decoding a short window with and without it, held back while the window ends in an incomplete UTF-8
 * sequence. Special tokens never enter the window; their text is their own string.
 */

export interface Decoder {
  decode(ids: readonly number[], skipSpecialTokens?: boolean): string;
}

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  /** All text emitted so far, special tokens excluded. */
  text = '';

  constructor(private readonly decoder: Decoder) {}

  /** The new text this token completes; '' while it is part of an unfinished character. */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.decoder.decode(this.ids.slice(this.prefixOffset, this.readOffset), true);
    const newText = this.decoder.decode(this.ids.slice(this.prefixOffset), true);
    if (newText.length > prefixText.length && !newText.endsWith('\uFFFD')) {
      const delta = newText.slice(prefixText.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      this.text += delta;
      return delta;
    }
    return '';
  }

  /** At the end: whatever was held back (a dangling partial character decodes to U+FFFD, as Hugging Face does). */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefixText = this.decoder.decode(this.ids.slice(this.prefixOffset, this.readOffset), true);
    const rest = this.decoder.decode(this.ids.slice(this.prefixOffset), true).slice(prefixText.length);
    this.readOffset = this.ids.length;
    this.text += rest;
    return rest;
  }
}
