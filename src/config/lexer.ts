/**
 * lvs.cf lexical rules, as Piranha's lvsconfig.c reads the file (reference/piranha.md 1.1):
 * lines end with LF, CRLF or a lone CR; a line is split into tokens on blanks (space, tab)
 * only, so `=` is a token of its own; a line whose first non-blank character is `#` is a
 * comment (there are no trailing comments); a token that starts with `"` or `'` runs to the
 * next quote of the same kind and may contain blanks, with no escape for the quote itself.
 *
 * Where Piranha's tokenizer misbehaved we do the sensible thing (docs/lvs.cf.md): a quoted
 * token must be followed by a blank or the end of the line (Piranha glued `"a b"c` into odd
 * tokens, and rejected a quoted word followed by trailing blanks); both quote kinds are
 * stripped; a UTF-8 byte order mark at the start of the file is ignored.
 */

export interface Token {
  /** The value: for a quoted token, what is between the quotes. */
  text: string;
  /** The token as written, quotes included. */
  raw: string;
  /** The quote character, or '' for a bare word. */
  quote: '' | '"' | "'";
  /** 1-based column of the token's first character. */
  column: number;
}

export type LexLine =
  | { kind: 'blank'; line: number }
  | { kind: 'comment'; line: number; column: number; text: string }
  | { kind: 'tokens'; line: number; tokens: Token[] }
  | { kind: 'error'; line: number; column: number; tokens: Token[]; message: string };

export interface LexResult {
  lines: LexLine[];
  /** The line ending the file mostly uses: written back the same way. */
  eol: '\n' | '\r\n' | '\r';
  /** The file started with a UTF-8 byte order mark. */
  bom: boolean;
}

function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

/** Splits one line (without its line ending) into tokens. */
export function tokenizeLine(text: string, line: number): LexLine {
  let i = 0;
  while (isBlank(text[i])) i++;
  if (i === text.length) return { kind: 'blank', line };
  if (text[i] === '#') return { kind: 'comment', line, column: i + 1, text: text.slice(i).trimEnd() };
  const tokens: Token[] = [];
  while (i < text.length) {
    const start = i;
    const c = text[i]!;
    if (c === '"' || c === "'") {
      const close = text.indexOf(c, i + 1);
      if (close < 0) {
        return { kind: 'error', line, column: start + 1, tokens, message: `quotation mismatch: the ${c === '"' ? 'double' : 'single'} quote at column ${start + 1} is not closed on this line` };
      }
      i = close + 1;
      if (i < text.length && !isBlank(text[i])) {
        return {
          kind: 'error',
          line,
          column: start + 1,
          tokens,
          message: `quotation mismatch: ${text.slice(start, i)} is followed by ${JSON.stringify(text[i])} (a quoted value ends at its closing quote and there is no escape for ${c}; use the other quote kind around a value that contains ${c})`,
        };
      }
      tokens.push({ text: text.slice(start + 1, close), raw: text.slice(start, i), quote: c, column: start + 1 });
    } else {
      while (i < text.length && !isBlank(text[i])) i++;
      const raw = text.slice(start, i);
      tokens.push({ text: raw, raw, quote: '', column: start + 1 });
    }
    while (isBlank(text[i])) i++;
  }
  return { kind: 'tokens', line, tokens };
}

/** Splits a whole file into lexed lines (line numbers count LF, CRLF and CR endings). */
export function lex(input: string): LexResult {
  let text = input;
  const bom = text.charCodeAt(0) === 0xfeff;
  if (bom) text = text.slice(1);
  const crlf = (text.match(/\r\n/g) ?? []).length;
  const cr = (text.match(/\r(?!\n)/g) ?? []).length;
  const lf = (text.match(/(?<!\r)\n/g) ?? []).length;
  const eol = crlf > lf && crlf >= cr ? '\r\n' : cr > lf && cr > crlf ? '\r' : '\n';
  const parts = text.split(/\r\n|\r|\n/);
  // A final line ending does not start another line.
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const lines = parts.map((p, k) => tokenizeLine(p, k + 1));
  if (lines.length === 1 && lines[0]!.kind === 'blank' && text === '') lines.pop();
  return { lines, eol, bom };
}
