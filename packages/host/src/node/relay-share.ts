/**
 * The relay's fair share of the enclave (docs/node-api.md "Fair share"): which socket's frame goes
 * to the enclave next. A state machine with its world injected — the clock, and for each socket
 * a `LaneIo` that sends a frame to the enclave and pauses or resumes reading — so it runs and is
 * tested without sockets (scp-relay.ts owns the WebSockets and feeds it).
 *
 * The boundary is one FIFO stream and the enclave processes a request in the call that delivers
 * its frame, so a frame waits behind every frame issued before it. The node-wide budget
 * (`maxInFlightBytes`) therefore also bounds that wait, and frames that wait for it are issued by
 * deficit round robin at two levels: over shares (client addresses, see `shareKeyOf`), then over
 * the sockets of one share (RELAY_QUANTUM of credit a turn). What is scarce is the enclave's time,
 * not bytes, so a frame costs its size or the enclave's time it took (RELAY_BYTES_PER_MS),
 * whichever is more: the scheduler measures how long the enclave had frames and splits it over
 * the frames that settled, a socket pays what its frames took beyond their size out of its next
 * turns, and the budget counts the frames at the enclave at the node's measured time per byte. A
 * socket whose next frame costs at most RELAY_QUANTUM is served after at most one turn of each
 * other waiting share, whatever they send.
 */
import { Fifo } from '@cloister/core';

/**
 * Credit a waiting socket gets per turn of the round robin, in bytes: its turn issues frames while
 * their sizes fit its credit (what it does not spend stays for its next turn while it keeps
 * waiting). A socket sending 1 MiB frames sends one every 16 or 17 turns, so the small frames of
 * others go between them; serving the line costs at most MAX_FRAME / RELAY_QUANTUM visits per
 * frame issued, amortised.
 */
export const RELAY_QUANTUM = 64 * 1024;

/**
 * What a millisecond of the enclave's time costs, in bytes of frame: a frame costs its size or
 * its measured time at this rate, whichever is more, in the round robin and in the budget. So a
 * turn (RELAY_QUANTUM) buys 64 KiB of frames or a millisecond of the enclave, and the budget of
 * two of the largest frames is also about 32 ms of the enclave's work in front of a new frame.
 * 64 KiB a millisecond is about the enclave's pace on queries (a 256 KB query takes about 4 ms
 * on our machines), so queries cost their size and a frame whose work is far above its size (a
 * 100 KB transaction runs its app for 10–27 ms) costs its time.
 */
export const RELAY_BYTES_PER_MS = 64 * 1024;

/**
 * The most a socket's round-robin credit goes below zero (bytes): what its frames took beyond
 * their size is paid out of its next turns, up to 64 turns' worth; beyond, it is forgiven, so
 * one frame that hit a stall of the whole node (a store write, a rotation) does not keep its
 * socket out for long.
 */
export const MAX_DEBT = 64 * RELAY_QUANTUM;

/** Weight of the newest settle group in the node's measured time per byte (1/8: about a dozen). */
const RATE_WEIGHT = 1 / 8;

/** The limits the scheduler keeps (ScpRelayLimits documents each). */
export interface RelayShareLimits {
  /** Frames of one socket at the enclave at most; beyond, the socket stops reading. */
  readonly maxInFlight: number;
  /** Bytes of frames of all sockets at the enclave at once, at the measured time per byte. */
  readonly maxInFlightBytes: number;
  /** Bytes of frames of all sockets waiting in the host; a frame beyond it overflows its socket. */
  readonly maxHeldBytes: number;
  /**
   * Bytes of frames of one share's sockets (one client address, by default) waiting in the host;
   * a frame beyond it overflows its socket. Default: all of maxHeldBytes.
   */
  readonly maxHeldBytesPerShare?: number;
}

