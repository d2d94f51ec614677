/**
 * Damaged files: the valid corpus with seeded random edits (characters dropped, inserted or
 * replaced, lines duplicated, swapped or cut). Whatever the damage, the parser either reads the
 * file, and then writing it back reads to the same model, or throws one LvsConfigError whose
 * errors all carry a position; it never throws anything else.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LvsConfigError, formatConfig, parseConfig, withoutLayout } from '../../src/config/index.js';

const dir = join(import.meta.dirname, 'corpus', 'valid');
const files = readdirSync(dir).filter((f) => f.endsWith('.cf') && f !== 'empty.cf').sort();
const ALPHABET = ['"', "'", '{', '}', '=', '#', ' ', '\t', '\n', '\r', '0', 'x', '9', ':', '/', ',', '-', '.', 'a', 'é'];

/** xorshift32: the same edits on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function mutate(text: string, r: () => number): string {
  const pick = (n: number) => Math.floor(r() * n);
  let t = text;
  const edits = 1 + pick(3);
  for (let k = 0; k < edits; k++) {
    const at = pick(t.length + 1);
    const lines = t.split('\n');
    switch (pick(6)) {
      case 0:
        t = t.slice(0, at) + t.slice(at + 1);
        break;
      case 1:
        t = t.slice(0, at) + ALPHABET[pick(ALPHABET.length)]! + t.slice(at);
        break;
      case 2:
        t = t.slice(0, at) + ALPHABET[pick(ALPHABET.length)]! + t.slice(at + 1);
        break;
      case 3: {
        const l = pick(lines.length);
        lines.splice(l, 0, lines[l]!);
        t = lines.join('\n');
        break;
      }
      case 4: {
        const a = pick(lines.length);
        const b = pick(lines.length);
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        t = lines.join('\n');
        break;
      }
      default:
        t = t.slice(0, at);
    }
  }
  return t;
}

describe('damaged lvs.cf files', () => {
  for (const f of files) {
    it(`${f}: 150 damaged copies read or fail cleanly`, () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const r = rng(f.split('').reduce((h, c) => (h * 31 + c.charCodeAt(0)) | 0, 7));
      let failed = 0;
      for (let i = 0; i < 150; i++) {
        const damaged = mutate(text, r);
        try {
          const first = parseConfig(damaged, { file: f });
          const again = parseConfig(formatConfig(first.config), { file: f });
          expect(withoutLayout(again.config)).toEqual(withoutLayout(first.config));
        } catch (e) {
          if (!(e instanceof LvsConfigError)) throw new Error(`${f} #${i}: ${String(e)}\n--- input ---\n${damaged}`);
          failed++;
          expect(e.errors.length).toBeGreaterThan(0);
          for (const x of e.errors) expect(x.message).toMatch(new RegExp(`^${f.replace('.', '\\.')}(:\\d+:\\d+)? \\S+: `));
        }
      }
      // The damage is real: some copies must fail.
      expect(failed).toBeGreaterThan(0);
    });
  }
});
