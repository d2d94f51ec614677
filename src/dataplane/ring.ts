/**
 * The JavaScript end of the single-producer/single-consumer rings (native/control/ring.hpp):
 * a message is [opcode << 16 | length in words] + payload, never wrapping (an opcode-0
 * message pads the end). Indices are in 32-bit words and only ever grow (mod 2^32).
 */
const HEAD = 0;
const TAIL = 16;
const SLEEPING = 32;
const DATA = 64;

export class RingProducer {
  private readonly mask: number;

  constructor(
    private readonly words: Int32Array,
    private readonly capacity: number,
  ) {
    this.mask = capacity - 1;
  }

  /** Writes one message; false when it does not fit now. */
  push(op: number, payload: ArrayLike<number>): boolean {
    const len = payload.length + 1;
    if (len > this.capacity / 2) throw new RangeError(`message of ${len} words exceeds the ring`);
    let head = Atomics.load(this.words, HEAD) >>> 0;
    const tail = Atomics.load(this.words, TAIL) >>> 0;
    const pos = head & this.mask;
    const pad = pos + len > this.capacity ? this.capacity - pos : 0;
    if (this.capacity - ((head - tail) >>> 0) < pad + len) return false;
    if (pad) {
      this.words[DATA + pos] = pad; // opcode 0
      head = (head + pad) >>> 0;
    }
    const at = DATA + (head & this.mask);
    this.words[at] = (op << 16) | len;
    for (let i = 0; i < payload.length; i++) this.words[at + 1 + i] = payload[i]! | 0;
    Atomics.store(this.words, HEAD, (head + len) | 0);
    return true;
  }

  /** The consumer announced it is going to sleep: kick it after pushing. */
  consumerSleeping(): boolean {
    return Atomics.load(this.words, SLEEPING) !== 0;
  }
}

export interface RingMessage {
  op: number;
  payload: Int32Array;
}

export class RingConsumer {
  private readonly mask: number;

  constructor(
    private readonly words: Int32Array,
    capacity: number,
  ) {
    this.mask = capacity - 1;
  }

  /** Every message available now, in order. */
  drain(): RingMessage[] {
    const out: RingMessage[] = [];
    const head = Atomics.load(this.words, HEAD) >>> 0;
    let tail = Atomics.load(this.words, TAIL) >>> 0;
    while (tail !== head) {
      const at = DATA + (tail & this.mask);
      const hdr = this.words[at]! >>> 0;
      const len = hdr & 0xffff;
      if (len === 0 || len > ((head - tail) >>> 0)) break; // corrupt: stop rather than spin
      const op = hdr >>> 16;
      if (op !== 0) out.push({ op, payload: this.words.slice(at + 1, at + len) });
      tail = (tail + len) >>> 0;
    }
    Atomics.store(this.words, TAIL, tail | 0);
    return out;
  }
}