/** What the scheduler asks of one socket: its part of the world. */
export interface LaneIo {
  /**
   * Hands `frame` to the enclave, in issue order; the promise settles once the enclave processed
   * it, and rejects only if the call failed.
   */
  send(frame: Uint8Array): PromiseLike<unknown>;
  /** A send rejected (called before the frame counts as settled): close the socket. */
  failed(e: unknown): void;
  /** The host holds too much (`maxHeldBytes`): close the socket; its frames are dropped. */
  overflow(): void;
  /** Stop reading the socket (its frames wait, or it is at its cap). */
  pause(): void;
  /** Read the socket again. */
  resume(): void;
  /** Whether reading is paused. */
  isPaused(): boolean;
}

/** One socket's lane: the scheduler's handle for it. */
export interface Lane {
  /** A frame the socket read: issued now, or kept until its turn (or overflowed). */
  receive(frame: Uint8Array): void;
  /** The socket is closing: nothing more of it is issued (its waiting frames stay counted). */
  close(): void;
  /** The socket is gone: closed, and its waiting frames forgotten. */
  release(): void;
}

/** The scheduler of one relay. */
export interface RelayShare {
  /** A lane for a new socket of `share` (shareKeyOf its address, or a key of its own). */
  lane(share: string, io: LaneIo): Lane;
  /** Bytes at the enclave, bytes waiting in the host, sockets in line (the budget gauges). */
  budget(): { atEnclave: number; waiting: number; held: number };
}

/** A share of the round robin's first level: a client address (or one socket) and its line. */
interface Share {
  readonly key: string;
  /**
   * Its held sockets in turn order, each at most once. Invariant: holds exactly the lanes whose
   * `held` is set and whose `share` is `key`.
   */
  readonly sockets: Fifo<LaneState>;
}

interface LaneState {
  readonly io: LaneIo;
  /** Frames sent to the enclave that have not settled. Invariant: 0..maxInFlight. */
  inFlight: number;
  /**
   * Frames received while `maxInFlight` were in flight, in arrival order, sent as earlier ones
   * settle. Pausing the socket stops it reading, but ws still delivers the messages of the chunk
   * it had read (hundreds of small frames fit in one), so they wait here, in the host, and the
   * enclave never holds more than `maxInFlight` frames of a socket.
   */
  readonly waiting: (Uint8Array | undefined)[];
  /** Index of the first frame of `waiting` not yet issued (a queue without O(n) shifts). */
  waitingAt: number;
  /** Bytes of the frames in `waiting` not yet issued (counted in the scheduler's `heldBytes`). */
  waitingBytes: number;
  /**
   * In the line: it has frames waiting and room under `maxInFlight`, and its next frame waits
   * for the node-wide byte budget or for the sockets before it.
   */
  held: boolean;
  /**
   * Its round-robin credit in bytes: what its turns gave it and its frames did not spend, less
   * what its frames took of the enclave beyond their size (measured once they settle, while
   * sockets wait in line). Invariant: at least -MAX_DEBT and below MAX_FRAME + RELAY_QUANTUM
   * (credit is given only while it is below the next frame's size); at most 0 while not held
   * (a debt it pays when it next waits, void once `debtEpoch` is not the scheduler's `lineEpoch`).
   */
  credit: number;
  /** The scheduler's `lineEpoch` when its debt was last charged or kept. */
  debtEpoch: number;
  /** The round robin's first level it belongs to. */
  readonly share: string;
  closed: boolean;
}

