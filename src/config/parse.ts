/**
 * Reads lvs.cf into the typed model. Every valid Piranha file is accepted with Piranha's
 * meaning (reference/piranha.md 1); docs/lvs.cf.md lists where lvsd reads a file more sensibly
 * than Piranha did, and the extensions.
 *
 * Errors point at the line and the column of its key (the message quotes the token at fault).
 * All problems of a file are collected: parse() throws one LvsConfigError whose `errors` has
 * each, formatted `lvs.cf:14:5 scheduler: unknown scheduler "wlcx" (expected one of ...)`.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { lookup as dnsLookup } from 'node:dns/promises';
import { LvsError, type LvsErrorCode } from '../errors.js';
import { parseAddress } from '../net/address.js';
import { lex, type Token } from './lexer.js';
import { GLOBAL_KEYS, KEYS, SERVER_KEYS, VIRTUAL_KEYS, ValueError, keySpec, systemServiceNames, type KeySpec, type Scope, type ServiceNames } from './keys.js';
import {
  LvsConfigError,
  configError,
  defaultGlobals,
  defaultServer,
  defaultVirtual,
  isIpLiteral,
  type BlockLayout,
  type ConfigMessage,
  type FailoverService,
  type KeyLayout,
  type LvsConfig,
  type RealServer,
  type VirtualServer,
} from './model.js';
import { validateModel } from './validate.js';

export interface ParseOptions {
  /** The name errors and warnings give the file. Default `lvs.cf`. */
  file?: string;
  /** Service names for ports (`port = http`). Default: the system's /etc/services. */
  services?: ServiceNames;
}

export interface ParseResult {
  config: LvsConfig;
  /** Keys without effect, Piranha behaviours lvsd changed, and other notes (not errors). */
  warnings: ConfigMessage[];
}

type Frame =
  | { kind: 'file' }
  | { kind: 'virtual'; v: VirtualServer; layout: BlockLayout; discard: boolean }
  | { kind: 'server'; v: VirtualServer; s: RealServer; layout: BlockLayout; discard: boolean }
  | { kind: 'failover'; f: FailoverService; layout: BlockLayout; discard: boolean };

/** Keys whose value is free text (a value with blanks must be quoted). */
const TEXT_KEYS = new Set(['send', 'expect', 'send_program', 'active_cmd', 'inactive_cmd', 'debug_level', 'client_monitor', 'start_cmd', 'stop_cmd', 'ipvsadm', 'primary_shared', 'backup_shared']);

const WHERE: Record<Scope, string> = { global: 'at the top level', virtual: 'in a virtual block', server: 'in a server block' };

