/**
 * Where a text stops being JSON. `JSON.parse` says that a text is not JSON, but V8 gives the
 * position only for some mistakes ("Unexpected token '}', ... is not valid JSON" has none),
 * and its message quotes the text, which may hold a secret: the configuration reader reports
 * the line and column found here instead.
 */

/** Nesting deeper than this is reported as an error at the bracket that goes past it. */
const DEPTH_MAX = 64;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;

/** A place in a text: the 0-based offset, and the 1-based line and column. */
export interface TextPosition {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

/**
 * The position of the first character at which `text` stops being JSON (RFC 8259); its
 * length if it ends too early; undefined if it is JSON (then `JSON.parse` takes it).
 */
export function jsonErrorPosition(text: string): TextPosition | undefined {
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const string = (): boolean => {
    i++; // the opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c !== 0x5c) i++;
      else if (text[i + 1] === 'u') {
        HEX4.lastIndex = i + 2;
        if (!HEX4.test(text)) return false;
        i += 6;
      } else if ('"\\/bfnrt'.includes(text[i + 1] ?? '?')) i += 2;
      else return false;
    }
    return false;
  };
  const container = (close: string, keyed: boolean, depth: number): boolean => {
    if (depth >= DEPTH_MAX) return false;
    i++; // the opening bracket
    skipSpace();
    if (text[i] === close) {
      i++;
      return true;
    }
    for (;;) {
      if (keyed) {
        skipSpace();
        if (text[i] !== '"' || !string()) return false;
        skipSpace();
        if (text[i] !== ':') return false;
        i++;
      }
      if (!value(depth + 1)) return false;
      skipSpace();
      if (text[i] === close) {
        i++;
        return true;
      }
      if (text[i] !== ',') return false;
      i++;
    }
  };
  const value = (depth: number): boolean => {
    skipSpace();
    const c = text[i];
    if (c === '{') return container('}', true, depth);
    if (c === '[') return container(']', false, depth);
    if (c === '"') return string();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return true;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m === null) return false;
    i += m[0].length;
    return true;
  };
  const ok = value(0);
  skipSpace();
  if (ok && i === text.length) return undefined;
  return positionOf(text, Math.min(i, text.length));
}

function positionOf(text: string, offset: number): TextPosition {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { offset, line: before.split('\n').length, column: offset - lineStart + 1 };
}
