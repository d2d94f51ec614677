/**
 * The lvs.cf corpus: every valid file reads, writes back and reads again to the same model,
 * with its comments; files already in canonical (Piranha GUI) form come back byte for byte.
 * Every invalid file fails with exactly the errors in its .err file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LvsConfigError, formatConfig, parseConfig, withoutLayout } from '../../src/config/index.js';
import type { LvsErrorCode } from '../../src/errors.js';

const dir = join(import.meta.dirname, 'corpus');
const valid = readdirSync(join(dir, 'valid')).filter((f) => f.endsWith('.cf')).sort();
const invalid = readdirSync(join(dir, 'invalid')).filter((f) => f.endsWith('.cf')).sort();
const read = (kind: string, f: string) => readFileSync(join(dir, kind, f), 'utf8');

/** Files written in some other style than format() writes. */
const NOT_CANONICAL = new Set([
  'piranha-example.cf', // 4-blank indentation, as in reference/piranha.md 1.6
  'order.cf', // globals after virtuals, keys after servers, duplicate keys, tabs
  'quoting.cf', // quoted block names are written bare
]);

function comments(text: string): string[] {
  return text
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('#'));
}

describe('valid lvs.cf files', () => {
  it('the corpus has the files the brief asks for', () => {
    expect(valid.length).toBeGreaterThanOrEqual(10);
    for (const f of ['minimal.cf', 'crlf.cf', 'comments.cf', 'quoting.cf', 'numbers.cf', 'service-names.cf', 'fwmark-persistence.cf', 'ipv6.cf', 'extensions.cf', 'recipe-http-https.cf', 'recipe-ftp.cf', 'piranha-example.cf']) {
      expect(valid).toContain(f);
    }
    expect(read('valid', 'crlf.cf')).toContain('\r\n');
  });

  for (const f of valid) {
    describe(f, () => {
      const text = read('valid', f);
      it('parse -> format -> parse gives the same model, with the comments', () => {
        const first = parseConfig(text, { file: f });
        const out = formatConfig(first.config);
        const second = parseConfig(out, { file: f });
        expect(withoutLayout(second.config)).toEqual(withoutLayout(first.config));
        expect(comments(out)).toEqual(comments(text));
        // And writing again changes nothing.
        expect(formatConfig(second.config)).toBe(out);
      });
      if (!NOT_CANONICAL.has(f)) {
        it('is in canonical form: format(parse(x)) === x', () => {
          expect(formatConfig(parseConfig(text, { file: f }).config)).toBe(text);
        });
      }
    });
  }
});

/** The code of each error of each invalid file, in order. */
const CODES: Record<string, LvsErrorCode[]> = {
  'bad-address.cf': ['LVS_CONFIG_VALUE', 'LVS_CONFIG_SYNTAX', 'LVS_CONFIG_VALUE', 'LVS_CONFIG_VALUE', 'LVS_CONFIG_VALUE'],
  'bad-boolean.cf': ['LVS_CONFIG_VALUE', 'LVS_CONFIG_VALUE', 'LVS_CONFIG_VALUE'],
  'bad-integer.cf': Array(5).fill('LVS_CONFIG_VALUE'),
  'bad-mask.cf': Array(4).fill('LVS_CONFIG_VALUE'),
  'bad-scheduler.cf': ['LVS_CONFIG_VALUE'],
  'bad-values.cf': [...Array(6).fill('LVS_CONFIG_VALUE'), 'LVS_CONFIG_UNSUPPORTED', 'LVS_CONFIG_SYNTAX', ...Array(5).fill('LVS_CONFIG_VALUE'), 'LVS_CONFIG_SYNTAX', ...Array(3).fill('LVS_CONFIG_VALUE')],
  'conflicts.cf': ['LVS_CONFIG_CONFLICT', 'LVS_CONFIG_CONFLICT', 'LVS_CONFIG_CONFLICT', 'LVS_CONFIG_CONFLICT', 'LVS_CONFIG_MISSING', 'LVS_CONFIG_CONFLICT'],
  'duplicates.cf': ['LVS_CONFIG_DUPLICATE', 'LVS_CONFIG_DUPLICATE'],
  'equals-glued.cf': ['LVS_CONFIG_UNKNOWN_KEY', 'LVS_CONFIG_SYNTAX'],
  'fos.cf': ['LVS_CONFIG_UNSUPPORTED', 'LVS_CONFIG_UNSUPPORTED'],
  'headers.cf': ['LVS_CONFIG_UNKNOWN_KEY', 'LVS_CONFIG_SYNTAX', 'LVS_CONFIG_SYNTAX', 'LVS_CONFIG_UNKNOWN_KEY', 'LVS_CONFIG_SYNTAX', 'LVS_CONFIG_SYNTAX'],
  'ipv6-conflicts.cf': Array(4).fill('LVS_CONFIG_CONFLICT'),
  'many.cf': ['LVS_CONFIG_VALUE', 'LVS_CONFIG_VALUE', 'LVS_CONFIG_SYNTAX', 'LVS_CONFIG_UNKNOWN_KEY', 'LVS_CONFIG_SYNTAX', 'LVS_CONFIG_VALUE'],
  'missing-address.cf': ['LVS_CONFIG_MISSING', 'LVS_CONFIG_MISSING'],
  'quote-mismatch.cf': ['LVS_CONFIG_SYNTAX', 'LVS_CONFIG_SYNTAX'],
  'stray-brace.cf': ['LVS_CONFIG_SYNTAX', 'LVS_CONFIG_SYNTAX'],
  'trailing-comment.cf': ['LVS_CONFIG_SYNTAX', 'LVS_CONFIG_SYNTAX'],
  'bad-check.cf': Array(7).fill('LVS_CONFIG_VALUE'),
  'unclosed-block.cf': ['LVS_CONFIG_SYNTAX'],
  'unknown-key.cf': Array(4).fill('LVS_CONFIG_UNKNOWN_KEY'),
};

describe('invalid lvs.cf files', () => {
  it('the corpus has at least 15 files, each with its expected errors', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(15);
    expect(Object.keys(CODES).sort()).toEqual(invalid);
  });

  for (const f of invalid) {
    it(`${f}: exactly the errors of ${f.replace(/\.cf$/, '.err')}`, () => {
      const expected = read('invalid', f.replace(/\.cf$/, '.err')).trimEnd();
      let caught: unknown;
      try {
        parseConfig(read('invalid', f), { file: f });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(LvsConfigError);
      const err = caught as LvsConfigError;
      expect(err.code).toBe('LVS_CONFIG_INVALID');
      expect(err.message).toBe(expected);
      const lines = expected.split('\n');
      expect(err.errors.map((e) => e.message)).toEqual(lines);
      expect(err.errors.map((e) => e.code)).toEqual(CODES[f]);
      // Each error's fields say what its text says: FILE:LINE:COLUMN FIELD: ...
      for (const e of err.errors) {
        const m = e.message.match(/^([^:]+):(\d+):(\d+) (\S+): /)!;
        expect(m).not.toBeNull();
        expect({ file: e.file, line: e.line, column: e.column, field: e.field }).toEqual({ file: m[1], line: Number(m[2]), column: Number(m[3]), field: m[4] });
      }
      // The aggregate error points at the first one.
      expect([err.file, err.line, err.column, err.field]).toEqual([err.errors[0]!.file, err.errors[0]!.line, err.errors[0]!.column, err.errors[0]!.field]);
    });
  }
});
