/**
 * Every error that crosses a boundary carries a stable `code` (DESIGN.md rule 6) and, where it
 * applies, the field (and later file and line) it concerns.
 */
export type LvsErrorCode =
  | 'LVS_INVALID_ARGUMENT'
  | 'LVS_INVALID_ADDRESS'
  | 'LVS_INVALID_PORT'
  | 'LVS_INVALID_PROTOCOL'
  | 'LVS_INVALID_FWMARK'
  | 'LVS_INVALID_WEIGHT'
  | 'LVS_INVALID_METHOD'
  | 'LVS_INVALID_SCHEDULER'
  | 'LVS_INVALID_INTERFACE'
  | 'LVS_INVALID_MAC'
  | 'LVS_INVALID_TIMEOUT'
  | 'LVS_INVALID_OPTION'
  | 'LVS_INVALID_THRESHOLD'
  | 'LVS_INVALID_PERSISTENCE'
  | 'LVS_INVALID_MARK'
  | 'LVS_FAMILY_MISMATCH'
  | 'LVS_PORT_ZERO'
  | 'LVS_PORT_MAPPING'
  | 'LVS_SERVICE_EXISTS'
  | 'LVS_NO_SUCH_SERVICE'
  | 'LVS_REAL_EXISTS'
  | 'LVS_NO_SUCH_REAL'
  | 'LVS_CAPACITY'
  | 'LVS_FRAME_TOO_LARGE'
  | 'LVS_MODE'
  | 'LVS_CLOSED'
  | 'LVS_TIMEOUT'
  | 'LVS_DATAPLANE_REJECTED'
  | 'LVS_DATAPLANE_INIT'
  | 'LVS_NATIVE_MISSING'
  // The control socket (src/daemon/protocol.ts, src/cli/client.ts).
  | 'LVS_PROTOCOL'      // the peer speaks another control protocol version
  | 'LVS_UNREACHABLE'   // no lvsd answers on the control socket
  // Host and I/O (native/io, src/host, src/director).
  | 'LVS_IO_INIT'       // a packet backend (AF_XDP, AF_PACKET) could not be set up
  | 'LVS_BPF'           // a BPF map or program could not be made, loaded or attached
  | 'LVS_NETLINK'       // the kernel refused a netlink request (errno in the message)
  | 'LVS_NETNS'         // a network namespace could not be entered
  | 'LVS_NO_SUCH_DEVICE'
  | 'LVS_NEIGHBOUR'     // a real's or next hop's MAC address could not be resolved
  | 'LVS_HOST'          // another host operation failed (sysctl, nftables)
  | 'LVS_FAILOVER'      // failover cannot run as configured (role, key, partner addresses)
  | 'LVS_LAB_COMMAND'   // a command the lab ran failed
  // lvs.cf (src/config). Each error names file, line, column and the key.
  | 'LVS_CONFIG_INVALID'      // the file has errors: `errors` lists each one
  | 'LVS_CONFIG_SYNTAX'       // lexical or block structure (quotes, "=", braces, argument count)
  | 'LVS_CONFIG_UNKNOWN_KEY'  // a key that is not valid where it stands
  | 'LVS_CONFIG_VALUE'        // a value of the wrong kind or out of range
  | 'LVS_CONFIG_MISSING'      // a required key is missing
  | 'LVS_CONFIG_DUPLICATE'    // two virtual servers or real servers with the same key
  | 'LVS_CONFIG_CONFLICT'     // keys that contradict each other
  | 'LVS_CONFIG_UNSUPPORTED'  // valid Piranha that lvsd does not implement (service = fos, ...)
  | 'LVS_CONFIG_HOSTNAME'     // a host name did not resolve
  | 'LVS_CONFIG_IO';          // the file could not be read or written

export interface LvsErrorDetails {
  /** The option or field at fault, e.g. `port` or `reals[2].weight`. */
  field?: string;
  file?: string;
  line?: number;
  column?: number;
  cause?: unknown;
}

export class LvsError extends Error {
  override readonly name = 'LvsError';
  readonly code: LvsErrorCode;
  readonly field?: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;

  constructor(code: LvsErrorCode, message: string, details: LvsErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    if (details.field !== undefined) this.field = details.field;
    if (details.file !== undefined) this.file = details.file;
    if (details.line !== undefined) this.line = details.line;
    if (details.column !== undefined) this.column = details.column;
  }
}

export function isLvsError(e: unknown, code?: LvsErrorCode): e is LvsError {
  return e instanceof LvsError && (code === undefined || e.code === code);
}
