/**
 * Text-level stop-string handling. Emits text only once it can no longer be the start of a
 * stop string (a possible partial match at the end is held back), and cuts the output before
 * the earliest stop string. node-llama-cpp's own customStopTriggers hold back partial matches
 * too, but at maxTokens they silently drop the held-back tail from the response, so a
 * length-limited output ending in e.g. "\n" with stop ["\n\n"] would lose its "\n".
 */
export class StopStringFilter {
  private readonly stops: string[];
  private readonly maxLen: number;
  private text = '';
  private emitted = 0;
  stopped = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.maxLen = Math.max(0, ...this.stops.map((s) => s.length));
  }

  /** Adds generated text; returns the text that is now safe to emit (possibly ''). */
  push(chunk: string): string {
    if (this.stopped || chunk === '') return '';
    const searchFrom = Math.max(0, this.text.length - this.maxLen + 1);
    this.text += chunk;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.text.indexOf(s, searchFrom);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.text = this.text.slice(0, cut);
      return this.take(cut);
    }
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length); k > hold; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return this.take(this.text.length - hold);
  }

  /** At the end of a generation that was not stopped: whatever was held back. */
  flush(): string {
    return this.take(this.text.length);
  }

  /** The output so far (cut before the stop string once stopped). */
  get output(): string {
    return this.text;
  }

  private take(end: number): string {
    if (end <= this.emitted) return '';
    const out = this.text.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }
}
