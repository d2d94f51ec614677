/**
 * nanny's send/expect strings: the escapes it interprets, and how a reply is matched against an
 * expect string (Piranha semantics, read incrementally instead of with one short read()).
 */
import { LvsError } from '../../errors.js';
import { show } from './common.js';

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"' };

/**
 * Interpret nanny's escapes in a send/expect string: `\n \r \t \\ \' \"`. Any other backslash
 * sequence (and a lone trailing backslash) stays as written, backslash included.
 */
export function unescape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      const r = ESCAPES[s[i + 1]!];
      if (r !== undefined) { out += r; i++; continue; }
    }
    out += c;
  }
  return out;
}

/** POSIX bracket classes that JavaScript regular expressions lack, as JS class contents. */
const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: '0-9A-Za-z', upper: 'A-Z', lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v', blank: ' \\t', punct: '!-\\/:-@\\[-`{-~', xdigit: '0-9A-Fa-f',
  cntrl: '\\x00-\\x1f\\x7f', print: '\\x20-\\x7e', graph: '\\x21-\\x7e', word: '0-9A-Za-z_',
};

/**
 * Compile nanny's `use_regex` expect (a POSIX extended regular expression) as a JS RegExp. The
 * two dialects agree on what health checks use (literals, `.`, `*`, `+`, `?`, `{m,n}`, `|`,
 * groups, brackets, anchors); POSIX bracket classes such as `[[:digit:]]` are translated.
 */
export function compileExpectRegex(expr: string, field = 'expect'): RegExp {
  const js = expr.replace(/\[:([a-z]+):\]/g, (m, name: string) => POSIX_CLASSES[name] ?? m);
  try {
    return new RegExp(js);
  } catch (e) {
    throw new LvsError('LVS_INVALID_OPTION', `${field}: invalid regular expression ${JSON.stringify(expr)}: ${(e as Error).message}`, { field });
  }
}

export type Verdict = { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Decides a reply against an expect string as the bytes arrive. `check(reply, final)` returns
 * undefined while more data could still change the answer, and a verdict once it cannot (or
 * when `final`: the peer closed, the reply cap was reached).
 *
 * - `"*"`: any reply byte passes.
 * - literal: the reply must start with the expect (nanny's strncmp). nanny did one read() of
 *   strlen(expect) bytes and failed a reply that arrived in two segments ("READ ... was too
 *   short"); we keep reading until enough bytes are there to decide.
 * - regex: searched unanchored in the reply received so far; nanny matched only its first read
 *   of at most 254 bytes, we match up to MAX_REPLY bytes.
 */
export class ExpectMatcher {
  private readonly literal?: Buffer;
  private readonly re?: RegExp;
  readonly any: boolean;

  constructor(readonly expect: string, regex: boolean) {
    this.any = expect === '*';
    if (this.any) return;
    if (regex) this.re = compileExpectRegex(expect);
    else this.literal = Buffer.from(expect, 'utf8');
  }

  check(reply: Buffer, final: boolean): Verdict {
    if (this.any) {
      if (reply.length > 0) return { ok: true };
      return final ? { ok: false, reason: 'no reply' } : undefined;
    }
    if (this.literal !== undefined) {
      const lit = this.literal;
      const n = Math.min(lit.length, reply.length);
      if (reply.subarray(0, n).equals(lit.subarray(0, n))) {
        if (n === lit.length) return { ok: true };
        if (!final) return undefined;
        return { ok: false, reason: reply.length === 0 ? `expect ${show(this.expect)} got no reply` : `expect ${show(this.expect)} got only ${show(reply)}` };
      }
      return { ok: false, reason: `expect ${show(this.expect)} got ${show(reply)}` };
    }
    if (this.re!.test(reply.toString('utf8'))) return { ok: true };
    if (!final) return undefined;
    return { ok: false, reason: reply.length === 0 ? `expect /${this.expect}/ got no reply` : `expect /${this.expect}/ got ${show(reply)}` };
  }
}
