/**
 * Writes the model back as lvs.cf, in the Piranha GUI's style: globals first, then failover
 * blocks, then virtual blocks; keys of a virtual indented by 5 blanks, `server` blocks by 5
 * and their keys by 9 (the GUI's "$gap1 key" with a 4-blank gap); one blank on each side of
 * `=`; no trailing blanks.
 *
 * What the file had is kept (model `layout`): key order, comments and blank lines (re-indented
 * to their block), and a value's spelling while its value is unchanged (`port = domain`,
 * `fwmark = 0x50`). Keys the file did not have are written only when they differ from their
 * default, in the GUI's order. format(parse(text)) === text for text in this form.
 */
import { GLOBAL_KEYS, SERVER_KEYS, VIRTUAL_KEYS, word, type KeySpec } from './keys.js';
import type { KeyLayout, LvsConfig } from './model.js';

export interface FormatOptions {
  /** Line ending; default the one the file had (LF for a new model). */
  eol?: '\n' | '\r\n' | '\r';
}

const INDENT = { global: '', virtual: '     ', server: '         ' };
const BLOCK_INDENT = { virtual: '', server: '     ' };

interface Item {
  before: string[];
  key?: string;
  text?: string;
}

function notes(out: string[], indent: string, lines: string[]): void {
  for (const n of lines) out.push(n === '' ? '' : `${indent}${n}`);
}

/** The key lines of one block: the file's own lines first (in their order), then keys it did
 *  not have, each after the last line whose key comes before it in the GUI's order. */
function scopeItems<T>(specs: KeySpec<T>[], target: T, layout: KeyLayout[] | undefined): Item[] {
  const order = new Map(specs.map((s, k) => [s.key, k]));
  const values = new Map(specs.map((s) => [s.key, s.values(target)]));
  const used = new Map<string, number>();
  const items: Item[] = [];
  for (const kl of layout ?? []) {
    const list = values.get(kl.key) ?? [];
    const n = used.get(kl.key) ?? 0;
    if (n < list.length) {
      used.set(kl.key, n + 1);
      const v = list[n]!;
      items.push({ before: kl.before, key: kl.key, text: v === kl.canonical ? kl.text : v });
    } else if (kl.before.length) {
      // The key is gone; its comments stay.
      items.push({ before: kl.before });
    }
  }
  for (const spec of specs) {
    const list = values.get(spec.key)!;
    const n = used.get(spec.key) ?? 0;
    if (n >= list.length || (n === 0 && spec.isDefault(target))) continue;
    const rank = order.get(spec.key)!;
    let at = 0;
    for (let k = 0; k < items.length; k++) {
      const key = items[k]!.key;
      if (key !== undefined && order.get(key)! <= rank) at = k + 1;
    }
    const added = list.slice(n).map((text): Item => ({ before: [], key: spec.key, text }));
    if (at === 0 && items.length && items[0]!.before.length) {
      // Comments at the top of a block stay at its top.
      added[0]!.before = items[0]!.before;
      items[0] = { ...items[0]!, before: [] };
    }
    items.splice(at, 0, ...added);
  }
  return items;
}

function emit(out: string[], indent: string, items: Item[]): void {
  for (const it of items) {
    notes(out, indent, it.before);
    if (it.key !== undefined) out.push(`${indent}${it.key} = ${it.text}`);
  }
}

/** The model as lvs.cf text. */
export function formatConfig(cfg: LvsConfig, options: FormatOptions = {}): string {
  const out: string[] = [];
  emit(out, INDENT.global, scopeItems(GLOBAL_KEYS, cfg.globals, cfg.layout?.keys));

  for (const f of cfg.failovers) {
    notes(out, BLOCK_INDENT.virtual, f.layout?.before ?? []);
    out.push(`failover ${word(f.name)} {`);
    const kl = f.layout?.keys ?? [];
    f.entries.forEach((e, k) => {
      const l = kl[k];
      notes(out, INDENT.virtual, l && l.key === e.key ? l.before : []);
      out.push(`${INDENT.virtual}${e.key} = ${e.value}`);
    });
    notes(out, INDENT.virtual, f.layout?.end ?? []);
    out.push('}');
  }

  for (const v of cfg.virtuals) {
    notes(out, BLOCK_INDENT.virtual, v.layout?.before ?? []);
    out.push(`virtual ${word(v.name)} {`);
    emit(out, INDENT.virtual, scopeItems(VIRTUAL_KEYS, v, v.layout?.keys));
    for (const s of v.servers) {
      notes(out, BLOCK_INDENT.server, s.layout?.before ?? []);
      out.push(`${BLOCK_INDENT.server}server ${word(s.name)} {`);
      emit(out, INDENT.server, scopeItems(SERVER_KEYS, s, s.layout?.keys));
      notes(out, INDENT.server, s.layout?.end ?? []);
      out.push(`${BLOCK_INDENT.server}}`);
    }
    notes(out, INDENT.virtual, v.layout?.end ?? []);
    out.push('}');
  }
  notes(out, '', cfg.layout?.end ?? []);

  const eol = options.eol ?? cfg.layout?.eol ?? '\n';
  const text = out.length ? out.join(eol) + eol : '';
  return cfg.layout?.bom ? `\ufeff${text}` : text;
}
