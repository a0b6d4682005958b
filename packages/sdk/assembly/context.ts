/** Who is calling and when (docs/app-abi.md §5). */
import {
  context_caller,
  context_index,
  context_kind,
  context_request_id,
  context_time,
  NOT_FOUND,
} from './abi';
import { fromUtf8, readHostBuffer, toHex } from './bytes';

export class Context {
  /** True in a query (read-only, committed state). */
  static isQuery(): bool {
    return context_kind() == 0;
  }

  /** True in a transaction. */
  static isTransaction(): bool {
    return context_kind() == 1;
  }

  /** The 32-byte caller id: one client has unrelated ids in two apps (§5.1). */
  static caller(): Uint8Array {
    const out = new Uint8Array(32);
    context_caller(out.dataStart);
    return out;
  }

  /** The caller id as 64 hex digits: handy as a table key. */
  static callerHex(): string {
    return toHex(Context.caller());
  }

  /** The client's request id, or null when the call carries none (§5.3). */
  static requestId(): string | null {
    const n = context_request_id();
    return n == NOT_FOUND ? null : fromUtf8(readHostBuffer(n));
  }

  /** The committed index this call reads at (its snapshot). */
  static index(): i64 {
    return context_index();
  }

  /**
   * Milliseconds since 1970 UTC: the leader's clock, monotonic but UNTRUSTED (§5.2). Close
   * auctions and polls by a transaction, never by time alone. Same value for the whole call.
   */
  static time(): i64 {
    return context_time();
  }
}