/** Parses lvs.cf text. Throws LvsConfigError (code LVS_CONFIG_INVALID) listing every error. */
export function parseConfig(text: string, options: ParseOptions = {}): ParseResult {
  const file = options.file ?? 'lvs.cf';
  const ctx = { services: options.services ?? systemServiceNames() };
  const { lines, eol, bom } = lex(text);
  const errors: LvsError[] = [];
  const warnings: ConfigMessage[] = [];
  const cfg: LvsConfig = { globals: defaultGlobals(), virtuals: [], failovers: [], layout: { keys: [], end: [], eol, bom } };
  const stack: Frame[] = [{ kind: 'file' }];
  /** Blocks with an error on one of their lines (validation leaves them alone). */
  const broken = new Set<object>();
  let notes: string[] = [];

  const top = () => stack[stack.length - 1]!;
  const fail = (code: LvsErrorCode, line: number, column: number, field: string, msg: string) => {
    errors.push(configError(code, file, line, column, field, msg));
    for (const f of stack) {
      if (f.kind === 'virtual') broken.add(f.v);
      if (f.kind === 'server') broken.add(f.s);
    }
  };
  const warn = (line: number, column: number, field: string, msg: string) => {
    warnings.push({ file, line, column, field, message: `${file}:${line}:${column} ${field}: ${msg}` });
  };

  const scopeOf = (f: Frame): Scope | 'failover' => (f.kind === 'file' ? 'global' : f.kind);
  const keyList = (f: Frame): KeyLayout[] => (f.kind === 'file' ? cfg.layout!.keys : f.layout.keys);

  /** Opens a block; `ok` false: the header was wrong, the block is read but not kept. */
  const open = (kind: 'virtual' | 'server' | 'failover', name: string, line: number, column: number, ok: boolean) => {
    const layout: BlockLayout = { line, column, before: notes, keys: [], end: [] };
    notes = [];
    const cur = top();
    if (kind === 'virtual') {
      const v = defaultVirtual(name);
      v.layout = layout;
      if (ok) cfg.virtuals.push(v);
      stack.push({ kind, v, layout, discard: !ok });
    } else if (kind === 'server') {
      const parent = cur.kind === 'virtual' ? cur : undefined;
      const v = parent?.v ?? defaultVirtual('');
      const s = defaultServer(name);
      s.layout = layout;
      if (ok && parent && !parent.discard) v.servers.push(s);
      stack.push({ kind, v, s, layout, discard: !ok || !parent || parent.discard });
    } else {
      const f: FailoverService = { name, entries: [], layout };
      if (ok) cfg.failovers.push(f);
      stack.push({ kind, f, layout, discard: !ok });
    }
  };

  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.kind === 'blank') {
      notes.push('');
      continue;
    }
    if (l.kind === 'comment') {
      notes.push(l.text);
      continue;
    }
    const toks = l.tokens;
    if (l.kind === 'error') {
      fail('LVS_CONFIG_SYNTAX', l.line, toks[0]?.column ?? l.column, toks[0] ? fieldName(toks[0].text) : 'line', l.message);
      // A broken line that opens or closes a block still does, so the rest reads right.
      if (toks[0]?.text === '}' && stack.length > 1) close(l.line);
      continue;
    }
    const first = toks[0]!;
    // Piranha's tokenizer strips the quotes of every token, keys included.
    const key = first.text;
    const cur = top();

    if (key === '}') {
      if (stack.length === 1) {
        fail('LVS_CONFIG_SYNTAX', l.line, first.column, '}', 'unexpected "}" (no block is open)');
        continue;
      }
      if (toks.length > 1) fail('LVS_CONFIG_SYNTAX', l.line, first.column, '}', `unexpected arguments ${JSON.stringify(toks.slice(1).map((t) => t.raw).join(' '))} (a closing brace stands alone on its line)`);
      close(l.line);
      continue;
    }

    // Block headers: `virtual|failover|server NAME {`, three words on one line.
    const blockKind = key === 'virtual' || key === 'failover' || key === 'server' ? key : undefined;
    if (blockKind) {
      const header = readHeader(toks, i);
      const fits = (blockKind === 'server' && cur.kind === 'virtual') || (blockKind !== 'server' && cur.kind === 'file');
      if (header.error) fail('LVS_CONFIG_SYNTAX', l.line, first.column, key, header.error.message);
      else if (!fits) {
        const msg =
          blockKind === 'server'
            ? cur.kind === 'failover'
              ? 'server blocks in a failover block are not supported'
              : 'unknown command here (server blocks belong in a virtual block)'
            : `unknown command here (${blockKind} blocks cannot be nested)`;
        fail(cur.kind === 'failover' ? 'LVS_CONFIG_UNSUPPORTED' : 'LVS_CONFIG_UNKNOWN_KEY', l.line, first.column, key, msg);
      }
      if (header.opens) {
        i = header.next;
        open(blockKind, header.name, l.line, first.column, !header.error && fits && header.name !== '');
      }
      continue;
    }

    const scope = scopeOf(cur);
    // `key = value...`
    const spec = scope === 'failover' ? failoverSpec(key) : keySpec(scope, key);
    if (!spec) {
      const elsewhere = (['global', 'virtual', 'server'] as Scope[]).filter((s) => s !== scope && keySpec(s, key));
      let msg = 'unknown command';
      if (key.includes('=')) msg += ` (write "${key.split('=')[0]} = ${key.split('=').slice(1).join('=')}": the = stands between blanks)`;
      else if (elsewhere.length) msg += ` here (${key} belongs ${elsewhere.map((s) => WHERE[s]).join(' or ')})`;
      else if (key !== key.toLowerCase() && (keySpec(scope === 'failover' ? 'virtual' : scope, key.toLowerCase()) || key.toLowerCase() === 'virtual' || key.toLowerCase() === 'server')) msg += ` (keys are lower case: ${key.toLowerCase()})`;
      else if (first.text === '{') msg = 'unexpected "{" (a block opens on the line that names it: virtual NAME {)';
      else {
        const near = nearestKey(scope === 'failover' ? 'virtual' : scope, key);
        if (near) msg += ` (did you mean ${near}?)`;
      }
      if (fieldName(key) !== key) msg = `unknown command ${JSON.stringify(first.raw)}`;
      fail('LVS_CONFIG_UNKNOWN_KEY', l.line, first.column, fieldName(key), msg);
      continue;
    }
    if (toks.length < 2 || toks[1]!.text !== '=') {
      fail('LVS_CONFIG_SYNTAX', l.line, first.column, key, `equal (=) expected after command (${spec.usage})`);
      continue;
    }
    const values = toks.slice(2);
    if (values.length < spec.args[0]) {
      fail('LVS_CONFIG_SYNTAX', l.line, first.column, key, `missing arguments (${spec.usage})`);
      continue;
    }
    if (values.length > spec.args[1]) {
      const extra = values[spec.args[1]]!;
      const hint = extra.text.startsWith('#') ? ' (comments stand on their own line)' : TEXT_KEYS.has(key) && !values.some((t) => t.quote) ? ' (quote a value that contains blanks)' : ` (${spec.usage})`;
      fail('LVS_CONFIG_SYNTAX', l.line, first.column, key, `unexpected arguments ${JSON.stringify(values.slice(spec.args[1]).map((t) => t.raw).join(' '))}${hint}`);
      continue;
    }
    if (cur.kind === 'failover') {
      cur.f.entries.push({ key, value: values.map((t) => t.raw).join(' ') });
      record(cur.layout.keys, key, l.line, first.column, values, values.map((t) => t.raw).join(' '));
      continue;
    }
    const target = cur.kind === 'file' ? cfg.globals : cur.kind === 'virtual' ? cur.v : cur.s;
    if (cur.kind === 'virtual' && key === 'port' && cur.v.servers.some((s) => s.port === undefined)) {
      warn(l.line, first.column, key, `comes after server blocks of virtual ${cur.v.name}: Piranha gave those servers the port set before them; lvsd gives every server without its own port the virtual's port`);
    }
    let result: { canonical: string; replaced?: number };
    try {
      result = (spec as KeySpec<object>).read(target, values, ctx);
    } catch (e) {
      if (!(e instanceof ValueError)) throw e;
      fail(e.code, l.line, first.column, key, e.message);
      continue;
    }
    const keys = keyList(cur);
    // A key given twice: the last one counts, as in Piranha.
    let earlier: KeyLayout | undefined;
    if (spec.repeats) {
      if (result.replaced !== undefined && result.replaced >= 0) earlier = keys.filter((k) => k.key === key)[result.replaced];
    } else earlier = keys.find((k) => k.key === key);
    if (earlier) {
      const why = spec.repeats ? `replaces the ${key} of line ${earlier.line} (one per address family)` : `given again (line ${earlier.line} is ignored: the last one counts)`;
      warn(l.line, first.column, key, why);
      const at = keys.indexOf(earlier);
      keys.splice(at, 1);
      const next = keys[at];
      if (next) next.before = [...earlier.before, ...next.before];
      else notes = [...earlier.before, ...notes];
    }
    record(keys, key, l.line, first.column, values, result.canonical);
    if (spec.inert) warn(l.line, first.column, key, spec.inert);
  }

  function record(keys: KeyLayout[], key: string, line: number, column: number, values: Token[], canonical: string) {
    keys.push({ key, line, column, valueColumn: values[0]!.column, before: notes, text: values.map((t) => t.raw).join(' '), canonical });
    notes = [];
  }

  function close(_line: number) {
    const f = stack.pop()!;
    if (f.kind !== 'file') {
      f.layout.end = notes;
      notes = [];
    }
  }

  /** `KIND NAME {`: whether it opens a block (so braces stay balanced even when the line is
   *  wrong), and the index of the last line it used. */
  function readHeader(toks: Token[], index: number): { name: string; opens: boolean; next: number; error?: { message: string } } {
    const kind = toks[0]!.text;
    const usage = `expected "${kind} NAME {" on one line`;
    const last = toks[toks.length - 1]!;
    if (toks.length >= 2 && last.text === '{') {
      if (toks.length === 3) return { name: toks[1]!.text, opens: true, next: index };
      if (toks.length === 2) return { name: '', opens: true, next: index, error: { message: `missing arguments (${usage}: the name is missing)` } };
      const extra = toks.slice(2, -1);
      return { name: toks[1]!.text, opens: true, next: index, error: { message: `unexpected arguments ${JSON.stringify(extra.map((t) => t.raw).join(' '))} (${usage}; quote a name that contains blanks)` } };
    }
    if (toks.length >= 2 && last.text.endsWith('{') && !last.quote) {
      const name = toks.length === 2 ? last.text.slice(0, -1) : toks[1]!.text;
      return { name, opens: true, next: index, error: { message: `missing arguments (${usage}, with a blank before the {)` } };
    }
    if (toks.length > 3 && toks[2]!.text === '{') {
      return { name: toks[1]!.text, opens: true, next: index, error: { message: `unexpected arguments ${JSON.stringify(toks.slice(3).map((t) => t.raw).join(' '))} (${usage})` } };
    }
    // No brace on the line: a brace alone on the next line still opens the block.
    let j = index + 1;
    while (j < lines.length && (lines[j]!.kind === 'blank' || lines[j]!.kind === 'comment')) j++;
    const nl = lines[j];
    const braceNext = nl?.kind === 'tokens' && nl.tokens.length === 1 && nl.tokens[0]!.text === '{';
    const message = `missing arguments (${usage}${braceNext ? ': the { must be on the same line' : ''})`;
    if (braceNext) return { name: toks[1]?.text ?? '', opens: true, next: j, error: { message } };
    return { name: '', opens: false, next: index, error: { message } };
  }

  // Blocks left open.
  while (stack.length > 1) {
    const f = stack.pop()!;
    if (f.kind === 'file') break;
    const name = f.kind === 'virtual' ? f.v.name : f.kind === 'server' ? f.s.name : f.f.name;
    fail('LVS_CONFIG_SYNTAX', f.layout.line, f.layout.column, f.kind, `unexpected end of file: ${f.kind} ${name} is not closed (a "}" is missing)`);
    f.layout.end = notes;
    notes = [];
  }
  cfg.layout!.end = notes;

  const checked = validateModel(cfg, { file, skip: broken });
  errors.push(...checked.errors);
  warnings.push(...checked.warnings);
  if (errors.length) {
    throw new LvsConfigError(sortByPosition(errors), sortByPosition(warnings));
  }
  return { config: cfg, warnings: sortByPosition(warnings) };
}