/** The scheduler; `clock` gives milliseconds from any fixed origin, never going back. */
export function createRelayShare(limits: RelayShareLimits, clock: () => number): RelayShare {
  const { maxInFlight } = limits;
  // Invariant: the bytes of the frames issued to the enclave whose send has not settled.
  let inFlightBytes = 0;
  // Invariant: the sum of every open lane's waitingBytes.
  let heldBytes = 0;
  // Invariant: per share, the sum of its open lanes' waitingBytes (no entry for 0).
  const heldByShare = new Map<string, number>();
  const perShare = limits.maxHeldBytesPerShare ?? limits.maxHeldBytes;
  const release = (share: string, n: number): void => {
    const left = (heldByShare.get(share) ?? 0) - n;
    if (left > 0) heldByShare.set(share, left);
    else heldByShare.delete(share);
  };
  // The round robin's first level: the shares that have sockets in line, each at most once, in
  // turn order; the second level is each share's own line of sockets. Invariant, between
  // events: `line` holds exactly the shares of `shares`, and a share is in `shares` exactly
  // while its line is not empty; the line is empty, or the next frame of the first socket of its
  // head does not fit, or frames are at the enclave and the last visits, one per socket in line,
  // only paid debts (settles go on).
  const line = new Fifo<Share>();
  // Counts the times the line emptied: nobody waited any more, so debts before are void (there
  // was no one left to be fair to). Invariant: a lane's debt counts only if its debtEpoch is it.
  let lineEpoch = 0;
  const shares = new Map<string, Share>();
  // Invariant: the number of lanes with `held` set (the sum of the shares' line sizes).
  let heldSockets = 0;

  /** Forgets what waits on `x` (a closed socket). */
  const dropWaiting = (x: LaneState): void => {
    heldBytes -= x.waitingBytes;
    release(x.share, x.waitingBytes);
    x.waitingBytes = 0;
    x.waiting.length = 0;
    x.waitingAt = 0;
  };

  /**
   * What `n` bytes of frames cost at the enclave, in bytes: their size, or more when the enclave
   * has lately taken longer per byte than RELAY_BYTES_PER_MS (the node-wide measure below).
   */
  const atRate = (n: number): number => n * Math.max(1, msPerByte() * RELAY_BYTES_PER_MS);
  /**
   * True when `n` more bytes may go to the enclave (one frame always may, when none is out): the
   * frames there and this one fit the budget in bytes and in measured time. The measure is the
   * host's, its stalls included (a stall of the shared machine is charged to the small frames
   * that were out), so it never holds back the first RELAY_QUANTUM bytes: small frames, what an
   * honest client mostly sends, are not throttled by a stall's echo, and a frame still waits
   * behind at most that much of them.
   */
  const fits = (n: number): boolean =>
    inFlightBytes === 0 ||
    (inFlightBytes + n <= limits.maxInFlightBytes &&
      (inFlightBytes + n <= RELAY_QUANTUM || atRate(inFlightBytes + n) <= limits.maxInFlightBytes));

  // What the enclave's work for frames took, measured here (the relay sees when frames go and
  // settle; the enclave has no clock and says nothing). The enclave answers the frames of one
  // boundary message in one message, so frames settle in groups: a group is the frames settling
  // in one run of the microtask queue, and it took the time since the previous group settled or
  // since frames were last sent to an idle enclave, whichever is later (the enclave had work
  // from the relay all that time). It is split over the group's frames by size, charged to each
  // frame's lane, and folded into the node's time per byte.
  // Invariant: busyFrom is when inFlightBytes last went from 0 to more (the enclave had work
  // from then on); lastSettle when the last group settled; both from `clock`.
  let busyFrom = 0;
  let lastSettle = 0;
  // The group settling now: its frames' lanes and sizes, its time; empty between groups.
  const group: { x: LaneState; size: number }[] = [];
  let groupMs = 0;
  // Averages over recent groups (weight RATE_WEIGHT each) of their time and their bytes; their
  // ratio is the node's time per byte. Invariant: both >= 0; bytesAvg > 0 once a frame settled.
  let msAvg = 0;
  let bytesAvg = 0;
  const msPerByte = (): number => (bytesAvg > 0 ? msAvg / bytesAvg : 0);
  /** Counts a settled frame of `x` (`size` bytes) in the group settling now. */
  const measure = (x: LaneState, size: number): void => {
    if (group.length === 0) {
      const now = clock();
      groupMs = Math.max(0, now - Math.max(lastSettle, busyFrom));
      lastSettle = now;
      queueMicrotask(settleGroup);
    }
    group.push({ x, size });
  };
  const settleGroup = (): void => {
    let bytes = 0;
    for (const f of group) bytes += f.size;
    msAvg += (groupMs - msAvg) * RATE_WEIGHT;
    bytesAvg += (bytes - bytesAvg) * RATE_WEIGHT;
    for (const { x, size } of group) {
      // Paid only while sockets wait: with nobody in line, the time was taken from no one. A
      // socket out of line keeps the debt for when it next waits (its frames that were read
      // before its socket paused run out, it leaves the line and is read again: it must not
      // come back clean).
      const beyond = groupMs * (bytes > 0 ? size / bytes : 0) * RELAY_BYTES_PER_MS - size;
      if (beyond <= 0 || x.closed || (line.size === 0 && !x.held)) continue;
      // A debt from before the line last emptied is void; credit its turns gave it since is kept.
      if (x.debtEpoch !== lineEpoch) x.credit = Math.max(0, x.credit);
      x.credit = Math.max(-MAX_DEBT, x.credit - beyond);
      x.debtEpoch = lineEpoch;
    }
    group.length = 0;
  };

  /**
   * Serves the line while the budget has room for the next frame: deficit round robin, a visit
   * of its head share being one visit of that share's first socket. The socket gets RELAY_QUANTUM
   * of credit when its next frame needs more, issues frames while they fit its credit, the budget
   * and its `maxInFlight`, then goes to the back of its share's line if frames remain and its
   * credit is spent, and its share to the back of the line; stopped by the budget alone, both keep
   * their places (and its credit) until frames settle. A socket leaves the line when it is gone,
   * emptied, or at its own cap (its own settles bring it back), and loses its credit, not its
   * debt; a share leaves with its last socket. A socket in debt (its frames took the enclave's
   * time beyond their size) pays a quantum a visit; once as many visits in a row as sockets in
   * line only paid debts (so each socket had a visit, and one not in debt went first), the rest
   * waits for the next settle while frames are at the enclave (work-conserving only when the
   * enclave is idle): a socket is read again only once the frames read before it paused ran out,
   * so a flooder's sockets leave the line after nearly every turn, and a debtor alone in the line
   * for that moment would otherwise pay everything at once and go first. With one share (every
   * socket from one address) and no debts this is the round robin over sockets, step for step.
   */
  const releaseHeld = (): void => {
    let paying = 0; // visits in a row that issued nothing and only paid a debt
    for (let s = line.peek(); s !== undefined; s = line.peek()) {
      const x = s.sockets.peek() as LaneState;
      let next = x.waiting[x.waitingAt];
      let issued = 0;
      if (!x.closed && next !== undefined && x.inFlight < maxInFlight) {
        if (x.credit < next.length) x.credit += RELAY_QUANTUM;
        if (x.credit >= next.length && !fits(next.length)) return;
        issued = turn(x);
        next = x.waiting[x.waitingAt];
        if (!x.closed && next !== undefined && x.inFlight < maxInFlight) {
          if (x.credit >= next.length) return; // stopped by the budget: still its turn
          s.sockets.shift();
          s.sockets.push(x); // its credit spent: the back of its share's line
          line.shift();
          line.push(s); // and its share the back of the line
          paying = issued === 0 && x.credit <= 0 ? paying + 1 : 0;
          if (paying >= heldSockets && inFlightBytes > 0) return; // a settle goes on
          continue;
        }
      }
      s.sockets.shift();
      x.held = false;
      x.credit = Math.min(0, x.credit); // it keeps its debt, not its credit
      heldSockets--;
      if (s.sockets.size === 0) {
        line.shift();
        shares.delete(s.key);
        if (line.size === 0) lineEpoch++;
      } else if (issued > 0) {
        line.shift();
        line.push(s); // its turn used: the back of the line
      } // else a visit that issued nothing (a socket gone, or at its cap) leaves the share its turn
      drain(x);
    }
  };

  /**
   * Keeps `frame` for later; false (and the socket overflowed) when the host holds too much, in
   * all or for this socket's share: one address's sockets, each holding a frame of up to 1 MiB,
   * could otherwise take the whole budget and have every other client's sockets closed.
   */
  const wait = (x: LaneState, frame: Uint8Array): boolean => {
    const mine = heldByShare.get(x.share) ?? 0;
    if (
      (heldBytes > 0 && heldBytes + frame.length > limits.maxHeldBytes) ||
      (mine > 0 && mine + frame.length > perShare)
    ) {
      x.closed = true;
      x.io.overflow();
      dropWaiting(x);
      return false;
    }
    x.waiting.push(frame);
    x.waitingBytes += frame.length;
    heldBytes += frame.length;
    heldByShare.set(x.share, mine + frame.length);
    return true;
  };
  /** Puts `x` at the back of its share's line (and a new share at the back of the line). */
  const hold = (x: LaneState): void => {
    if (x.held) return;
    if (x.debtEpoch !== lineEpoch) x.credit = 0; // a debt from before the line last emptied
    x.held = true;
    heldSockets++;
    let s = shares.get(x.share);
    if (s === undefined) {
      s = { key: x.share, sockets: new Fifo<LaneState>() };
      shares.set(x.share, s);
      line.push(s);
    }
    s.sockets.push(x);
    x.io.pause();
  };
  /** Its turn in the line: issues frames while its credit, the budget and its cap allow; how many. */
  const turn = (x: LaneState): number => {
    let n = 0;
    while (x.waitingAt < x.waiting.length && x.inFlight < maxInFlight) {
      const frame = x.waiting[x.waitingAt] as Uint8Array;
      if (frame.length > x.credit || !fits(frame.length)) break;
      x.credit -= frame.length;
      issueWaiting(x, frame);
      n++;
    }
    return n;
  };
  /** Issues `frame`, the first of `x.waiting`, taking it off the frames the host holds. */
  const issueWaiting = (x: LaneState, frame: Uint8Array): void => {
    x.waiting[x.waitingAt++] = undefined;
    x.waitingBytes -= frame.length;
    heldBytes -= frame.length;
    release(x.share, frame.length);
    issue(x, frame);
  };
  const issue = (x: LaneState, frame: Uint8Array): void => {
    if (inFlightBytes === 0) busyFrom = clock();
    x.inFlight++;
    inFlightBytes += frame.length;
    if (x.inFlight >= maxInFlight) x.io.pause();
    const size = frame.length;
    x.io.send(frame).then(
      () => settled(x, size),
      (e: unknown) => {
        x.io.failed(e);
        settled(x, size);
      },
    );
  };
  /**
   * After one of its frames settled: issues what waits when no socket is in line (as far as its
   * and the node's caps allow), lines up otherwise; resumes reading once nothing waits.
   */
  const drain = (x: LaneState): void => {
    if (x.closed) {
      dropWaiting(x);
      return;
    }
    if (x.held) return; // in line: its turn comes
    while (x.waitingAt < x.waiting.length && x.inFlight < maxInFlight) {
      const frame = x.waiting[x.waitingAt] as Uint8Array;
      if (line.size > 0 || !fits(frame.length)) {
        // Others wait first, or the budget is spent: the back of the line.
        hold(x);
        return;
      }
      issueWaiting(x, frame);
    }
    if (x.waitingAt === x.waiting.length) {
      x.waiting.length = 0;
      x.waitingAt = 0;
      if (x.io.isPaused() && x.inFlight < maxInFlight) x.io.resume();
    }
  };
  const settled = (x: LaneState, size: number): void => {
    measure(x, size);
    x.inFlight--;
    inFlightBytes -= size;
    drain(x);
    releaseHeld();
  };

  return {
    lane(share, io) {
      const x: LaneState = {
        io,
        inFlight: 0,
        waiting: [],
        waitingAt: 0,
        waitingBytes: 0,
        held: false,
        credit: 0,
        debtEpoch: 0,
        share,
        closed: false,
      };
      return {
        receive(frame) {
          if (x.closed) return;
          if (x.inFlight >= maxInFlight || x.waitingAt < x.waiting.length) {
            wait(x, frame);
            return;
          }
          if (!fits(frame.length) || line.size > 0) {
            // Other sockets were held first, or the budget is spent: wait in line.
            if (wait(x, frame)) hold(x);
            return;
          }
          issue(x, frame);
        },
        close() {
          x.closed = true;
        },
        release() {
          x.closed = true;
          dropWaiting(x);
        },
      };
    },
    budget: () => ({ atEnclave: inFlightBytes, waiting: heldBytes, held: heldSockets }),
  };
}
