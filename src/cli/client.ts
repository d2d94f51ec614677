/**
 * A client of lvsd's control socket (src/daemon/protocol.ts): connect, send requests, await
 * their responses. Newline-delimited JSON over a unix stream socket; responses come in request
 * order and carry the request's id. An error response becomes an LvsError with the daemon's
 * code, message and field.
 *
 *   const c = await ControlClient.connect('/run/lvsd/lvsd.sock');
 *   const { services } = await c.request({ op: 'list' });
 *   c.close();
 *
 * When nothing answers on the socket, connect() throws LVS_UNREACHABLE whose message is the
 * reason as the system says it ("No such file or directory", "Connection refused").
 */
import { connect as netConnect, type Socket } from 'node:net';
import { getSystemErrorMap } from 'node:util';
import { LvsError, type LvsErrorCode } from '../errors.js';
import { CONTROL_PROTOCOL_VERSION, DEFAULT_CONTROL_SOCKET, type ControlRequest, type ControlResponse, type ControlResults } from '../daemon/protocol.js';

export type ControlOp = ControlRequest['op'];
export type RequestOf<K extends ControlOp> = Extract<ControlRequest, { op: K }>;

/** The socket to use: an explicit path, else $LVSD_SOCKET, else /run/lvsd/lvsd.sock. */
export function controlSocketPath(explicit?: string | null, env: NodeJS.ProcessEnv = process.env): string {
  return explicit || env.LVSD_SOCKET || DEFAULT_CONTROL_SOCKET;
}

// strerror() texts for the errors a unix-socket connect can meet (glibc's wording); others
// fall back to libuv's description.
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  ECONNREFUSED: 'Connection refused',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTSOCK: 'Socket operation on non-socket',
  ENOTDIR: 'Not a directory',
  ENAMETOOLONG: 'File name too long',
  ECONNRESET: 'Connection reset by peer',
  EPIPE: 'Broken pipe',
  EAGAIN: 'Resource temporarily unavailable',
  ETIMEDOUT: 'Connection timed out',
  EPROTOTYPE: 'Protocol wrong type for socket',
};

/** The system's text for a Node errno error ("Connection refused"). */
export function systemErrorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string') {
    if (STRERROR[err.code]) return STRERROR[err.code]!;
    if (typeof err.errno === 'number') {
      const m = getSystemErrorMap().get(err.errno);
      if (m) return m[1];
    }
  }
  return err instanceof Error ? err.message : String(e);
}

interface Pending {
  id: number;
  op: ControlOp;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

export class ControlClient {
  private nextId = 1;
  private buffer = '';
  private readonly pending: Pending[] = [];
  private closedError: LvsError | null = null;

  private constructor(
    private readonly socket: Socket,
    /** The socket's path, for messages. */
    readonly path: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e) => this.fail(new LvsError('LVS_CLOSED', `lvsd at ${path}: ${systemErrorText(e)}`, { cause: e })));
    socket.on('close', () => this.fail(new LvsError('LVS_CLOSED', `lvsd at ${path} closed the connection`)));
  }

  /** Connect to the daemon's socket; LVS_UNREACHABLE (with the system's reason) if none answers. */
  static connect(path: string = controlSocketPath()): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ path });
      const onError = (e: Error) => {
        socket.destroy();
        reject(new LvsError('LVS_UNREACHABLE', systemErrorText(e), { cause: e }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new ControlClient(socket, path));
      });
    });
  }

  /** Send one request; resolves with its result, rejects with the daemon's error. */
  request<K extends ControlOp>(req: RequestOf<K>): Promise<ControlResults[K]> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<ControlResults[K]>((resolve, reject) => {
      this.pending.push({ id, op: req.op, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ ...req, v: CONTROL_PROTOCOL_VERSION, id })}\n`);
    });
  }

  close(): void {
    this.closedError ??= new LvsError('LVS_CLOSED', 'the control connection was closed');
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let msg: ControlResponse;
    try {
      msg = JSON.parse(line) as ControlResponse;
    } catch {
      this.fail(new LvsError('LVS_PROTOCOL', `lvsd at ${this.path} sent something that is not JSON: ${line.slice(0, 80)}`));
      return;
    }
    const p = this.pending.findIndex((x) => x.id === msg.id);
    // A response without a request id (a daemon refusing the whole connection) answers the
    // oldest request.
    const at = p >= 0 ? p : this.pending.length ? 0 : -1;
    if (at < 0) return;
    const [req] = this.pending.splice(at, 1);
    if (msg.ok) {
      req!.resolve(msg.result);
      return;
    }
    const err = msg.error ?? { code: 'LVS_PROTOCOL', message: 'malformed error response' };
    req!.reject(new LvsError(err.code as LvsErrorCode, err.message, err.field === undefined ? {} : { field: err.field }));
  }

  private fail(e: LvsError): void {
    if (this.closedError) return;
    this.closedError = e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }
}