/** What errors name a line by: its key, or `line` when the first word cannot be a key. */
function fieldName(key: string): string {
  return key === '' || /[\s\x00-\x1f"']/.test(key) ? 'line' : key;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, k) => k);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

function nearestKey(scope: Scope, key: string): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of KEYS[scope]) {
    const d = distance(key, k.key);
    if (d < bestD) {
      best = k.key;
      bestD = d;
    }
  }
  return best;
}

function sortByPosition<T extends { line?: number; column?: number }>(list: T[]): T[] {
  return list
    .map((e, k) => ({ e, k }))
    .sort((a, b) => (a.e.line ?? Infinity) - (b.e.line ?? Infinity) || (a.e.column ?? 0) - (b.e.column ?? 0) || a.k - b.k)
    .map((x) => x.e);
}

/** Failover blocks read every virtual key (as Piranha's parser did); lvsd keeps them as they
 *  are written. */
function failoverSpec(key: string): KeySpec<unknown> | undefined {
  const v = keySpec('virtual', key);
  if (!v) return undefined;
  return { ...v, args: [1, 1000] } as KeySpec<unknown>;
}

/** Reads and parses a file, then resolves its host names (resolveConfig). */
export async function readConfig(path: string, options: ParseOptions & { lookup?: HostLookup } = {}): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new LvsError('LVS_CONFIG_IO', `${path}: cannot read: ${err.message}`, { file: path, cause: e });
  }
  const parsed = parseConfig(text, { ...options, file: options.file ?? path });
  return { config: await resolveConfig(parsed.config, { file: options.file ?? path, ...(options.lookup ? { lookup: options.lookup } : {}) }), warnings: parsed.warnings };
}

