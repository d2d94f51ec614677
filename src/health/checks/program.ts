/**
 * Piranha's send_program (nanny `external_check`), without its bugs.
 *
 * - The command is split on blanks; a token that is exactly `%h` becomes the real's address and
 *   one that is exactly `%p` its port (like nanny: `host=%h` is left alone). The program runs
 *   from that argument vector with no shell, ever: nothing in the configuration or an address
 *   can become a command.
 * - stdin and stderr are /dev/null, stdout is read (up to MAX_REPLY bytes).
 * - UP: the program exits 0 and, when an expect is set, its stdout equals the expect exactly
 *   once one trailing newline ("\n" or "\r\n") is dropped. `use_regex` does not apply (as in
 *   nanny).
 * - DOWN: a non-zero exit, a signal, a program that cannot be started, or the timeout. nanny
 *   counted a failed or timed-out program as UP when an expect was set, and any output with no
 *   expect as DOWN; we do neither (with no expect, exit status 0 is UP, as keepalived's
 *   MISC_CHECK).
 * - The program runs in its own process group; at the timeout (or abort) the whole group gets
 *   SIGKILL, and so do leftovers of a program that exited but left children behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { LvsError } from '../../errors.js';
import type { Probe, ProbeResult, ProbeTarget } from '../types.js';
import { attempt, describeError, MAX_REPLY, show } from './common.js';
import { unescape } from './escape.js';

export interface ProgramOptions { command: string; expect?: string }

/** Split a send_program string into its argument vector and fill in %h and %p. */
export function programArgv(command: string, target: ProbeTarget): string[] {
  return command.split(/[ \t]+/).filter((t) => t !== '').map((t) => (t === '%h' ? target.address : t === '%p' ? String(target.port) : t));
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* the group is already gone */ }
  try { child.kill('SIGKILL'); } catch { /* already reaped */ }
}

export class ProgramProbe implements Probe {
  readonly kind = 'program';
  private readonly expect?: string;

  constructor(private readonly opts: ProgramOptions) {
    if (programArgv(opts.command, { address: '', port: 0 }).length === 0) {
      throw new LvsError('LVS_INVALID_OPTION', 'send_program: the command is empty', { field: 'send_program' });
    }
    if (opts.expect !== undefined) this.expect = unescape(opts.expect);
  }

  run(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    return attempt(timeoutMs, signal, (a) => {
      const argv = programArgv(this.opts.command, target);
      const file = argv[0]!;
      a.phase = `program ${file} still running, killed`;
      const child = spawn(file, argv.slice(1), { shell: false, detached: true, stdio: ['ignore', 'pipe', 'ignore'], windowsHide: true });
      let exited = false;
      a.onSettle(() => {
        if (!exited) killGroup(child);
        child.stdout?.destroy();
      });
      let out = Buffer.alloc(0);
      child.stdout!.on('data', (chunk: Buffer) => {
        if (out.length < MAX_REPLY) out = Buffer.concat([out, chunk]).subarray(0, MAX_REPLY);
      });
      child.stdout!.on('error', () => { /* the pipe is destroyed on settle */ });
      child.on('error', (e) => {
        const err = e as NodeJS.ErrnoException;
        a.fail(err.code === 'ENOENT' ? `program not found: ${file}` : err.code === 'EACCES' ? `program not executable: ${file}` : `program ${file} could not start: ${describeError(e)}`);
      });
      let status: { code: number | null; sig: NodeJS.Signals | null } | undefined;
      const finish = (): void => {
        if (status === undefined) return;
        const { code, sig } = status;
        if (sig !== null) { a.fail(`program killed by ${sig}`); return; }
        if (code !== 0) { a.fail(`program exited ${code}`); return; }
        if (this.expect === undefined) { a.ok('program exited 0'); return; }
        let text = out.toString('utf8');
        if (text.endsWith('\r\n')) text = text.slice(0, -2);
        else if (text.endsWith('\n')) text = text.slice(0, -1);
        if (text === this.expect) a.ok(`program said ${show(text)}`);
        else a.fail(`expect ${show(this.expect)} got ${show(text)}`);
      };
      child.on('exit', (code, sig) => {
        exited = true;
        status = { code, sig };
        // Children the program left behind (and that may hold stdout open) go with it.
        killGroup(child);
        a.phase = `program ${file} exited, its output still open`;
      });
      // 'close' comes once the process exited and stdout is drained: the output is complete.
      child.on('close', () => finish());
    });
  }
}