/** Reads and parses a file without waiting: host names stay unresolved (directorConfig then
 *  refuses them; use readConfig, which resolves them, where a file may have host names). */
export function readConfigSync(path: string, options: ParseOptions = {}): ParseResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new LvsError('LVS_CONFIG_IO', `${path}: cannot read: ${(e as Error).message}`, { file: path, cause: e });
  }
  return parseConfig(text, { ...options, file: options.file ?? path });
}

/** Resolves a host name to one address (default: the system resolver, as gethostbyname). */
export type HostLookup = (host: string) => Promise<string>;

const systemLookup: HostLookup = async (host) => (await dnsLookup(host)).address;

/** Resolves every host name of the configuration (Piranha accepted names for primary, backup,
 *  virtual and server addresses). Returns a copy with `resolved` filled; throws one
 *  LvsConfigError listing each name that did not resolve. */
export async function resolveConfig(cfg: LvsConfig, options: { file?: string; lookup?: HostLookup } = {}): Promise<LvsConfig> {
  const file = options.file ?? 'lvs.cf';
  const lookup = options.lookup ?? systemLookup;
  const wanted = new Map<string, { line?: number; column?: number; field: string }>();
  const want = (host: string | undefined, layout: { keys: KeyLayout[] } | undefined, key: string) => {
    if (host === undefined || isIpLiteral(host) || wanted.has(host)) return;
    const k = layout?.keys.find((x) => x.key === key);
    wanted.set(host, { ...(k ? { line: k.line, column: k.column } : {}), field: key });
  };
  const g = cfg.globals;
  const gl = cfg.layout ? { keys: cfg.layout.keys } : undefined;
  want(g.primary, gl, 'primary');
  want(g.primaryPrivate, gl, 'primary_private');
  want(g.backup, gl, 'backup');
  want(g.backupPrivate, gl, 'backup_private');
  for (const v of cfg.virtuals) {
    want(v.address, v.layout, 'address');
    for (const s of v.servers) want(s.address, s.layout, 'address');
  }
  const resolved: Record<string, string> = { ...(cfg.resolved ?? {}) };
  const errors: LvsError[] = [];
  await Promise.all(
    [...wanted].map(async ([host, where]) => {
      try {
        resolved[host] = parseAddress(await lookup(host)).text;
      } catch (e) {
        const why = (e as Error).message;
        const text = `cannot resolve host name ${host}: ${why}`;
        errors.push(where.line === undefined ? new LvsError('LVS_CONFIG_HOSTNAME', `${file} ${where.field}: ${text}`, { file, field: where.field }) : configError('LVS_CONFIG_HOSTNAME', file, where.line, where.column!, where.field, text));
      }
    }),
  );
  if (errors.length) throw new LvsConfigError(sortByPosition(errors));
  const out: LvsConfig = { ...cfg, resolved };
  // With addresses known, the family checks that needed them run now.
  const checked = validateModel(out, { file });
  if (checked.errors.length) throw new LvsConfigError(checked.errors);
  return out;
}

export { GLOBAL_KEYS, VIRTUAL_KEYS, SERVER_KEYS, KEYS };
